package manager

import (
	"context"
	"errors"

	"github.com/multiproc-go/multiproc/ipc"
)

// ipcConn is an ipc.Conn as a message connection: every connection of a
// manager is one, authenticated by ipc's handshake (the one in the
// project) before anything it carries is decoded.
type ipcConn struct {
	c   *ipc.Conn
	buf []byte
}

func newIPCConn(c *ipc.Conn) *ipcConn { return &ipcConn{c: c, buf: make([]byte, 4<<10)} }

func (x *ipcConn) SendMsg(b []byte) error {
	ctx := context.Background()
	if err := x.c.SendBytes(ctx, b); err != nil {
		return err
	}
	// Written by this goroutine now: a call's latency must not wait for
	// ipc's writer goroutine to be scheduled.
	return x.c.Flush(ctx)
}

func (x *ipcConn) RecvMsg() ([]byte, error) {
	n, err := x.c.RecvBytesInto(context.Background(), x.buf)
	if err != nil {
		var short *ipc.BufferTooShortError
		if errors.As(err, &short) {
			if len(short.Message) <= 1<<20 {
				x.buf = make([]byte, 2*len(short.Message))
			}
			return short.Message, nil
		}
		return nil, err
	}
	return x.buf[:n], nil
}

func (x *ipcConn) SameBuild() bool { return x.c.SameBuild() }
func (x *ipcConn) Close() error    { return x.c.Close() }

// testDial, set by tests only, replaces the network for addresses of
// its network "mem".
var testDial func(ctx context.Context, addr address, key []byte) (msgConn, error)

// dialOpts are the ipc options proxies received from other processes
// dial with (TLS configurations do not travel: see the package
// documentation).
func dial(ctx context.Context, addr address, key []byte, opts ...ipc.Option) (msgConn, error) {
	if testDial != nil && addr.network == "mem" {
		return testDial(ctx, addr, key)
	}
	c, err := ipc.Dial(ctx, addr.network, addr.addr, key, opts...)
	if err != nil {
		return nil, err
	}
	return newIPCConn(c), nil
}
