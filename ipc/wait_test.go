package ipc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/ipc"
)

func TestWait(t *testing.T) {
	ctx := testCtx(t)
	a1, b1 := pipe(t, true)
	a2, b2 := pipe(t, true)
	a3, b3 := pipe(t, true)
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if r, err := ipc.Wait(short, b1, b2, b3); r != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on silent conns = %v, %v", r, err)
	}
	go a2.SendBytes(ctx, []byte("two"))
	r, err := ipc.Wait(ctx, b1, b2, b3)
	if err != nil || len(r) != 1 || r[0] != b2 {
		t.Fatalf("Wait = %v, %v; want [b2]", r, err)
	}
	if m, err := b2.RecvBytes(ctx); err != nil || string(m) != "two" {
		t.Fatalf("RecvBytes = %q, %v", m, err)
	}
	a1.SendBytes(ctx, []byte("one"))
	a3.Close()
	for {
		r, err = ipc.Wait(ctx, b1, b2, b3)
		if err != nil {
			t.Fatal(err)
		}
		if len(r) == 2 {
			break
		}
	}
	if r[0] != b1 || r[1] != b3 {
		t.Fatalf("Wait = %v; want [b1 b3]", r)
	}
}
