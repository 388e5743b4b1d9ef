package ipc_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/ipc"
)

// Close and a second Release on a released handle fail with ErrClosed (as
// a second os.File.Close does), Closed reports true after Release, and a
// second Close of a queue still held returns nil.
func TestQueueReleaseCloseErrors(t *testing.T) {
	q := qmust(ipc.NewQueue[int]())
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := q.Close(); err != nil {
		t.Fatalf("second Close: %v, want nil", err)
	}
	if !q.Closed() {
		t.Fatal("Closed false after Close")
	}
	q2 := qmust(ipc.NewQueue[int]())
	if q2.Closed() {
		t.Fatal("Closed true on a new queue")
	}
	if err := q2.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if !q2.Closed() {
		t.Fatal("Closed false after Release, want true")
	}
	if err := q2.Close(); !errors.Is(err, ipc.ErrClosed) {
		t.Fatalf("Close after Release: %v, want ErrClosed", err)
	}
	if err := q2.Release(); !errors.Is(err, ipc.ErrClosed) {
		t.Fatalf("second Release: %v, want ErrClosed", err)
	}
	if err := q.Release(); err != nil {
		t.Fatalf("Release of a closed queue: %v", err)
	}
	var zero ipc.Queue[int]
	if err := zero.Close(); !errors.Is(err, ipc.ErrClosed) {
		t.Fatalf("Close of a zero queue: %v, want ErrClosed", err)
	}
}

// The per-item overhead documented on DefaultByteCapacity: a 16-byte
// header plus the payload rounded up to 16.
func TestQueueItemOverhead(t *testing.T) {
	for _, c := range []struct{ n, rec int }{{0, 16}, {1, 32}, {16, 32}, {17, 48}, {100, 128}} {
		q := qmust(ipc.NewQueue[[]byte](ipc.ByteCapacity(4096)))
		got := 0
		for q.TryPut(make([]byte, c.n)) == nil {
			got++
		}
		q.Release()
		if want := 4096 / c.rec; got != want {
			t.Errorf("%d-byte items in 4 KiB: got %d, want %d", c.n, got, want)
		}
	}
}

// A Put that times out on a full queue says so: the error matches both
// the context's error and ErrFull, and names the bound.
func TestQueuePutTimeoutSaysFull(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  ipc.QueueOption
		item []byte
		word string
	}{
		{"MaxItems", ipc.MaxItems(1), []byte("x"), "MaxItems"},
		{"ByteCapacity", ipc.ByteCapacity(4096), make([]byte, 3000), "ByteCapacity"},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := qmust(ipc.NewQueue[[]byte](c.opt))
			defer q.Release()
			if err := q.TryPut(c.item); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			defer cancel()
			err := q.Put(ctx, c.item)
			if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ipc.ErrFull) {
				t.Fatalf("Put: %v; want DeadlineExceeded and ErrFull", err)
			}
			if !strings.HasPrefix(err.Error(), "ipc: Put: ") || !strings.Contains(err.Error(), c.word) {
				t.Fatalf("message %q does not name %s", err, c.word)
			}
		})
	}
}

type qWithFile struct{ F *os.File }

// Put of a value holding a file says what to do, matches
// multiproc.ErrNotTransferable, and names no internal package.
func TestQueueNoTransportMessage(t *testing.T) {
	q := newQ[qWithFile](t)
	err := q.Put(qctx(t), qWithFile{os.Stdin})
	if !errors.Is(err, multiproc.ErrNotTransferable) {
		t.Fatalf("Put: %v, want ErrNotTransferable", err)
	}
	if !strings.Contains(err.Error(), "Process or pool task argument") || strings.Contains(err.Error(), "wire") {
		t.Fatalf("message %q", err)
	}
}

type qUnregistered struct{ A int }

// An interface-typed item needs gob registration (documented on Put).
func TestQueueInterfaceNeedsRegistration(t *testing.T) {
	q := newQ[any](t)
	err := q.Put(qctx(t), qUnregistered{1})
	if err == nil || !strings.Contains(err.Error(), "gob.Register") {
		t.Fatalf("Put of an unregistered type: %v, want an error naming gob.Register", err)
	}
}

// TestQueueAbortedPutSkipped: a Put whose in-place encoding fails returns
// an error and leaves no record behind that would block consumers (it was
// a panic that left the record WRITING under a live owner).
func TestQueueAbortedPutSkipped(t *testing.T) {
	ctx := qctx(t)
	q := qmust(ipc.NewJoinableQueue[qitem]())
	defer q.Release()
	if err := ipc.PutBroken(ctx, q, 40); err == nil {
		t.Fatal("a broken Put returned nil")
	}
	if n := q.Len(); n != 0 {
		t.Fatalf("Len after the aborted Put = %d, want 0", n)
	}
	if err := q.Put(ctx, qitem{I: 7, S: "hello", F: 3.14}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := q.Get(short)
	if err != nil || v.I != 7 {
		t.Fatalf("Get after the aborted Put: %+v, %v", v, err)
	}
	if err := q.TaskDone(); err != nil {
		t.Fatal(err)
	}
	if err := q.Join(short); err != nil {
		t.Fatalf("Join counts the aborted item: %v", err)
	}
}
