// Command subclass runs a process defined as a type, the Go form of
// subclassing Python's Process.
//
// Python:
//
//	class MyProcess(Process):
//	    def __init__(self, target, args=()):
//	        super(MyProcess, self).__init__()
//	        self.target = target
//	        self.args = args
//
//	    def run(self):
//	        self.result = self.target(*self.args)
//
//	if __name__ == '__main__':
//	    process = MyProcess(target=do_something, args=(1,))
//	    process.start()
//	    process.join()
//
// In Python self.result is set in the child and lost: the parent's object
// never sees it. Here the struct's exported fields travel to the child
// before Run and come back after it, so the parent reads Result after Join.
//
// Run it with
//
//	go run ./examples/subclass
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/multiproc-go/multiproc"
)

// MyProcess is the process type. Its exported fields are its state: Seconds
// is the argument (Python's args), Result what Run leaves for the parent.
// A function value cannot travel to another process, so the target is the
// code of Run itself, compiled into every copy of the program.
type MyProcess struct {
	Seconds float64
	Result  string
}

// Run runs in the child.
func (p *MyProcess) Run(ctx context.Context) error {
	p.Result = doSomething(p.Seconds)
	return nil
}

func doSomething(seconds float64) string {
	fmt.Printf("%d Sleeping %g second(s)\n", os.Getpid(), seconds)
	time.Sleep(time.Duration(seconds * float64(time.Second))) // the work
	fmt.Printf("%d Done sleeping for %g\n", os.Getpid(), seconds)
	return fmt.Sprintf("slept %g second(s) in pid %d", seconds, os.Getpid())
}

// Registering the type lets a child build a MyProcess from the fields the
// parent sends. Like functions, types are registered in a package-level var.
var _ = multiproc.RegisterProcess[MyProcess]("my-process")

func main() {
	multiproc.Main()

	start := time.Now()
	mine := &MyProcess{Seconds: 0.25}
	process := multiproc.NewProcessOf(mine)
	ctx := context.Background()
	if err := process.Start(ctx); err != nil {
		log.Fatal(err)
	}
	if err := process.Join(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("child %d ran; result: %s\n", process.Pid(), mine.Result)
	fmt.Printf("Finished in %.2f second(s)\n", time.Since(start).Seconds())
}
