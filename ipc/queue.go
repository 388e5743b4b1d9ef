package ipc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync"
	"unsafe"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// DefaultByteCapacity is the byte capacity of a queue made without
// [ByteCapacity]: 4 MiB of shared memory, reserved when the queue is made.
// Each item takes a 16-byte record header plus its encoding padded to a
// multiple of 16 bytes (qRecSize in queue_ring.go): a 1-byte item takes
// 32 bytes, so 128 fit in 4 KiB; an (int, "hello", float64) struct takes
// 48, about 87,000 in the default capacity. A record never wraps around
// the end of the ring, so up to one record's size there may be unusable
// at a time.
const DefaultByteCapacity = 4 << 20

// A QueueOption configures a queue at creation ([NewQueue],
// [NewJoinableQueue], [NewSimpleQueue]).
type QueueOption func(*queueConfig) error

type queueConfig struct {
	maxItems uint64
	capacity uint64
	simple   bool
}

// MaxItems bounds the number of items in the queue: Python's maxsize, as in
// the seeds' Queue(3). Put blocks (TryPut returns [ErrFull]) while the queue
// holds n items. n must be at least 1; without it only the byte capacity
// bounds the queue. A SimpleQueue has no MaxItems.
func MaxItems(n int) QueueOption {
	return func(c *queueConfig) error {
		if n < 1 {
			return fmt.Errorf("ipc: MaxItems(%d): must be at least 1", n)
		}
		if c.simple {
			return fmt.Errorf("ipc: MaxItems: a SimpleQueue is unbounded in items (Python's SimpleQueue has no maxsize)")
		}
		c.maxItems = uint64(n)
		return nil
	}
}

// ByteCapacity sets the bytes of shared memory that hold the queue's items
// ([DefaultByteCapacity] without it), rounded up to the page size; from
// 4 KiB to 1 GiB. The memory is reserved when the queue is made. Each item
// costs 16 bytes of header plus its encoding rounded up to 16 bytes (see
// [DefaultByteCapacity]). Put blocks (TryPut returns [ErrFull]) while an
// item does not fit, and an item that could never fit (16 + its encoding
// rounded up to 16 over the capacity) fails Put with [ErrTooLarge].
func ByteCapacity(n int) QueueOption {
	return func(c *queueConfig) error {
		if n < qMinCapacity || n > qMaxCapacity {
			return fmt.Errorf("ipc: ByteCapacity(%d): must be from %d to %d", n, qMinCapacity, qMaxCapacity)
		}
		c.capacity = uint64(n)
		return nil
	}
}

// queue is what the three queue types share: the typed layer over the
// shared ring (queue_ring.go).
type queue[T any] struct {
	c     *qcore
	codec wire.Value[T]
	// sizer is codec when it can tell an encoding's length without
	// encoding (the record codec): Put then encodes straight into the
	// room it reserved in shared memory, with no scratch buffer.
	sizer interface{ Size(T) int }
	bufs  sync.Pool // *[]byte encoding scratch
	// typeErr is wire.Check's verdict on T, a *wire.TypeError when T holds
	// a chan, a func or an unsafe.Pointer that the codec would drop (gob
	// ignores func and chan fields): Put fails with it.
	typeErr error
}

func (q *queue[T]) setCodec() {
	q.codec = wire.For[T]()
	q.sizer, _ = q.codec.(interface{ Size(T) int })
	if _, err := wire.Check(reflect.TypeFor[T](), typeName[T]()); err != nil {
		q.typeErr = err
	}
}

var pageSize = uint64(os.Getpagesize())

func (q *queue[T]) init(kind uint32, opts []QueueOption) error {
	cfg := queueConfig{capacity: DefaultByteCapacity, simple: kind == qKindSimple}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return err
		}
	}
	capacity := (cfg.capacity + pageSize - 1) / pageSize * pageSize
	c, err := qNew(kind, capacity, cfg.maxItems, typeName[T]())
	if err != nil {
		return err
	}
	q.c = c
	q.setCodec()
	return nil
}

func typeName[T any]() string { return reflect.TypeFor[T]().String() }

