package manager

import (
	"bytes"
	"errors"
	"testing"
)

// TestTooLargeFailsOneCall: an answer or a request over MaxMessageSize
// fails that call alone with ErrTooLarge; the connection serves the next
// calls. Run through the call slot and through the socket.
func TestTooLargeFailsOneCall(t *testing.T) {
	for _, nofast := range []bool{false, true} {
		name := "slot"
		if nofast {
			name = "socket"
		}
		t.Run(name, func(t *testing.T) {
			if nofast {
				t.Setenv("MULTIPROC_MANAGER_NOFAST", "1")
			}
			ctx := testCtx(t)
			const limit = 64 << 10
			m := startManager(t, MaxMessageSize(limit))
			if nofast != (m.c.fast == nil) {
				t.Fatalf("call slot %v, want %v", m.c.fast != nil, !nofast)
			}
			d, err := NewDict[string, []byte](ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			half := bytes.Repeat([]byte("x"), limit/2)
			for _, k := range []string{"a", "b", "c"} {
				if err := d.Set(ctx, k, half); err != nil {
					t.Fatal(err)
				}
			}
			for range 3 {
				if _, err := d.Values(ctx); !errors.Is(err, ErrTooLarge) {
					t.Fatalf("Values (a %d-byte answer) = %v, want ErrTooLarge", 3*len(half), err)
				}
				if v, err := d.Get(ctx, "a"); err != nil || !bytes.Equal(v, half) {
					t.Fatalf("Get after a too large answer = %d bytes, %v", len(v), err)
				}
			}
			if err := d.Set(ctx, "big", bytes.Repeat([]byte("y"), 2*limit)); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Set of a too large value = %v, want ErrTooLarge", err)
			}
			if n, err := d.Len(ctx); err != nil || n != 3 {
				t.Fatalf("Len after a too large request = %d, %v; want 3", n, err)
			}
		})
	}
}
