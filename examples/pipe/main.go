// Command pipe passes messages through Pipes between processes: the seeds'
// two Pipe examples.
//
// Python (duplex, the default):
//
//	def proc1(pipe):
//	    pipe.send('hello')
//	    print('proc1 rec:', pipe.recv())
//
//	def proc2(pipe):
//	    print('proc2 rec:', pipe.recv())
//	    pipe.send('hello, too')
//
//	pipe = mul.Pipe()
//	p1 = mul.Process(target=proc1, args=(pipe[0],))
//	p2 = mul.Process(target=proc2, args=(pipe[1],))
//	p1.start(); p2.start(); p1.join(); p2.join()
//
// Python (one way: the child sends, the parent receives):
//
//	def worker(conn):
//	    conn.send("data sent by the worker")
//	    conn.close()
//
//	parent_conn, child_conn = Pipe()
//	p = Process(target=worker, args=(child_conn,))
//	p.start()
//	print(parent_conn.recv())
//	p.join()
//
// Run it with
//
//	go run ./examples/pipe
//
// A Pipe end is a resource: passed as a Process argument, its socket goes
// to the child, whose end is a Conn like the parent's. Each child closes
// its end when it is done (Close flushes what it sent and tells the other
// end, whose next receive then returns io.EOF). The parent closes its
// copies of the ends it handed over, as Python programs should.
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/ipc"
)

var proc1 = multiproc.Register("proc1", multiproc.NoResult(func(ctx context.Context, pipe *ipc.Conn) error {
	defer pipe.Close()
	if err := ipc.Send(ctx, pipe, "hello"); err != nil {
		return err
	}
	m, err := ipc.Recv[string](ctx, pipe)
	if err != nil {
		return err
	}
	fmt.Println("proc1 rec:", m)
	return nil
}))

var proc2 = multiproc.Register("proc2", multiproc.NoResult(func(ctx context.Context, pipe *ipc.Conn) error {
	defer pipe.Close()
	m, err := ipc.Recv[string](ctx, pipe)
	if err != nil {
		return err
	}
	fmt.Println("proc2 rec:", m)
	return ipc.Send(ctx, pipe, "hello, too")
}))

var worker = multiproc.Register("worker", multiproc.NoResult(func(ctx context.Context, conn *ipc.Conn) error {
	defer conn.Close()
	return ipc.Send(ctx, conn, "data sent by the worker")
}))

func main() {
	multiproc.Main()
	ctx := context.Background()

	// Duplex: both ends go to children.
	a, b, err := ipc.Pipe(true)
	if err != nil {
		log.Fatal(err)
	}
	p1 := multiproc.NewProcess(proc1, a)
	p2 := multiproc.NewProcess(proc2, b)
	for _, p := range []*multiproc.Process{p1, p2} {
		if err := p.Start(ctx); err != nil {
			log.Fatal(err)
		}
	}
	a.Close()
	b.Close()
	for _, p := range []*multiproc.Process{p1, p2} {
		if err := p.Join(ctx); err != nil {
			log.Fatal(err)
		}
		if _, err := multiproc.Result[struct{}](p); err != nil {
			log.Fatal(err)
		}
	}

	// One way: the child sends, the parent receives (Python's
	// Pipe(duplex=False) returns the receiving end first).
	recv, send, err := ipc.Pipe(false)
	if err != nil {
		log.Fatal(err)
	}
	defer recv.Close()
	p := multiproc.NewProcess(worker, send)
	if err := p.Start(ctx); err != nil {
		log.Fatal(err)
	}
	send.Close()
	m, err := ipc.Recv[string](ctx, recv)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m)
	if err := p.Join(ctx); err != nil {
		log.Fatal(err)
	}
}
