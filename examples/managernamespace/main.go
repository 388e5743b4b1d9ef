// Command managernamespace shares a Namespace: attributes a child sets are
// seen by the parent (Python's manager.Namespace()).
//
//	def f(ns):
//	    ns.x = 10
//	    ns.y = 'hello'
//	    ns.count += 1
//
//	with Manager() as mgr:
//	    ns = mgr.Namespace()
//	    ns.count = 0
//	    p = Process(target=f, args=(ns,)); p.start(); p.join()
//	    print(ns)  # Namespace(count=1, x=10, y='hello')
//
// Run it with
//
//	go run ./examples/managernamespace
//
// Attributes are typed: GetAttr[int] of an attribute stored as a string
// fails with manager.ErrTypeMismatch. ns.count += 1 is a read and a write,
// which race between processes in Python as here; the Value proxy's Incr
// (or a Dict's) does it atomically on the server.
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/manager"
)

var f = multiproc.Register("managernamespace.f", multiproc.NoResult(func(ctx context.Context, ns *manager.Namespace) error {
	if err := manager.SetAttr(ctx, ns, "x", 10); err != nil {
		return err
	}
	if err := manager.SetAttr(ctx, ns, "y", "hello"); err != nil {
		return err
	}
	n, err := manager.GetAttr[int](ctx, ns, "count")
	if err != nil {
		return err
	}
	return manager.SetAttr(ctx, ns, "count", n+1)
}))

func main() {
	multiproc.Main()
	ctx := context.Background()
	mgr, err := manager.Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer mgr.Shutdown(ctx)
	ns, err := manager.NewNamespace(ctx, mgr)
	if err != nil {
		log.Fatal(err)
	}
	if err := manager.SetAttr(ctx, ns, "count", 0); err != nil {
		log.Fatal(err)
	}
	p := multiproc.NewProcess(f, ns)
	if err := p.Start(ctx); err != nil {
		log.Fatal(err)
	}
	if err := p.Join(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := multiproc.Result[struct{}](p); err != nil {
		log.Fatal(err)
	}
	count, _ := manager.GetAttr[int](ctx, ns, "count")
	x, _ := manager.GetAttr[int](ctx, ns, "x")
	y, _ := manager.GetAttr[string](ctx, ns, "y")
	fmt.Printf("Namespace(count=%d, x=%d, y=%q)\n", count, x, y)
	if _, err := manager.GetAttr[string](ctx, ns, "x"); err != nil {
		fmt.Println(err)
	}
}
