// Command process starts several processes and waits for them: the seeds'
// first Process example.
//
// Python:
//
//	def do_something(seconds):
//	    print(f'{os.getpid()} Sleeping {seconds} second(s)')
//	    time.sleep(seconds)
//	    print(f'{os.getpid()} Done sleeping for {seconds}')
//
//	if __name__ == '__main__':
//	    print('Main:', os.getpid())
//	    processes = [Process(target=do_something, args=(1,)) for _ in range(4)]
//	    for p in processes:
//	        p.start()
//	    for p in processes:
//	        p.join()
//	    print(f'Finished in {round(time.perf_counter() - start, 2)} second(s)')
//
// Run it with
//
//	go run ./examples/process
//
// The children print straight to the terminal, like Python's print, so their
// lines interleave differently on every run.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/multiproc-go/multiproc"
)

// doSomething runs in the children. A child is this same program started
// again, so the function is registered in a package-level var: every copy of
// the program registers it while it initialises, before main runs, and the
// parent names it when it starts a process.
var doSomething = multiproc.Register("do-something", multiproc.NoResult(
	func(_ context.Context, seconds float64) error {
		me := multiproc.CurrentProcess()
		fmt.Printf("%s (pid %d): sleeping %g second(s)\n", me.Name, os.Getpid(), seconds)
		time.Sleep(time.Duration(seconds * float64(time.Second))) // the work
		fmt.Printf("%s (pid %d): done sleeping for %g\n", me.Name, os.Getpid(), seconds)
		return nil
	}))

func main() {
	// Go's `if __name__ == '__main__':`. In the program you started it
	// returns at once; in a child it runs the child's function and exits,
	// so nothing below runs there.
	multiproc.Main()

	start := time.Now()
	fmt.Println("Main:", os.Getpid())
	ctx := context.Background()
	var processes []*multiproc.Process
	for range 4 {
		p := multiproc.NewProcess(doSomething, 0.25)
		if err := p.Start(ctx); err != nil {
			log.Fatal(err)
		}
		processes = append(processes, p)
	}
	for _, p := range processes {
		if err := p.Join(ctx); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("Finished in %.2f second(s)\n", time.Since(start).Seconds())
}
