// Command managerremote is the remote-manager example: one program serves
// a queue and a dict on a TCP address with an authkey, and other
// processes, on this machine or others, connect and use them.
//
// Python's version (multiprocessing.managers):
//
//	# server
//	queue = queue.Queue()
//	class QueueManager(BaseManager): pass
//	QueueManager.register('get_queue', callable=lambda: queue)
//	m = QueueManager(address=('', 50000), authkey=b'abracadabra')
//	m.get_server().serve_forever()
//
//	# a client
//	QueueManager.register('get_queue')
//	m = QueueManager(address=('foo.bar.org', 50000), authkey=b'abracadabra')
//	m.connect()
//	m.get_queue().put('hello')
//
// Here the server program serves; clients open the queue and the dict by
// name (manager.Named), which creates them on first use:
//
//	go run ./examples/managerremote serve -addr 127.0.0.1:50000
//	go run ./examples/managerremote put -addr 127.0.0.1:50000 hello world
//	go run ./examples/managerremote get -addr 127.0.0.1:50000 -n 2
//
// Without arguments it serves on a free loopback port and runs a
// producer and a consumer as child processes that connect to it, as
// separate machines would. The key is $MANAGER_AUTHKEY, or "abracadabra".
// Every connection proves it holds the key before anything it sends is
// decoded; only the server's registered kinds of object exist, so a
// client can call methods but never run code of its choosing.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/manager"
)

func key() []byte {
	if k := os.Getenv("MANAGER_AUTHKEY"); k != "" {
		return []byte(k)
	}
	return []byte("abracadabra")
}

// open connects to the server and opens the shared queue and dict.
func open(ctx context.Context, addr string) (*manager.Manager, *manager.Queue[string], *manager.Dict[string, string], error) {
	m, err := manager.Connect(ctx, "tcp", addr, key())
	if err != nil {
		return nil, nil, nil, err
	}
	q, err := manager.NewQueue[string](ctx, m, 0, manager.Named("jobs"))
	if err != nil {
		m.Close()
		return nil, nil, nil, err
	}
	d, err := manager.NewDict[string, string](ctx, m, manager.Named("status"))
	if err != nil {
		m.Close()
		return nil, nil, nil, err
	}
	return m, q, d, nil
}

func put(ctx context.Context, addr string, msgs []string) error {
	m, q, d, err := open(ctx, addr)
	if err != nil {
		return err
	}
	defer m.Close()
	for _, s := range msgs {
		if err := d.Set(ctx, s, "queued"); err != nil {
			return err
		}
		if err := q.Put(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func get(ctx context.Context, addr string, n int) ([]string, error) {
	m, q, d, err := open(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	var got []string
	for range n {
		s, err := q.Get(ctx)
		if err != nil {
			return got, err
		}
		if err := d.Set(ctx, s, "done"); err != nil {
			return got, err
		}
		got = append(got, s)
	}
	return got, nil
}

type job struct {
	Addr string
	Msgs []string
}

var producer = multiproc.Register("managerremote.producer", multiproc.NoResult(func(ctx context.Context, j job) error {
	return put(ctx, j.Addr, j.Msgs)
}))

var consumer = multiproc.Register("managerremote.consumer", func(ctx context.Context, j job) ([]string, error) {
	return get(ctx, j.Addr, len(j.Msgs))
})

func serve(ctx context.Context, addr string) *manager.Server {
	srv, err := manager.Serve(ctx, "tcp", addr, key())
	if err != nil {
		log.Fatal(err)
	}
	return srv
}

func demo(ctx context.Context) {
	srv := serve(ctx, "127.0.0.1:0")
	defer srv.Close()
	j := job{Addr: srv.Addr().String(), Msgs: []string{"hello", "world"}}
	c := multiproc.NewProcess(consumer, j) // waits for the producer's items
	if err := c.Start(ctx); err != nil {
		log.Fatal(err)
	}
	p := multiproc.NewProcess(producer, j)
	if err := p.Start(ctx); err != nil {
		log.Fatal(err)
	}
	if err := p.Join(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := multiproc.Result[struct{}](p); err != nil {
		log.Fatal(err)
	}
	c.Join(ctx)
	got, err := multiproc.Result[[]string](c)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("consumer got", got)
	m, _, d, err := open(ctx, j.Addr)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	st, err := d.Map(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("status", st)
}

func main() {
	multiproc.Main()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		demo(ctx)
		return
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:50000", "the server's TCP address")
	n := fs.Int("n", 1, "get: how many items to take")
	stdin := fs.Bool("stdin", false, "serve: stop when standard input closes")
	fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "serve":
		srv := serve(ctx, *addr)
		fmt.Println("serving on", srv.Addr())
		// Serve until a signal (or, with -stdin, until standard input
		// closes: a test that started this process stops it so).
		if *stdin {
			go func() {
				bufio.NewReader(os.Stdin).ReadString(0)
				stop()
			}()
		}
		<-ctx.Done()
		srv.Close()
	case "put":
		if err := put(ctx, *addr, fs.Args()); err != nil {
			log.Fatal(err)
		}
	case "get":
		tctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		got, err := get(tctx, *addr, *n)
		if err != nil {
			log.Fatal(err)
		}
		for _, s := range got {
			fmt.Println(s)
		}
	default:
		log.Fatalf("usage: managerremote [serve|put|get] -addr host:port ...")
	}
}
