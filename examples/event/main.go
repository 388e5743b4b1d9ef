// Command event makes three processes wait until the parent sets an event:
// the seeds' Event example.
//
// Python:
//
//	def wait_for_event(e):
//	    e.wait()
//	    # code to execute after event is set
//
//	event = Event()
//
// Run it with
//
//	go run ./examples/event
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/psync"
)

type signals struct {
	Ready *psync.Semaphore // each waiter releases one unit as it starts waiting
	Go    *psync.Event
}

var waitForEvent = multiproc.Register("wait-for-event", multiproc.NoResult(func(ctx context.Context, s signals) error {
	s.Ready.Release()
	if err := s.Go.Wait(ctx); err != nil {
		return err
	}
	fmt.Println(multiproc.CurrentProcess().Name, "saw the event")
	return nil
}))

func main() {
	multiproc.Main()
	ctx := context.Background()
	ready, err := psync.NewSemaphore(0)
	if err != nil {
		log.Fatal(err)
	}
	defer ready.Close()
	event, err := psync.NewEvent()
	if err != nil {
		log.Fatal(err)
	}
	defer event.Close()
	var procs []*multiproc.Process
	for range 3 {
		p := multiproc.NewProcess(waitForEvent, signals{Ready: ready, Go: event})
		if err := p.Start(ctx); err != nil {
			log.Fatal(err)
		}
		procs = append(procs, p)
	}
	for range procs {
		if err := ready.Acquire(ctx); err != nil { // every child is about to wait
			log.Fatal(err)
		}
	}
	fmt.Println("setting the event")
	event.Set()
	for _, p := range procs {
		if err := p.Join(ctx); err != nil {
			log.Fatal(err)
		}
		if _, err := multiproc.Result[struct{}](p); err != nil {
			log.Fatal(err)
		}
	}
}
