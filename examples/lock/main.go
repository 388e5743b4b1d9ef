// Command lock prints from five goroutines and then five processes, each
// under a lock, so that no two lines mix: the seeds' Lock example, with its
// comparison of threads (here goroutines and a sync.Mutex) and processes
// (a psync.Lock, which the children are given as their argument).
//
// Python:
//
//	def worker(sign, lock):
//	    lock.acquire()
//	    print(sign, os.getpid())
//	    lock.release()
//
//	print('Main:', os.getpid())
//	lock = threading.Lock()
//	for i in range(5): threading.Thread(target=worker, args=('thread', lock)).start() ...
//	lock = multiprocessing.Lock()
//	for i in range(5): multiprocessing.Process(target=worker, args=('process', lock)).start() ...
//
// Run it with
//
//	go run ./examples/lock
//
// The goroutines all print the parent's pid (one process); each child
// prints its own.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"sync"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/psync"
)

// worker is Python's worker(sign, lock) for the processes: Lock, print,
// Unlock (Do is Python's `with lock:`). It is registered in a
// package-level var so that every copy of the program knows it.
var worker = multiproc.Register("lock-worker", multiproc.NoResult(func(ctx context.Context, lock *psync.Lock) error {
	return lock.Do(ctx, func() { fmt.Println("process", os.Getpid()) })
}))

func main() {
	multiproc.Main()
	ctx := context.Background()
	fmt.Println("Main:", os.Getpid())

	// Multi-thread: goroutines share the parent's memory, so a sync.Mutex
	// is enough.
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			mu.Lock()
			defer mu.Unlock()
			fmt.Println("thread", os.Getpid())
		})
	}
	wg.Wait()

	// Multi-process: the lock must live in memory the processes share.
	lock, err := psync.NewLock()
	if err != nil {
		log.Fatal(err)
	}
	defer lock.Close()
	var procs []*multiproc.Process
	for range 5 {
		p := multiproc.NewProcess(worker, lock)
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
}
