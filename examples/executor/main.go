// Command executor ports the seed article's concurrent.futures examples to
// multiproc's Executor: submit and result, as_completed and executor.map,
// plus wait with FIRST_COMPLETED.
//
//	def do_something(seconds):
//	    print(f'{os.getpid()} Sleeping {seconds} second')
//	    time.sleep(seconds)
//	    return f'{os.getpid()} Done sleeping for {seconds}'
//
//	with ProcessPoolExecutor() as executor:
//	    future = executor.submit(do_something, 1)
//	    future2 = executor.submit(do_something, 1)
//	    print(future.result())
//	    print(future2.result())
//
//	with ProcessPoolExecutor() as executor:
//	    futures = [executor.submit(do_something, 1) for _ in range(4)]
//	    for future in as_completed(futures):
//	        print(future.result())
//
//	with ProcessPoolExecutor() as executor:
//	    for result in executor.map(do_something, [1, 2, 3, 4]):
//	        print(result)
//
// The seed's last two scripts repeat the first two with a do_something that
// returns 'Done sleep'; they make the same calls.
//
// ProcessPoolExecutor() has one worker per CPU, and so has
// NewExecutor(ctx, 0). The seed sleeps 1 s; this program sleeps 200 ms by
// default (-sleep 1s for the seed's workload).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"time"

	"github.com/multiproc-go/multiproc"
)

// doSomething is the seed's do_something: it runs in a worker process,
// prints there and returns a string naming the worker.
var doSomething = multiproc.Register("executor.do_something",
	func(ctx context.Context, d time.Duration) (string, error) {
		fmt.Printf("%d Sleeping %v\n", os.Getpid(), d)
		select {
		case <-time.After(d): // the simulated workload
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return fmt.Sprintf("%d Done sleeping for %v", os.Getpid(), d), nil
	})

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
		do    func(context.Context, *multiproc.Executor, time.Duration) error
	}{
		{fmt.Sprintf("executor.submit(do_something, %v) twice; future.result()", d), submit},
		{fmt.Sprintf("as_completed([executor.submit(do_something, %v) for _ in range(4)])", d), asCompleted},
		{fmt.Sprintf("executor.map(do_something, [%v %v %v %v])", d, 2*d, 3*d, 4*d), executorMap},
		{fmt.Sprintf("wait([submit(do_something, s) for s in [%v %v %v %v]], return_when=FIRST_COMPLETED)", d, 4*d, 4*d, 4*d), waitFirst},
	}
	for _, s := range steps {
		fmt.Println("==", s.title)
		start := time.Now()
		// with ProcessPoolExecutor() as executor: one worker per CPU.
		executor, err := multiproc.NewExecutor(ctx, 0)
		if err != nil {
			return err
		}
		err = s.do(ctx, executor, d)
		// Leaving the with block: shutdown(wait=True).
		if serr := executor.Shutdown(true, false); err == nil {
			err = serr
		}
		if err != nil {
			return err
		}
		fmt.Printf("Finished in %.2f second(s)\n", time.Since(start).Seconds())
	}
	return nil
}

func submit(ctx context.Context, executor *multiproc.Executor, d time.Duration) error {
	future := multiproc.Submit(ctx, executor, doSomething, d)
	future2 := multiproc.Submit(ctx, executor, doSomething, d)
	for _, f := range []*multiproc.Future[string]{future, future2} {
		result, err := f.Result(ctx)
		if err != nil {
			return err
		}
		fmt.Println(result)
	}
	return nil
}

func asCompleted(ctx context.Context, executor *multiproc.Executor, d time.Duration) error {
	var futures []*multiproc.Future[string]
	for range 4 {
		futures = append(futures, multiproc.Submit(ctx, executor, doSomething, d))
	}
	for future, err := range multiproc.AsCompleted(ctx, futures...) {
		if err != nil {
			return err
		}
		result, err := future.Result(ctx)
		if err != nil {
			return err
		}
		fmt.Println(result)
	}
	return nil
}

// executorMap: Python's executor.map is multiproc.Imap, which yields the
// results in order as they become available.
func executorMap(ctx context.Context, executor *multiproc.Executor, d time.Duration) error {
	seconds := slices.Values([]time.Duration{d, 2 * d, 3 * d, 4 * d})
	for result, err := range multiproc.Imap(ctx, executor, doSomething, seconds) {
		if err != nil {
			return err
		}
		fmt.Println(result)
	}
	return nil
}

// waitFirst waits for the first of four calls to finish and cancels the
// others. Python's Future.cancel() can only cancel a call that has not
// started; multiproc's also stops a running one (its context in the worker
// is cancelled).
func waitFirst(ctx context.Context, executor *multiproc.Executor, d time.Duration) error {
	var futures []*multiproc.Future[string]
	for _, n := range []time.Duration{1, 4, 4, 4} {
		futures = append(futures, multiproc.Submit(ctx, executor, doSomething, n*d))
	}
	done, notDone, err := multiproc.Wait(ctx, futures, multiproc.FirstCompleted)
	if err != nil {
		return err
	}
	for _, f := range done {
		result, err := f.Result(ctx)
		if err != nil {
			return err
		}
		fmt.Println("first completed:", result)
	}
	fmt.Println("not done:", len(notDone))
	cancelled := 0
	for _, f := range notDone {
		if f.Cancel() {
			cancelled++
		}
	}
	for _, f := range notDone {
		if _, err := f.Result(ctx); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	fmt.Printf("cancelled %d of %d, running ones included\n", cancelled, len(notDone))
	return nil
}
