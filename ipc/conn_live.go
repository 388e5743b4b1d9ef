package ipc

import (
	"context"
	"sync"
	"time"

	"github.com/multiproc-go/multiproc/internal/boot"
)

// live holds every Conn of this process that is not closed, so that a
// child process flushes what its Conns still buffer before it exits: a
// Process target that sends and returns without Close must not lose its
// last messages to the exit (the writer goroutine may not have run yet,
// with GOMAXPROCS=1 it usually has not).
var live sync.Map // *Conn → struct{}

// exitFlushTimeout bounds the flush of all Conns at a child's exit.
const exitFlushTimeout = 5 * time.Second

func init() {
	boot.OnExit(func() {
		ctx, cancel := context.WithTimeout(context.Background(), exitFlushTimeout)
		defer cancel()
		live.Range(func(k, _ any) bool {
			c := k.(*Conn)
			if c.cfg.canWrite && !c.closed.Load() {
				c.Flush(ctx)
			}
			return true
		})
	})
}
