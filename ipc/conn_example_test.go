package ipc_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/ipc"
)

// greeter answers one greeting on its end of a Pipe.
var greeter = multiproc.Register("example.greeter", multiproc.NoResult(func(ctx context.Context, c *ipc.Conn) error {
	defer c.Close() // flushes and tells the parent: its next Recv is io.EOF
	name, err := ipc.Recv[string](ctx, c)
	if err != nil {
		return err
	}
	return ipc.Send(ctx, c, "hello, "+name)
}))

// A Pipe end goes to a child process as its argument.
func ExamplePipe() {
	ctx := context.Background()
	parent, child, err := ipc.Pipe(true)
	if err != nil {
		log.Fatal(err)
	}
	defer parent.Close()
	p := multiproc.NewProcess(greeter, child)
	if err := p.Start(ctx); err != nil {
		log.Fatal(err)
	}
	child.Close() // the child has its own copy now
	ipc.Send(ctx, parent, "gopher")
	answer, err := ipc.Recv[string](ctx, parent)
	fmt.Println(answer, err)
	_, err = ipc.Recv[string](ctx, parent)
	fmt.Println(err == io.EOF)
	p.Join(ctx)
	// Output:
	// hello, gopher <nil>
	// true
}

// A Listener serves authenticated connections; Dial connects with the
// same key.
func ExampleListen() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	key := []byte("a shared secret")
	l, err := ipc.Listen("unix", filepath.Join(dir, "socket"), key)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept(ctx)
		if err != nil {
			return
		}
		defer c.Close()
		m, _ := c.RecvBytes(ctx)
		c.SendBytes(ctx, append(m, ", too"...))
	}()
	c, err := ipc.Dial(ctx, "unix", l.Addr().String(), key)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.SendBytes(ctx, []byte("hello"))
	m, err := c.RecvBytes(ctx)
	fmt.Printf("%s %v\n", m, err)
	_, err = ipc.Dial(ctx, "unix", l.Addr().String(), []byte("wrong"))
	fmt.Println(err != nil)
	// Output:
	// hello, too <nil>
	// true
}
