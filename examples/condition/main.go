// Command condition makes three processes wait on a condition until the
// parent announces that the work is ready and notifies them all: the seeds'
// Condition example.
//
// Python:
//
//	def worker(cond):
//	    with cond:
//	        # wait for notification
//	        cond.wait()
//	        # continue processing
//
//	cond = Condition()
//
// Run it with
//
//	go run ./examples/condition
//
// A bare cond.wait() misses a notification sent before it waits, so the
// workers wait for a predicate (WaitFor): the shared "ready" flag, read
// and written under the condition's lock. psync.NewCondition(nil) is over
// an RLock, as Python's Condition() is; Wait releases every level of it.
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/psync"
)

type shared struct {
	Cond  *psync.Condition
	Ready *psync.Event // the predicate's state (any shared state would do)
}

var worker = multiproc.Register("condition-worker", multiproc.NoResult(func(ctx context.Context, s shared) error {
	if err := s.Cond.Lock(ctx); err != nil {
		return err
	}
	defer s.Cond.Unlock()
	if err := s.Cond.WaitFor(ctx, s.Ready.IsSet); err != nil {
		return err
	}
	fmt.Println(multiproc.CurrentProcess().Name, "continues processing")
	return nil
}))

func main() {
	multiproc.Main()
	ctx := context.Background()
	cond, err := psync.NewCondition(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cond.Close()
	ready, err := psync.NewEvent()
	if err != nil {
		log.Fatal(err)
	}
	defer ready.Close()
	var procs []*multiproc.Process
	for range 3 {
		p := multiproc.NewProcess(worker, shared{Cond: cond, Ready: ready})
		if err := p.Start(ctx); err != nil {
			log.Fatal(err)
		}
		procs = append(procs, p)
	}
	if err := cond.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("work is ready: notifying all")
	ready.Set()
	if err := cond.NotifyAll(); err != nil {
		log.Fatal(err)
	}
	cond.Unlock()
	for _, p := range procs {
		if err := p.Join(ctx); err != nil {
			log.Fatal(err)
		}
		if _, err := multiproc.Result[struct{}](p); err != nil {
			log.Fatal(err)
		}
	}
}
