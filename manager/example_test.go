package manager_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/multiproc-go/multiproc/manager"
)

// The `with Manager() as manager:` form: Start, objects, Shutdown.
func ExampleStart() {
	ctx := context.Background()
	m, err := manager.Start(ctx) // a manager child process
	if err != nil {
		log.Fatal(err)
	}
	defer m.Shutdown(ctx)
	d, err := manager.NewDict[string, int](ctx, m)
	if err != nil {
		log.Fatal(err)
	}
	d.Set(ctx, "a", 1)
	n, _ := d.Incr(ctx, "a", 41) // atomic on the server, unlike Python's d["a"] += 1
	_, err = d.Get(ctx, "b")
	fmt.Println(n, errors.Is(err, manager.ErrKeyNotFound))
	// Output: 42 true
}

// Account is a custom type the manager's program registers: clients
// create accounts and call the listed methods, nothing else.
type Account struct{ balance int }

var errOverdrawn = errors.New("account: overdrawn")

var accountType = manager.MustRegisterType("example.Account",
	func(ctx context.Context) (*Account, error) { return &Account{}, nil },
	manager.Method("Deposit", func(ctx context.Context, a *Account, n int) (int, error) {
		if a.balance+n < 0 {
			return a.balance, errOverdrawn
		}
		a.balance += n
		return a.balance, nil
	}),
	manager.Method("Balance", func(ctx context.Context, a *Account, _ struct{}) (int, error) { return a.balance, nil }),
)

// AccountProxy is a hand-written typed proxy over manager.Call.
type AccountProxy struct{ o *manager.Object }

func NewAccount(ctx context.Context, m *manager.Manager) (*AccountProxy, error) {
	o, err := manager.Create(ctx, m, accountType.Name())
	if err != nil {
		return nil, err
	}
	return &AccountProxy{o}, nil
}

func (a *AccountProxy) Deposit(ctx context.Context, n int) (int, error) {
	return manager.Call[int](ctx, a.o, "Deposit", n)
}

func (a *AccountProxy) Balance(ctx context.Context) (int, error) {
	return manager.Call[int](ctx, a.o, "Balance")
}

func (a *AccountProxy) Close() error { return a.o.Close() }

func ExampleCall() {
	ctx := context.Background()
	m, err := manager.Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Shutdown(ctx)
	acct, err := NewAccount(ctx, m)
	if err != nil {
		log.Fatal(err)
	}
	defer acct.Close()
	acct.Deposit(ctx, 100)
	_, err = acct.Deposit(ctx, -500)
	b, _ := acct.Balance(ctx)
	fmt.Println(b, err)
	// Output: 100 manager: example.Account.Deposit: account: overdrawn
}

// Nested proxies, as in Python ≥ 3.6: l = manager.list(); d =
// manager.dict(); d['x'] = l; d['x'].append(1) changes l. Storing a
// proxy stores a reference to its object; a proxy read back is a new
// proxy (Close it) of the same object.
func ExampleNewDict_nested() {
	ctx := context.Background()
	m, err := manager.Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Shutdown(ctx)
	l, _ := manager.NewList[int](ctx, m, nil)
	d, _ := manager.NewDict[string, *manager.List[int]](ctx, m)
	if err := d.Set(ctx, "x", l); err != nil {
		log.Fatal(err)
	}
	x, _ := d.Get(ctx, "x")
	x.Append(ctx, 1)
	x.Close()
	fmt.Println(l.All(ctx))
	// Output: [1] <nil>
}
