// Command prefork hands one listening socket to a pool of worker processes
// that each accept connections on it: the classic pre-fork server, which
// Python's multiprocessing can only do by inheritance (fork). Here the
// listener is an ordinary argument: the pool's initializer receives it in
// every worker (each gets its own duplicate of the descriptor), and tasks
// accept on it. A crash in one worker would take down one process, not
// the server.
//
// The main program plays the clients: it opens connections and prints
// which worker answered each.
package main

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"slices"
	"time"

	"github.com/multiproc-go/multiproc"
)

// listener is the worker's copy of the socket, set by its initializer and
// kept for the worker's life.
var listener net.Listener

var keep = multiproc.Register("prefork.keep", func(_ context.Context, ln net.Listener) (struct{}, error) {
	listener = ln
	return struct{}{}, nil
})

// serve accepts one connection and answers with a greeting that names
// this worker. It returns the worker's pid.
var serve = multiproc.Register("prefork.serve", func(ctx context.Context, _ struct{}) (int, error) {
	c, err := listener.Accept()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	name, _ := bufio.NewReader(c).ReadString('\n')
	_, err = fmt.Fprintf(c, "hello %s from %s\n", name[:len(name)-1], multiproc.CurrentProcess().Name)
	return os.Getpid(), err
})

func main() {
	multiproc.Main()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	pool, err := multiproc.NewPool(ctx, 3, multiproc.Initializer(keep, ln))
	ln.Close() // every worker holds its own copy now
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	const clients = 6
	served := make([]*multiproc.AsyncResult[int], clients)
	for i := range served {
		served[i] = multiproc.ApplyAsync(ctx, pool, serve, struct{}{})
	}
	var replies []string
	for i := range clients {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(c, "client-%d\n", i)
		reply, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil {
			log.Fatal(err)
		}
		replies = append(replies, reply[:len(reply)-1])
	}
	pids := map[int]bool{}
	for _, r := range served {
		pid, err := r.Get(ctx)
		if err != nil {
			log.Fatal(err)
		}
		pids[pid] = true
	}
	slices.Sort(replies)
	for _, r := range replies {
		fmt.Println(r)
	}
	fmt.Printf("%d connections served by %d worker processes, none of them this one (%d)\n", clients, len(pids), os.Getpid())
}
