package shm_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/multiproc-go/multiproc/shm"
)

// After a holder died (ErrOwnerDead), the repair belongs inside f: by the
// time Do returns, the lock is released, and an Unlock without
// MarkConsistent has made it not recoverable. Here f repairs the counter
// unconditionally (a real program would recompute it from what it
// protects) and marks the lock consistent; MarkConsistent is nil when
// there was nothing to mark.
func ExampleValue_Do() {
	counter, err := shm.NewValue[int64](0)
	if err != nil {
		log.Fatal(err)
	}
	defer counter.Close()
	ctx := context.Background()
	for range 3 {
		err := counter.Do(ctx, func() {
			if counter.Load() < 0 { // the invariant a dead holder may have broken
				counter.Store(0)
			}
			counter.Store(counter.Load() + 1)
			if err := counter.MarkConsistent(); err != nil {
				log.Fatal(err)
			}
		})
		if err != nil && !errors.Is(err, shm.ErrOwnerDead) {
			log.Fatal(err)
		}
	}
	fmt.Println(counter.Load())
	// Output: 3
}
