package manager

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"sync/atomic"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// ObjectOption configures the creation of a shared object.
type ObjectOption func(*objConfig) error

type objConfig struct{ name string }

// Named makes the object a named one: the first creation with a name
// makes it, later ones (from any client, of the same kind and element
// types, else ErrTypeMismatch) return a proxy of the same object. A named
// object lives until the server shuts down, whoever holds proxies to it:
// it is how a remote manager publishes its queues and dicts (Python's
// BaseManager.register with a callable that returns one shared object).
func Named(name string) ObjectOption {
	return func(c *objConfig) error {
		if name == "" {
			return fmt.Errorf("manager: Named(\"\")")
		}
		c.name = name
		return nil
	}
}

// ref is what every proxy is: a connection and an object id. The server
// counts it as one reference until Close (or the connection's end).
type ref struct {
	c      *client
	id     uint64
	kind   byte
	desc   string
	resID  uint64 // this proxy's resource id (wire.NewID), for receivers that keep it
	closed atomic.Bool
}

func (r *ref) call(ctx context.Context, op byte, args ...[]byte) ([][]byte, error) {
	if r.c == nil {
		return nil, fmt.Errorf("manager: %s on a zero or unimported proxy: %w", opName(op), ErrClosed)
	}
	if r.closed.Load() {
		return nil, fmt.Errorf("manager: %s on a closed proxy: %w", opName(op), ErrClosed)
	}
	return r.c.call(ctx, op, r.id, args)
}

// Close releases this proxy's reference: the server drops the object
// once no connection holds one (named objects live until shutdown). A
// second Close does nothing. Proxies given to other processes hold
// references of their own.
func (r *ref) Close() error {
	if r.c == nil || r.closed.Swap(true) {
		return nil
	}
	wire.Release(r.resID)
	_, err := r.c.call(context.Background(), opRelease, 0, [][]byte{putU64(r.id)})
	return err
}

// create makes the object on m's server and r its proxy.
func (r *ref) create(ctx context.Context, m *Manager, kind byte, desc string, opts []ObjectOption, init ...[]byte) error {
	return r.createOf(ctx, m, kind, nil, desc, opts, init...)
}

// createOf is create for an object whose elements are references to
// objects of sp's kind (nested proxies) when sp is not nil.
func (r *ref) createOf(ctx context.Context, m *Manager, kind byte, sp *elemSpec, desc string, opts []ObjectOption, init ...[]byte) error {
	var cfg objConfig
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return err
		}
	}
	if m == nil || m.c == nil {
		return fmt.Errorf("manager: creating a %s: %w", kindName(kind), ErrClosed)
	}
	args := append([][]byte{specArg(kind, sp), []byte(desc), []byte(cfg.name)}, init...)
	res, err := m.c.call(ctx, opCreate, 0, args)
	if err != nil {
		return err
	}
	if len(res) != 1 {
		return fmt.Errorf("%w: create answered with %d results", wire.ErrCorrupt, len(res))
	}
	id, err := u64(res[0])
	if err != nil {
		return err
	}
	r.c, r.id, r.kind, r.desc, r.resID = m.c, id, kind, desc, wire.NewID()
	return nil
}

func typeName[T any]() string { return reflect.TypeFor[T]().String() }

func one(res [][]byte, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	if len(res) != 1 {
		return nil, fmt.Errorf("%w: %d results for one", wire.ErrCorrupt, len(res))
	}
	return res[0], nil
}

func oneInt(res [][]byte, err error) (int, error) {
	b, err := one(res, err)
	if err != nil {
		return 0, err
	}
	v, err := u64(b)
	return int(v), err
}

func oneBool(res [][]byte, err error) (bool, error) {
	b, err := one(res, err)
	if err != nil {
		return false, err
	}
	return flag(b), nil
}

func idx(i int) []byte { return putU64(uint64(int64(i))) }

// ---- Dict ----

