package multiproc_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/multiproc-go/multiproc"
)

// countdown sleeps for its argument and returns it: a stand-in for work of
// different lengths.
var countdown = multiproc.Register("example.countdown", multiproc.Plain(func(d time.Duration) time.Duration {
	time.Sleep(d)
	return d
}))

// Waiting for whichever of several processes ends first, with a deadline
// for all of them: Exited is Python's Process.sentinel, a channel to
// select on.
func ExampleProcess_Exited() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	short := multiproc.NewProcess(countdown, 10*time.Millisecond)
	long := multiproc.NewProcess(countdown, time.Hour)
	for _, p := range []*multiproc.Process{short, long} {
		if err := p.Start(ctx); err != nil {
			log.Fatal(err)
		}
	}
	select {
	case <-short.Exited():
		d, err := multiproc.Result[time.Duration](short)
		fmt.Println("short finished first:", d, err)
	case <-long.Exited():
		fmt.Println("long finished first")
	case <-ctx.Done():
		fmt.Println("timed out")
	}
	long.Kill()
	<-long.Exited()
	code, _ := long.ExitCode()
	fmt.Println("long killed, exit code", code)
	// Output:
	// short finished first: 10ms <nil>
	// long killed, exit code -9
}
