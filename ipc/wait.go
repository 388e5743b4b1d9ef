package ipc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
)

// Wait waits until at least one of conns has a message ready to receive,
// or its end of stream (a receive would then return io.EOF or
// ErrPeerDied), and returns every Conn that is ready, in the order given
// (Python's multiprocessing.connection.wait). When ctx ends first it
// returns nil and an error wrapping ctx.Err(); a closed Conn in conns is
// an error matching ErrClosed, a nil one an error naming its index, and
// the send-only end of a one-way Pipe one matching [ErrOneWay].
//
// Wait holds each Conn's receive side while it waits, so a receive on one
// of them from another goroutine waits for Wait to return (or for its own
// context to end); Wait likewise waits for a receive already running. Each Conn is
// watched by a goroutine of its own for the duration of the call; bytes
// that arrive are kept in the Conn's buffer, never lost.
func Wait(ctx context.Context, conns ...*Conn) ([]*Conn, error) {
	if len(conns) == 0 {
		<-ctx.Done()
		return nil, fmt.Errorf("ipc: wait: %w", ctx.Err())
	}
	var ready []*Conn
	for i, c := range conns {
		if c == nil {
			return nil, fmt.Errorf("ipc: wait: conns[%d] is nil", i)
		}
		if err := c.recvCheck("wait"); err != nil {
			return nil, err
		}
	}
	for _, c := range conns {
		ok, err := c.r.ready()
		if err != nil {
			return nil, err
		}
		if ok {
			ready = append(ready, c)
		}
	}
	if len(ready) > 0 {
		return ready, nil
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	oks := make([]bool, len(conns))
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			oks[i], errs[i] = c.r.waitReady(wctx)
			if oks[i] || errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	for i, c := range conns {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if !oks[i] {
			// It may have become ready as the others were cancelled.
			oks[i], _ = c.r.ready()
		}
		if oks[i] {
			ready = append(ready, c)
		}
	}
	if len(ready) == 0 {
		return nil, fmt.Errorf("ipc: wait: %w", ctx.Err())
	}
	return ready, nil
}

// ready reports, without waiting, whether a receive would not block on
// the connection (a poll with a zero timeout).
func (r *reader) ready() (bool, error) {
	if !r.c.cfg.canRead {
		return false, errWriteOnly
	}
	return r.poll(0)
}

// waitReady waits until bytes or the end of stream arrive, or ctx ends
// (then false, nil).
func (r *reader) waitReady(ctx context.Context) (bool, error) {
	if r.mu.lock(ctx, "wait") != nil {
		return false, nil
	}
	defer r.mu.unlock()
	if r.c.closed.Load() {
		return false, fmt.Errorf("%w: wait", ErrClosed)
	}
	if r.err != nil || r.w > r.r {
		return true, nil
	}
	stop := watchDeadline(ctx, r.c.nc.SetReadDeadline)
	r.room(4096)
	n, err := r.c.nc.Read(r.buf[r.w:])
	stop()
	r.w += n
	if n > 0 {
		return true, nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
		return false, nil
	}
	if err := r.readError(ctx, err); errors.Is(err, ErrClosed) {
		return false, err
	}
	return true, nil
}