// Dict is a proxy of a dict on the server (Python's DictProxy). Every
// method is one round trip; compound updates that must be atomic run on
// the server: Incr, Update (a registered function), SetDefault, Pop.
// Keys are compared by their encoding.
type Dict[K comparable, V any] struct {
	ref
	kc wire.Value[K]
	vc wire.Value[V]
}

func dictDesc[K, V any]() string { return typeName[K]() + "→" + typeName[V]() }

// NewDict creates a dict on the manager's server.
func NewDict[K comparable, V any](ctx context.Context, m *Manager, opts ...ObjectOption) (*Dict[K, V], error) {
	if err := checkElem[K]("key"); err != nil {
		return nil, err
	}
	sp, err := checkValue[V]("value")
	if err != nil {
		return nil, err
	}
	d := &Dict[K, V]{}
	if err := d.ref.createOf(ctx, m, kindDict, sp, dictDesc[K, V](), opts); err != nil {
		return nil, err
	}
	d.init()
	return d, nil
}

func (d *Dict[K, V]) init() { d.kc, d.vc = codecFor[K](d.c.raw), elemCodec[V](d.c) }

// ImportResource makes d the receiving process's proxy of a Dict sent to
// it (see the package documentation on passing proxies).
func (d *Dict[K, V]) ImportResource(state []byte, files []*os.File) error {
	if err := d.ref.importFrom(state, files, kindDict, dictDesc[K, V]()); err != nil {
		return err
	}
	d.init()
	return nil
}

func (d *Dict[K, V]) key(k K) ([]byte, error) { return appendVal(d.kc, k) }

// Set stores d[k] = v.
func (d *Dict[K, V]) Set(ctx context.Context, k K, v V) error {
	kb, err := d.key(k)
	if err != nil {
		return err
	}
	vb, err := appendVal(d.vc, v)
	if err != nil {
		return err
	}
	_, err = d.call(ctx, opDictSet, kb, vb)
	return err
}

func (d *Dict[K, V]) value(b []byte, err error) (V, error) {
	if err != nil {
		var zero V
		return zero, err
	}
	return d.vc.Decode(b)
}

// Get returns d[k], or an error matching ErrKeyNotFound.
func (d *Dict[K, V]) Get(ctx context.Context, k K) (V, error) {
	kb, err := d.key(k)
	if err != nil {
		var zero V
		return zero, err
	}
	return d.value(one(d.call(ctx, opDictGet, kb)))
}

// GetOr returns d[k], or def when d has no key k (Python's d.get(k, def)).
func (d *Dict[K, V]) GetOr(ctx context.Context, k K, def V) (V, error) {
	kb, err := d.key(k)
	if err != nil {
		return def, err
	}
	db, err := appendVal(d.vc, def)
	if err != nil {
		return def, err
	}
	return d.value(one(d.call(ctx, opDictGetOr, kb, db)))
}

// Pop removes d[k] and returns it, or an error matching ErrKeyNotFound.
func (d *Dict[K, V]) Pop(ctx context.Context, k K) (V, error) {
	kb, err := d.key(k)
	if err != nil {
		var zero V
		return zero, err
	}
	return d.value(one(d.call(ctx, opDictPop, kb)))
}

// SetDefault stores d[k] = v unless d has key k, and returns d[k].
func (d *Dict[K, V]) SetDefault(ctx context.Context, k K, v V) (V, error) {
	kb, err := d.key(k)
	if err != nil {
		return v, err
	}
	vb, err := appendVal(d.vc, v)
	if err != nil {
		return v, err
	}
	return d.value(one(d.call(ctx, opDictSetDefault, kb, vb)))
}

// Delete removes d[k], or returns an error matching ErrKeyNotFound.
func (d *Dict[K, V]) Delete(ctx context.Context, k K) error {
	kb, err := d.key(k)
	if err != nil {
		return err
	}
	_, err = d.call(ctx, opDictDel, kb)
	return err
}

// Has reports whether d has key k (Python's k in d).
func (d *Dict[K, V]) Has(ctx context.Context, k K) (bool, error) {
	kb, err := d.key(k)
	if err != nil {
		return false, err
	}
	return oneBool(d.call(ctx, opDictHas, kb))
}

