package multiproc

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc/internal/logs"
)

// TestGoroutineID guards the parsing the callback loop relies on to
// recognise itself: ids are non-zero and differ between goroutines.
func TestGoroutineID(t *testing.T) {
	here := goroutineID()
	there := make(chan uint64)
	go func() { there <- goroutineID() }()
	if other := <-there; here == 0 || other == 0 || here == other {
		t.Fatalf("got ids %d here and %d in another goroutine, want two different non-zero ids", here, other)
	}
	if again := goroutineID(); again != here {
		t.Fatalf("got %d, then %d on the same goroutine", here, again)
	}
}

// TestCallbacksWaitFromCallback guards callbacks.wait against waiting for
// its own caller, and the loop against a panicking callback.
func TestCallbacksWaitFromCallback(t *testing.T) {
	var buf bytes.Buffer // written only by the loop, read after wait
	c := &callbacks{log: logs.New(slog.New(slog.NewTextHandler(&buf, nil)))}
	var order []string // callbacks run one at a time: no lock needed
	c.post(func() {
		c.wait() // returns at once: this is the loop
		order = append(order, "first, after its wait")
	})
	c.post(func() { panic("second panics") })
	c.post(func() { order = append(order, "third") })
	c.wait() // not the loop: waits for all three
	if got := strings.Join(order, ", "); got != "first, after its wait, third" {
		t.Fatalf("got %q, want first then third", got)
	}
	if !strings.Contains(buf.String(), "second panics") {
		t.Fatalf("log %q lacks the panic", buf.String())
	}
	if c.onLoop() {
		t.Fatal("onLoop true outside the loop")
	}
}
