//go:build unix

package wire_test

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// TestTryNext: TryNext never waits. It reports no frame on an empty stream
// and on a partial frame (keeping its bytes), returns the frame once its
// last byte arrived, with its descriptors, and io.EOF at the end.
func TestTryNext(t *testing.T) {
	a, b := unixPair(t)
	r := wire.NewUnixReader(b, 0)
	if _, _, ok, err := r.TryNext(); ok || err != nil {
		t.Fatalf("empty stream: ok %v, err %v; want no frame, no error", ok, err)
	}
	frame := wire.AppendFrame(nil, 7, []byte("hello"))
	if _, err := a.Write(frame[:3]); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, err := r.TryNext(); ok || err != nil {
		t.Fatalf("partial frame: ok %v, err %v; want no frame, no error", ok, err)
	}
	if _, err := a.Write(frame[3:]); err != nil {
		t.Fatal(err)
	}
	kind, payload, ok, err := r.TryNext()
	if !ok || err != nil || kind != 7 || string(payload) != "hello" {
		t.Fatalf("whole frame: got %d %q ok %v err %v; want 7 \"hello\"", kind, payload, ok, err)
	}

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	fd, err := wire.DupFD(pw)
	if err != nil {
		t.Fatal(err)
	}
	err = wire.WriteFiles(a, filesFrame(nil, 8, 1, []byte("fd")), []wire.Attach{{At: 0, Fds: []int{fd}}})
	wire.CloseFD(fd)
	if err != nil {
		t.Fatal(err)
	}
	kind, payload, ok, err = r.TryNext()
	if !ok || err != nil || kind != 8 || string(payload) != "fd" {
		t.Fatalf("frame with a descriptor: got %d %q ok %v err %v; want 8 \"fd\"", kind, payload, ok, err)
	}
	fs := r.Files()
	if len(fs) != 1 {
		t.Fatalf("frame with a descriptor: %d files, want 1", len(fs))
	}
	fs[0].Close()

	a.Close()
	if _, _, ok, err := r.TryNext(); ok || !errors.Is(err, io.EOF) {
		t.Fatalf("closed stream: ok %v, err %v; want io.EOF", ok, err)
	}
}