// Len returns the number of keys.
func (d *Dict[K, V]) Len(ctx context.Context) (int, error) { return oneInt(d.call(ctx, opDictLen)) }

// Clear removes every key.
func (d *Dict[K, V]) Clear(ctx context.Context) error {
	_, err := d.call(ctx, opDictClear)
	return err
}

// Keys returns the keys, in insertion order.
func (d *Dict[K, V]) Keys(ctx context.Context) ([]K, error) {
	res, err := d.call(ctx, opDictKeys)
	if err != nil {
		return nil, err
	}
	ks := make([]K, len(res))
	for i, b := range res {
		if ks[i], err = d.kc.Decode(b); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

// Values returns the values, in the keys' insertion order.
func (d *Dict[K, V]) Values(ctx context.Context) ([]V, error) {
	res, err := d.call(ctx, opDictValues)
	if err != nil {
		return nil, err
	}
	vs := make([]V, len(res))
	for i, b := range res {
		if vs[i], err = d.vc.Decode(b); err != nil {
			return nil, err
		}
	}
	return vs, nil
}

// Item is one key and its value.
type Item[K, V any] struct {
	Key   K
	Value V
}

// Items returns the items, in insertion order (one consistent snapshot).
func (d *Dict[K, V]) Items(ctx context.Context) ([]Item[K, V], error) {
	res, err := d.call(ctx, opDictItems)
	if err != nil {
		return nil, err
	}
	if len(res)%2 != 0 {
		return nil, fmt.Errorf("%w: odd items", wire.ErrCorrupt)
	}
	its := make([]Item[K, V], len(res)/2)
	for i := range its {
		if its[i].Key, err = d.kc.Decode(res[2*i]); err != nil {
			return nil, err
		}
		if its[i].Value, err = d.vc.Decode(res[2*i+1]); err != nil {
			return nil, err
		}
	}
	return its, nil
}

// Map returns a copy of the dict as a Go map (one consistent snapshot).
func (d *Dict[K, V]) Map(ctx context.Context) (map[K]V, error) {
	its, err := d.Items(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[K]V, len(its))
	for _, it := range its {
		m[it.Key] = it.Value
	}
	return m, nil
}

// SetMany stores every item of m, atomically (Python's d.update(m)).
func (d *Dict[K, V]) SetMany(ctx context.Context, m map[K]V) error {
	args := make([][]byte, 0, 2*len(m))
	for k, v := range m {
		kb, err := d.key(k)
		if err != nil {
			return err
		}
		vb, err := appendVal(d.vc, v)
		if err != nil {
			return err
		}
		args = append(args, kb, vb)
	}
	_, err := d.call(ctx, opDictUpdate, args...)
	return err
}

// Incr adds delta to d[k] on the server, atomically, and returns the sum
// (a missing key counts as zero): the safe form of Python's d[k] += 1,
// which races through a proxy. V must be a number. Integers wrap around
// at V's width as Go's + does (an int8 127 plus 1 is -128), and floats
// add at V's precision, whatever the connection's encoding.
func (d *Dict[K, V]) Incr(ctx context.Context, k K, delta V) (V, error) {
	nk := numArg[V]()
	if nk == nil {
		return delta, fmt.Errorf("%w: Incr of a %s, not a number", ErrTypeMismatch, typeName[V]())
	}
	kb, err := d.key(k)
	if err != nil {
		return delta, err
	}
	db, err := appendVal(d.vc, delta)
	if err != nil {
		return delta, err
	}
	return d.value(one(d.call(ctx, opDictIncr, kb, nk, db)))
}

// Update replaces d[k] with fn(d[k], present) on the server, atomically,
// and returns the new value; fn is a function registered in the server's
// program with RegisterUpdate.
func (d *Dict[K, V]) Update(ctx context.Context, k K, fn UpdateFunc[V]) (V, error) {
	kb, err := d.key(k)
	if err != nil {
		var zero V
		return zero, err
	}
	return d.value(one(d.call(ctx, opDictUpdateFn, kb, []byte(fn.name))))
}
