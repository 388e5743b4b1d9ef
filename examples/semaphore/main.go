// Command semaphore lets at most two of five processes into a section at
// a time: the seeds' Semaphore example.
//
// Python:
//
//	def worker(sem):
//	    with sem:
//	        # critical section of code
//	        pass
//
//	sem = Semaphore(2)  # Only 2 processes allowed at a time
//
// Run it with
//
//	go run ./examples/semaphore
//
// Each process says when it enters and leaves; the lines come in any
// order, but never more than two processes are inside at once.
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/psync"
)

var worker = multiproc.Register("semaphore-worker", multiproc.NoResult(func(ctx context.Context, sem *psync.Semaphore) error {
	if err := sem.Acquire(ctx); err != nil {
		return err
	}
	defer sem.Release()
	name := multiproc.CurrentProcess().Name
	fmt.Println(name, "enters")
	time.Sleep(50 * time.Millisecond) // the critical section's work
	fmt.Println(name, "leaves")
	return nil
}))

func main() {
	multiproc.Main()
	ctx := context.Background()
	sem, err := psync.NewSemaphore(2)
	if err != nil {
		log.Fatal(err)
	}
	defer sem.Close()
	var procs []*multiproc.Process
	for range 5 {
		p := multiproc.NewProcess(worker, sem)
		if err := p.Start(ctx); err != nil {
			log.Fatal(err)
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		if err := p.Join(ctx); err != nil {
			log.Fatal(err)
		}
		if _, err := multiproc.Result[struct{}](p); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("all done; units left:", sem.Value())
}
