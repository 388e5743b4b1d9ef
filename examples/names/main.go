// Command names shows process names and pids: the default "Process-N"
// names, names set before Start, and what a child learns about itself and
// its parent.
//
// Python:
//
//	def worker():
//	    me, parent = current_process(), parent_process()
//	    print(me.name, me.pid, 'child of', parent.name, parent.pid)
//
//	if __name__ == '__main__':
//	    service = Process(name='my_service', target=worker)
//	    worker_1 = Process(name='worker 1', target=worker)
//	    worker_2 = Process(target=worker)  # named Process-3
//
// Python's children print their own lines, in whatever order they run. Here
// each child returns its line as its result and the parent prints them in
// order after joining, so the output is the same on every run (but the
// pids).
//
// Run it with
//
//	go run ./examples/names
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/multiproc-go/multiproc"
)

// describe runs in each child and describes it.
var describe = multiproc.Register("describe", func(context.Context, struct{}) (string, error) {
	me := multiproc.CurrentProcess()
	parent, ok := multiproc.ParentProcess()
	if !ok {
		return "", fmt.Errorf("%s has no parent process", me.Name)
	}
	return fmt.Sprintf("%s (pid %d), child of %s (pid %d)", me.Name, me.Pid, parent.Name, parent.Pid), nil
})

func main() {
	multiproc.Main()

	me := multiproc.CurrentProcess()
	fmt.Printf("%s (pid %d)\n", me.Name, me.Pid)

	service := multiproc.NewProcess(describe, struct{}{})
	service.Name = "my_service"
	worker1 := multiproc.NewProcess(describe, struct{}{})
	worker1.Name = "worker 1"
	worker2 := multiproc.NewProcess(describe, struct{}{}) // keeps its default name
	processes := []*multiproc.Process{service, worker1, worker2}

	ctx := context.Background()
	for _, p := range processes {
		if err := p.Start(ctx); err != nil {
			log.Fatal(err)
		}
	}
	for _, p := range processes {
		if err := p.Join(ctx); err != nil {
			log.Fatal(err)
		}
		line, err := multiproc.Result[string](p)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %s\n", p.Name, line)
	}
}