func (q *queue[T]) put(ctx context.Context, v T, block bool) error {
	if q.c == nil {
		return fmt.Errorf("%w: zero queue (make one with NewQueue)", ErrClosed)
	}
	if q.typeErr != nil {
		return fmt.Errorf("ipc: Put: cannot encode a %s: %w", typeName[T](), q.typeErr)
	}
	// A queue of []byte or string needs no encoding: the bytes go
	// straight into the shared memory (what the codec would produce for
	// that T). The switch is on the static element type: a Queue[any]
	// holding a string must go through the codec, whose decoder expects
	// an interface tag.
	switch p := any(&v).(type) {
	case *[]byte:
		return q.c.put(ctx, *p, block)
	case *string:
		return q.c.put(ctx, unsafe.Slice(unsafe.StringData(*p), len(*p)), block)
	}
	if q.sizer != nil {
		return q.c.putWith(ctx, q.sizer.Size(v), block, func(dst []byte) bool {
			// Append fills dst's length exactly (Size's contract), so it
			// writes in place; the codec cannot fail for such a type. A
			// capacity of len(dst) keeps a broken contract from writing
			// past the record; putWith then skips it.
			b, err := q.codec.Append(dst[:0:len(dst)], v)
			return err == nil && len(b) == len(dst) && (len(b) == 0 || &b[0] == &dst[0])
		})
	}
	bp, _ := q.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b, err := q.codec.Append((*bp)[:0], v)
	if err != nil {
		q.bufs.Put(bp)
		if errors.Is(err, wire.ErrNoTransport) {
			// The codec's message speaks of engines; say what a queue
			// user can do about it.
			return fmt.Errorf("ipc: Put: a %s holds a file, connection or other descriptor-backed resource, which a queue cannot carry (items are bytes in shared memory); pass it as a Process or pool task argument instead: %w", typeName[T](), err)
		}
		return fmt.Errorf("ipc: Put: cannot encode the %s: %w", typeName[T](), err)
	}
	err = q.c.put(ctx, b, block)
	if cap(b) <= 64<<10 {
		*bp = b
		q.bufs.Put(bp)
	}
	return err
}

