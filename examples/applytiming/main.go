// Command applytiming ports the seed article's comparison of Pool.apply
// and Pool.apply_async, and its Pool.map and Pool.map_async example: four
// calls of do_something, which sleeps, on a Pool(4).
//
//	def do_something(seconds):
//	    print(f'{os.getpid()} Sleeping {seconds} second')
//	    time.sleep(seconds)
//	    print(f'{os.getpid()} Done sleeping for {seconds}')
//
//	pool = Pool(processes=4)
//	for i in range(4):
//	    pool.apply(do_something, args=(1,))   # or apply_async
//	pool.close()
//	pool.join()
//	print(f"Finished in {round(finish_time - start_time, 2)} second(s)")
//
// apply waits for each call, so the four run one after the other (about
// four sleeps in all); apply_async returns at once, so the four run side by
// side in four workers (about one sleep). map(do_something, [1, 2, 3, 4])
// takes as long as its longest call, and map_async returns at once. (The
// seed's apply output shows four pids; here the four apply calls may all
// run in the same worker, which is idle again each time the next one comes.)
//
// The seed sleeps 1 s; this program sleeps 200 ms by default so that it is
// quick to run (-sleep 1s for the seed's workload). The workers print to the
// program's standard output, as Python's do.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/multiproc-go/multiproc"
)

// doSomething is the seed's do_something. It runs in a worker process and
// prints from there, so the pid shows which worker ran which call.
var doSomething = multiproc.Register("applytiming.do_something",
	multiproc.NoResult(func(ctx context.Context, d time.Duration) error {
		fmt.Printf("%d Sleeping %v\n", os.Getpid(), d)
		select {
		case <-time.After(d): // the simulated workload
		case <-ctx.Done():
			return ctx.Err()
		}
		fmt.Printf("%d Done sleeping for %v\n", os.Getpid(), d)
		return nil
	}))

func main() {
	multiproc.Main() // Go's `if __name__ == "__main__":`; must come first
	sleep := flag.Duration("sleep", 200*time.Millisecond, "how long do_something sleeps (the seed: 1s)")
	flag.Parse()
	if err := run(context.Background(), *sleep); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, d time.Duration) error {
	steps := []struct {
		title string
		do    func(context.Context, *multiproc.Pool, time.Duration) error
	}{
		{fmt.Sprintf("for i in range(4): pool.apply(do_something, (%v,))", d), apply},
		{fmt.Sprintf("for i in range(4): pool.apply_async(do_something, (%v,))", d), applyAsync},
		{fmt.Sprintf("pool.map(do_something, [%v %v %v %v])", d, 2*d, 3*d, 4*d), poolMap},
		{fmt.Sprintf("pool.map_async(do_something, [%v %v %v %v])", d, 2*d, 3*d, 4*d), mapAsync},
	}
	for _, s := range steps {
		fmt.Println("==", s.title)
		start := time.Now()
		// A new Pool(processes=4) for each, as in the seed's programs.
		pool, err := multiproc.NewPool(ctx, 4)
		if err != nil {
			return err
		}
		err = s.do(ctx, pool, d)
		// Close is the seed's pool.close() followed by pool.join().
		if cerr := pool.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		fmt.Printf("Finished in %.2f second(s)\n", time.Since(start).Seconds())
	}
	return nil
}

// apply blocks until each call has returned: the calls run one at a time.
func apply(ctx context.Context, pool *multiproc.Pool, d time.Duration) error {
	for range 4 {
		if _, err := multiproc.Apply(ctx, pool, doSomething, d); err != nil {
			return err
		}
	}
	return nil
}

// applyAsync submits the four calls without waiting: they run at the same
// time, one per worker. The caller's Close waits for them.
func applyAsync(ctx context.Context, pool *multiproc.Pool, d time.Duration) error {
	var results []*multiproc.AsyncResult[struct{}]
	for range 4 {
		results = append(results, multiproc.ApplyAsync(ctx, pool, doSomething, d))
	}
	// Python drops the AsyncResults and so never sees a failure; check them.
	for _, r := range results {
		if _, err := r.Get(ctx); err != nil {
			return err
		}
	}
	return nil
}

// poolMap passes each duration to one call and blocks until all returned.
func poolMap(ctx context.Context, pool *multiproc.Pool, d time.Duration) error {
	_, err := multiproc.Map(ctx, pool, doSomething, []time.Duration{d, 2 * d, 3 * d, 4 * d})
	return err
}

// mapAsync is poolMap without blocking: the main process goes on at once
// and waits when it needs the results.
func mapAsync(ctx context.Context, pool *multiproc.Pool, d time.Duration) error {
	r := multiproc.MapAsync(ctx, pool, doSomething, []time.Duration{d, 2 * d, 3 * d, 4 * d})
	fmt.Println("map_async returned at once; the main process goes on")
	_, err := r.Get(ctx)
	return err
}
