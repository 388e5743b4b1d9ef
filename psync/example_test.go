package psync_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/multiproc-go/multiproc/psync"
)

func ExampleLock() {
	lock, err := psync.NewLock()
	if err != nil {
		log.Fatal(err)
	}
	defer lock.Close()
	// Pass lock to processes as a multiproc.NewProcess or pool task
	// argument; here one process uses it.
	ctx := context.Background()
	n := 0
	if err := lock.Do(ctx, func() { n++ }); err != nil { // Python's `with lock:`
		log.Fatal(err)
	}
	fmt.Println(n, lock.Unlock())
	// Output: 1 multiproc: lock not held by this process
}

// DoRecover tells f whether the previous holder died inside its critical
// section; f repairs what the lock guards, and its nil result marks the
// lock consistent.
func ExampleLock_DoRecover() {
	lock, err := psync.NewLock()
	if err != nil {
		log.Fatal(err)
	}
	defer lock.Close()
	ctx := context.Background()
	total, parts := 0, []int{}
	err = lock.DoRecover(ctx, func(ownerDead bool) error {
		if ownerDead {
			// A holder died between appending a part and adding it to
			// total: recompute total from the parts.
			total = 0
			for _, p := range parts {
				total += p
			}
		}
		parts = append(parts, 5)
		total += 5
		return nil
	})
	fmt.Println(total, err)
	// Output: 5 <nil>
}

// A holder's death: the next Lock returns ErrOwnerDead, holding the lock.
func ExampleLock_ownerDead() {
	lock, err := psync.NewLock()
	if err != nil {
		log.Fatal(err)
	}
	defer lock.Close()
	ctx := context.Background()
	err = lock.Lock(ctx)
	switch {
	case errors.Is(err, psync.ErrOwnerDead):
		// The previous holder died inside its critical section: repair
		// what the lock guards, then declare it consistent.
		lock.MarkConsistent()
	case err != nil:
		log.Fatal(err) // ErrNotRecoverable, or ctx ended
	}
	defer lock.Unlock()
	fmt.Println("held")
	// Output: held
}

func ExampleBoundedSemaphore() {
	sem, err := psync.NewBoundedSemaphore(1)
	if err != nil {
		log.Fatal(err)
	}
	defer sem.Close()
	ok, _ := sem.TryAcquire()
	fmt.Println(ok, sem.Release(), sem.Release())
	// Output: true <nil> psync: semaphore released too many times
}

func ExampleEvent() {
	e, err := psync.NewEvent()
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	go e.Set() // in another process, typically
	if err := e.Wait(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.IsSet())
	// Output: true
}

func ExampleCondition() {
	// Over a Lock, which excludes goroutines of one process too; the
	// default RLock (NewCondition(nil)) would let this process's
	// goroutines in together, as it excludes only other processes.
	l, err := psync.NewLock()
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	cond, err := psync.NewCondition(l)
	if err != nil {
		log.Fatal(err)
	}
	defer cond.Close()
	ctx := context.Background()
	ready := false // shared state (in shared memory, across processes)
	go func() {
		cond.Lock(ctx)
		ready = true
		cond.NotifyAll()
		cond.Unlock()
	}()
	cond.Lock(ctx)
	err = cond.WaitFor(ctx, func() bool { return ready })
	cond.Unlock()
	fmt.Println(ready, err)
	// Output: true <nil>
}

func ExampleBarrier() {
	b, err := psync.NewBarrier(2)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	other := make(chan int)
	go func() { i, _ := b.Wait(ctx); other <- i }()
	mine, err := b.Wait(ctx)
	fmt.Println(mine+<-other, err) // indexes 0 and 1, in either order
	// Output: 1 <nil>
}
