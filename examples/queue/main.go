// Command queue is the seeds' two small Queue examples: a child puts a
// string into a queue and the parent gets it; then a child that catches an
// error passes it to the parent through a queue.
//
// Python:
//
//	def worker_function(q):
//	    q.put('Hello from worker')
//
//	q = Queue()
//	process = Process(target=worker_function, args=(q,))
//	process.start()
//	print(q.get())  # Output: Hello from worker
//	process.join()
//
//	def worker_function(q):
//	    try:
//	        raise ValueError('An error occurred in worker')
//	    except Exception as e:
//	        q.put(e)
//	...
//	error = q.get()
//	if error:
//	    print(f'Error: {error}')
//
// Run it with
//
//	go run ./examples/queue
//
// The queue is typed: a Queue[string] for the message. Go errors are
// values of many types, so the second queue carries the error's text, as
// a string (an error value sent across processes as a result is what
// multiproc's Process and pool results do, with errors.Is intact).
package main

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/ipc"
)

// worker is Python's worker_function: it is given the queue (a resource:
// the child's copy is the same queue) and puts one item.
var worker = multiproc.Register("queue-worker", multiproc.NoResult(func(ctx context.Context, q *ipc.Queue[string]) error {
	return q.Put(ctx, "Hello from worker")
}))

// failing catches its error and puts it into the queue instead of
// returning it.
var failing = multiproc.Register("queue-failing", multiproc.NoResult(func(ctx context.Context, q *ipc.Queue[string]) error {
	if err := work(); err != nil {
		return q.Put(ctx, err.Error())
	}
	return q.Put(ctx, "")
}))

// work is Python's raise ValueError('An error occurred in worker').
func work() error {
	//lint:ignore ST1005 the seed's message, printed as Python prints it
	return errors.New("An error occurred in worker")
}

func run(ctx context.Context, f multiproc.Func[*ipc.Queue[string], struct{}], print func(string)) error {
	q, err := ipc.NewQueue[string]()
	if err != nil {
		return err
	}
	defer q.Release()
	p := multiproc.NewProcess(f, q)
	if err := p.Start(ctx); err != nil {
		return err
	}
	defer p.Close()
	s, err := q.Get(ctx)
	if err != nil {
		return err
	}
	print(s)
	if err := p.Join(ctx); err != nil {
		return err
	}
	_, err = multiproc.Result[struct{}](p)
	return err
}

func main() {
	multiproc.Main()
	ctx := context.Background()
	if err := run(ctx, worker, func(s string) { fmt.Println(s) }); err != nil {
		log.Fatal(err)
	}
	if err := run(ctx, failing, func(s string) {
		if s != "" {
			fmt.Printf("Error: %s\n", s)
		}
	}); err != nil {
		log.Fatal(err)
	}
}
