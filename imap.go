package multiproc

import (
	"context"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"

	"github.com/multiproc-go/multiproc/internal/core"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// Imap runs f on each item of seq and yields the results in order as they
// become available: Python's imap, lazily. The input is read only as far as
// the bounded prefetch ([Prefetch], default 64 chunks per worker) allows, so
// seq may be endless. On the first error it yields (zero, err) and stops.
// Stopping the loop early cancels the work in flight. Chunks default to 1
// item; pass [Chunksize] for small items. Use slices.Values to pass a slice.
//
// seq is read on a goroutine of Imap's, so finished results are yielded
// while seq waits for its next item. If the loop stops early, or ctx ends,
// seq is stopped at its next item (its yield returns false), and the loop
// returns once seq has returned, so seq never runs after it.
func Imap[In, Out any](ctx context.Context, w Workers, f Func[In, Out], seq iter.Seq[In], opts ...CallOption) iter.Seq2[Out, error] {
	return imap(ctx, w.engine(), f, seq, callOptions(opts), true)
}

// ImapUnordered is Imap yielding results in completion order: Python's
// imap_unordered.
func ImapUnordered[In, Out any](ctx context.Context, w Workers, f Func[In, Out], seq iter.Seq[In], opts ...CallOption) iter.Seq2[Out, error] {
	return imap(ctx, w.engine(), f, seq, callOptions(opts), false)
}

// slot is one chunk of an imap call.
type slot[Out any] struct {
	vals []Out
	err  error
	done bool
}

func imap[In, Out any](ctx context.Context, e *engine, f Func[In, Out], seq iter.Seq[In], cfg callConfig, ordered bool) iter.Seq2[Out, error] {
	return func(yield func(Out, error) bool) {
		var zero Out
		if err := cfg.err; err != nil {
			yield(zero, err)
			return
		}
		if err := f.check(); err != nil {
			yield(zero, err)
			return
		}
		if err := e.checkTransfer(f.e); err != nil {
			yield(zero, err)
			return
		}
		cs := max(cfg.chunksize, 1)
		prefetch := cfg.prefetch
		if prefetch <= 0 {
			prefetch = 64 * e.size
		}
		ictx, cancel := context.WithCancel(ctx)
		defer cancel()

		var (
			mu       sync.Mutex
			inflight []*slot[Out] // ordered: in submission order; unordered: completed, not yet yielded
			notify   = make(chan struct{}, 1)
			pending  int // submitted, not yet yielded
		)
		// credits bound the chunks submitted and not yet yielded to
		// prefetch: the feeder takes one before a submit, drain gives it
		// back when it yields the chunk's slot.
		credits := make(chan struct{}, prefetch)
		// Buffers are recycled within the call: a chunk's encoded items
		// go back to chunkBufs once its worker answered, its input slice
		// is the feeder's next chunk once encoded, and the slice its
		// results were decoded into goes back once they have been yielded,
		// so a long imap allocates per chunk only its slot and task.
		var (
			valsMu   sync.Mutex
			freeVals [][]Out
		)
		getVals := func() []Out {
			valsMu.Lock()
			defer valsMu.Unlock()
			if n := len(freeVals); n > 0 {
				v := freeVals[n-1]
				freeVals = freeVals[:n-1]
				return v[:0]
			}
			return nil
		}
		putVals := func(v []Out) {
			if cap(v) == 0 {
				return
			}
			clear(v) // do not keep results alive through the free list
			valsMu.Lock()
			if len(freeVals) < 2*prefetch {
				freeVals = append(freeVals, v)
			}
			valsMu.Unlock()
		}
		submit := func(chunk []In) error {
			s := &slot[Out]{}
			res := e.outgoing()
			payload, err := wire.AppendSliceOut(f.in, chunkBufs.Get(), chunk, &res)
			if err != nil {
				return fmt.Errorf("multiproc: item of %q: %w", f.e.Name, err)
			}
			if err := e.checkSize(f.e.Name, fmt.Sprintf("chunk of %d items", len(chunk)), payload); err != nil {
				res.Close()
				return err
			}
			t := &core.Task{Fn: f.e, Chunk: true, Payload: payload, Res: res.Res, Items: len(chunk), Ctx: ictx, Timeout: cfg.timeout,
				Done: func(res core.Result) {
					var vals []Out
					var err error
					if res.Err == nil {
						// The worker answered, so nothing writes the
						// payload any more.
						chunkBufs.Put(payload)
					}
					if res.Data != nil {
						vals, err = decodeChunk(f.out, getVals(), res)
					} else if res.Res != nil {
						res.Res.Close()
					}
					if res.Err != nil {
						err = res.Err
					}
					mu.Lock()
					s.vals, s.err, s.done = vals, err, true
					if !ordered {
						inflight = append(inflight, s)
					}
					mu.Unlock()
					select {
					case notify <- struct{}{}:
					default:
					}
				}}
			mu.Lock()
			if ordered {
				inflight = append(inflight, s)
			}
			pending++
			mu.Unlock()
			if err := e.submit(t); err != nil {
				mu.Lock()
				s.err, s.done = err, true
				if !ordered {
					inflight = append(inflight, s)
				}
				mu.Unlock()
			}
			return nil
		}
		// drain yields every finished chunk that may be yielded now; with
		// block set it first waits for one. It returns false when iteration
		// must end.
		drain := func(block bool) bool {
			for {
				mu.Lock()
				var ready []*slot[Out]
				if ordered {
					for len(inflight) > 0 && inflight[0].done {
						ready = append(ready, inflight[0])
						inflight = inflight[1:]
					}
				} else {
					ready, inflight = inflight, nil
				}
				pending -= len(ready)
				mu.Unlock()
				for _, s := range ready {
					for _, v := range s.vals {
						if !yield(v, nil) {
							return false
						}
					}
					putVals(s.vals)
					s.vals = nil
					<-credits // taken by the feeder for this slot
					if s.err != nil {
						yield(zero, s.err)
						return false
					}
				}
				if len(ready) > 0 || !block {
					return true
				}
				select {
				case <-notify:
				case <-ctx.Done():
					yield(zero, fmt.Errorf("multiproc: imap of %q: %w", f.e.Name, ctx.Err()))
					return false
				}
			}
		}
		// The input is read on a goroutine of its own, so that results are
		// yielded while the input waits for its next item (a slow generator,
		// a network stream; Python's imap has a thread for it too). It
		// submits each whole chunk itself, once it has a credit (a hand-off
		// to this goroutine to submit cost a goroutine switch per chunk),
		// and stops at its next item once the call ends.
		errc := make(chan error, 1) // the feeder's submit error, if any
		fed := make(chan struct{})
		// On return, stop the feeder and wait for it, so that seq never runs
		// after Imap returns (the caller may read what seq touched).
		defer func() {
			cancel()
			<-fed
		}()
		go func() {
			defer close(fed)
			// Checked per item: an atomic load, where ictx.Err takes the
			// context's lock.
			var ended atomic.Bool
			stop := context.AfterFunc(ictx, func() { ended.Store(true) })
			defer stop()
			chunk := make([]In, 0, cs)
			send := func() bool {
				select {
				case credits <- struct{}{}:
				case <-ictx.Done():
					return false
				}
				err := submit(chunk)
				// Encoded: its items need not stay alive, and the slice is
				// the next chunk's.
				clear(chunk)
				chunk = chunk[:0]
				if err != nil {
					errc <- err
					return false
				}
				return true
			}
			for x := range seq {
				if ended.Load() {
					return
				}
				chunk = append(chunk, x)
				if len(chunk) == cs && !send() {
					return
				}
			}
			if len(chunk) > 0 && !ended.Load() {
				send()
			}
		}()
		feeding := fed
		for {
			if !drain(false) {
				return
			}
			if feeding == nil && pendingNow(&mu, &pending) == 0 {
				break // drain yielded the last results: nothing to wait for
			}
			select {
			case <-feeding:
				feeding = nil
				select {
				case err := <-errc:
					yield(zero, err)
					return
				default:
				}
			case err := <-errc:
				yield(zero, err)
				return
			case <-notify:
			case <-ctx.Done():
				yield(zero, fmt.Errorf("multiproc: imap of %q: %w", f.e.Name, ctx.Err()))
				return
			}
		}
		drain(false)
	}
}

func pendingNow(mu *sync.Mutex, n *int) int {
	mu.Lock()
	defer mu.Unlock()
	return *n
}
