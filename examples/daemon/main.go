// Command daemon shows daemonic and non-daemonic processes at the end of a
// program: Finish waits for the non-daemonic ones and terminates the
// daemonic ones, which is what Python does when its main module ends.
//
// Python:
//
//	def daemon():
//	    print('Starting:', current_process().name)
//	    time.sleep(2)
//	    print('Exiting :', current_process().name)   # never printed
//
//	def non_daemon():
//	    print('Starting:', current_process().name)
//	    print('Exiting :', current_process().name)
//
//	if __name__ == '__main__':
//	    d = Process(name='daemon', target=daemon)
//	    d.daemon = True
//	    n = Process(name='non-daemon', target=non_daemon)
//	    d.start()
//	    time.sleep(1)
//	    n.start()
//
// Python's version sleeps a second so that the daemon gets to print before
// the program ends; here the daemon prints only when its work is done, which
// never happens, so the output is the same on every run.
//
// Run it with
//
//	go run ./examples/daemon
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/multiproc-go/multiproc"
)

var (
	daemon = multiproc.Register("daemon", multiproc.NoResult(func(_ context.Context, work time.Duration) error {
		time.Sleep(work) // an hour of work: Finish terminates it long before
		fmt.Println("Exiting :", multiproc.CurrentProcess().Name)
		return nil
	}))

	nonDaemon = multiproc.Register("non-daemon", multiproc.NoResult(func(_ context.Context, work time.Duration) error {
		fmt.Println("Starting:", multiproc.CurrentProcess().Name)
		time.Sleep(work) // a moment of work: Finish waits for it
		fmt.Println("Exiting :", multiproc.CurrentProcess().Name)
		return nil
	}))
)

func main() {
	multiproc.Main()
	d, n := start()
	// The end of main. Programs write `defer multiproc.Finish()` right
	// after multiproc.Main(); this one calls it here to report afterwards.
	multiproc.Finish()
	report(d)
	report(n)
}

func start() (d, n *multiproc.Process) {
	ctx := context.Background()
	d = multiproc.NewProcess(daemon, time.Hour)
	d.Name = "daemon"
	d.Daemon = true
	n = multiproc.NewProcess(nonDaemon, 200*time.Millisecond)
	n.Name = "non-daemon"
	for _, p := range []*multiproc.Process{d, n} {
		if err := p.Start(ctx); err != nil {
			log.Fatal(err)
		}
	}
	return d, n
}

func report(p *multiproc.Process) {
	code, _ := p.ExitCode()
	fmt.Printf("%s: daemon=%v exit code %d, joined: %v\n", p.Name, p.Daemon, code, p.Join(context.Background()))
}