func (q *queue[T]) get(ctx context.Context, block bool) (T, error) {
	var v T
	if q.c == nil {
		return v, fmt.Errorf("%w: zero queue (make one with NewQueue)", ErrClosed)
	}
	err := q.c.get(ctx, block, func(b []byte) error {
		var err error
		v, err = q.codec.Decode(b)
		if err != nil {
			return fmt.Errorf("ipc: Get: decoding a %s: %w", typeName[T](), err)
		}
		return nil
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// Put adds v to the queue, blocking while the queue is full (MaxItems items,
// or no room for v's bytes) until there is room, the queue is closed, or
// ctx ends. v is encoded here, in the caller's goroutine, with the codec
// multiproc uses for task arguments, and nothing is added when it cannot
// be: when T holds a chan, a func or an unsafe.Pointer (at any depth, an
// exported struct field included, which the codec would otherwise drop)
// Put fails with an error wrapping a *wire.TypeError that names the field;
// a descriptor-backed resource such as an *os.File, which shared memory
// cannot carry, fails with an error matching multiproc.ErrNotTransferable
// (pass such resources as Process or task arguments). A value in an
// interface-typed position (a Queue[any], an interface field) travels with
// encoding/gob, so every concrete type it may hold must be passed to
// gob.Register, in every process, before multiproc.Main (in an init
// function or a package-level var); otherwise Put fails with an error
// naming the unregistered type. It returns nil once v is in the queue,
// where every process's Get can take it.
//
// Errors: [ErrTooLarge] (v could never fit in the byte capacity),
// [ErrClosed] (the queue was closed by any process, or this handle
// released), or, when ctx ends first, an error wrapping ctx.Err(); if the
// queue was still full then, the error also matches [ErrFull] and its
// message says which bound (MaxItems or the byte capacity) held Put back.
func (q *queue[T]) Put(ctx context.Context, v T) error { return q.put(ctx, v, true) }

// TryPut is Put without waiting (Python's put_nowait): [ErrFull] when the
// queue holds MaxItems items or has no room for v's bytes.
func (q *queue[T]) TryPut(v T) error { return q.put(context.Background(), v, false) }

// Get removes and returns an item, blocking while the queue is empty until
// an item arrives, the queue is closed, or ctx ends. Items put by one
// goroutine come out in the order it put them; items of concurrent
// producers interleave. After Close, Get returns what remains and then
// [ErrClosed]. ctx is consulted only while waiting: with an item ready,
// Get takes it even if ctx has ended (and Put, with room, adds its item).
//
// The item is taken even when it cannot be decoded (its bytes do not
// decode as a T, say because another build put it): Get returns the zero
// T and the decoding error, the item is gone from the queue, and in a
// [JoinableQueue] it counts as taken, so call TaskDone for it or Join
// waits for it.
func (q *queue[T]) Get(ctx context.Context) (T, error) { return q.get(ctx, true) }

// TryGet is Get without waiting (Python's get_nowait): [ErrEmpty] when no
// item is ready, [ErrClosed] when the queue is closed and drained.
func (q *queue[T]) TryGet() (T, error) { return q.get(context.Background(), false) }

// Len returns the number of items in the queue (Python's qsize), including
// items whose Put is copying them in. It may be stale as soon as it returns.
func (q *queue[T]) Len() int { return q.c.length() }

// Closed reports whether this handle can no longer put: true once any
// process has closed the queue (Close), and true once this process has
// released this handle (Release), since every call on a released handle
// fails with [ErrClosed]. A closed queue may still hold items for Get;
// Closed says nothing about other processes' handles.
func (q *queue[T]) Closed() bool { return q.c.closed() }

// Close closes the queue for every process that has it: later Puts fail
// with [ErrClosed], and Get returns the items that remain and then
// ErrClosed. Waiting Puts and Gets are woken. It does not free anything
// (see Release). Closing a closed queue (by this or another process)
// returns nil; Close on a handle this process released (or a zero queue)
// returns an error matching [ErrClosed], as a second os.File.Close does.
func (q *queue[T]) Close() error { return q.c.close() }

// Release drops this process's handle, Python's per-process close():
// blocked calls on it return [ErrClosed], and every later call on it
// (Close and a second Release included) returns an error matching
// ErrClosed, Len returns 0 and Closed true; other processes keep their handles, and the queue
// lives while any process has it. In the process that made the queue it
// also unmaps the shared memory and makes the pool workers that keep a
// copy (it was a task's argument) drop it once the tasks using it are
// done. On a queue received from another process (a Process argument),
// the mapping, shared by the process's handles on that queue, goes with
// the last of them. A pool task is handed its worker's kept copy: a task
// that releases it costs the next task that uses the queue a fresh import
// (the pool sends the queue again), nothing more.
func (q *queue[T]) Release() error { return q.c.release() }

// DropKept releases this process's handle ([Queue.Release]): a pool
// worker calls it when it stops keeping the queue (the creator released
// it, or the worker's resource cache is full). It is not Close, which
// would close the queue for every process.
func (q *queue[T]) DropKept() { _ = q.Release() }

// NeedsDescriptors reports whether the queue can travel (wire.Resource):
// true until the creator's Release.
func (q *queue[T]) NeedsDescriptors() bool { return q.c.needsDescriptors() }

// ExportResource describes the queue to another process (wire.Exporter):
// its memfd, and its kind, capacity and element type, which the receiver
// checks before it maps anything.
func (q *queue[T]) ExportResource(x *wire.Exported) error { return q.c.export(x) }

func (q *queue[T]) importAs(kind uint32, state []byte, files []*os.File) error {
	c, err := qImport(state, files, kind, typeName[T]())
	if err != nil {
		return err
	}
	q.c = c
	q.setCodec()
	return nil
}

// Queue is a multi-producer, multi-consumer FIFO queue shared by processes:
// Python's multiprocessing.Queue, typed. Make one with [NewQueue]; the zero
// Queue is not usable. Pass it (as *Queue[T]) to processes as a Process
// argument or a pool task's argument, at any depth in a struct: it travels
// as a resource and the receiver's copy is the same queue. It is safe for
// concurrent use by any number of goroutines in any number of processes.
//
// The queue is a ring in shared memory (a memfd of [DefaultByteCapacity]
// unless [ByteCapacity] says otherwise), not a pipe with a feeder
// goroutine: Put encodes the item in the caller's goroutine and copies it
// in, Get decodes it straight out of the shared memory, and a call makes a
// system call only to wake a process that sleeps. [MaxItems] bounds the
// number of items. Close closes the queue for every process; Release
// drops this process's handle.
//
// A process killed at any moment, inside Put or Get included, never
// leaves the queue unusable: every record and the queue's lock carry
// their owner's pid and start time, and a record whose owner died is
// skipped or reclaimed within about 250 ms of blocking another process.
// At most the one item the dead process was moving is lost.
//
// Blocked calls are cheap in threads: the goroutines of one process
// blocked in Get on one queue share one OS thread in the kernel (the
// others wait on a channel), and likewise for Put and, on a
// JoinableQueue, Join.
//
// Round trips are those of multiproc's codec: a nil []byte element
// (Queue[[]byte]) arrives as an empty non-nil slice, and a nil map as an
// empty map.
type Queue[T any] struct{ queue[T] }

// NewQueue makes a queue of T in shared memory. Off Linux it returns an
// error matching errors.ErrUnsupported.
func NewQueue[T any](opts ...QueueOption) (*Queue[T], error) {
	q := &Queue[T]{}
	if err := q.init(qKindQueue, opts); err != nil {
		return nil, err
	}
	return q, nil
}

// ImportResource makes q the receiving process's copy (wire.Importer).
func (q *Queue[T]) ImportResource(state []byte, files []*os.File) error {
	return q.importAs(qKindQueue, state, files)
}

// JoinableQueue is a [Queue] whose consumers report each item done:
// Python's multiprocessing.JoinableQueue. Every Put adds an unfinished
// item; TaskDone marks one done; Join waits until none is unfinished.
//
// A consumer that dies after Get and before TaskDone cannot finish its
// items. Join notices (the queue records, per consumer process, how many
// items it took and has not marked done): once every other item is done it
// returns an error matching [ErrPeerDied] and releases the dead consumer's
// count, so the next Join returns nil. Join never waits forever on a dead
// consumer. The table holds 224 consumer processes at a time (dead ones'
// entries are reused); beyond that, items are counted without an owner and
// a death among those consumers cannot be detected.
type JoinableQueue[T any] struct{ queue[T] }

// NewJoinableQueue makes a joinable queue of T in shared memory (an error
// matching errors.ErrUnsupported off Linux).
func NewJoinableQueue[T any](opts ...QueueOption) (*JoinableQueue[T], error) {
	q := &JoinableQueue[T]{}
	if err := q.init(qKindJoinable, opts); err != nil {
		return nil, err
	}
	return q, nil
}

// TaskDone marks one item taken by Get done, this process's first and then
// any process's (a process may finish what another took, as in Python). It
// returns [ErrTaskDone] when no item is waiting to be marked done.
func (q *JoinableQueue[T]) TaskDone() error {
	if q.c == nil {
		return fmt.Errorf("%w: zero queue", ErrClosed)
	}
	return q.c.taskDone()
}

// Join blocks until every item put into the queue has been taken and
// marked done by TaskDone, or ctx ends (an error wrapping ctx.Err()). When
// the only unfinished items are those of consumers that died, it returns
// an error matching [ErrPeerDied] and counts them done; the dead are
// noticed within about 250 ms of that. Close does not end a Join: items
// taken before or after Close still need their TaskDone (as in Python).
func (q *JoinableQueue[T]) Join(ctx context.Context) error {
	if q.c == nil {
		return fmt.Errorf("%w: zero queue", ErrClosed)
	}
	return q.c.join(ctx)
}

// ImportResource makes q the receiving process's copy (wire.Importer).
func (q *JoinableQueue[T]) ImportResource(state []byte, files []*os.File) error {
	return q.importAs(qKindJoinable, state, files)
}

// SimpleQueue is Python's multiprocessing.SimpleQueue: a [Queue] without
// MaxItems (bounded only by its byte capacity). It has the same methods
// and travels the same way.
type SimpleQueue[T any] struct{ queue[T] }

// NewSimpleQueue makes a simple queue of T in shared memory. Only
// [ByteCapacity] applies; [MaxItems] is refused.
func NewSimpleQueue[T any](opts ...QueueOption) (*SimpleQueue[T], error) {
	q := &SimpleQueue[T]{}
	if err := q.init(qKindSimple, opts); err != nil {
		return nil, err
	}
	return q, nil
}

// ImportResource makes q the receiving process's copy (wire.Importer).
func (q *SimpleQueue[T]) ImportResource(state []byte, files []*os.File) error {
	return q.importAs(qKindSimple, state, files)
}
