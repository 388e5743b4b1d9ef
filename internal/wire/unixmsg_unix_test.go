//go:build unix

package wire_test

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/multiproc-go/multiproc/internal/wire"
)

func unixPair(t *testing.T) (a, b *net.UnixConn) {
	t.Helper()
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	a, b = conn(fds[0]), conn(fds[1])
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// filesFrame appends a frame declaring n descriptors.
func filesFrame(dst []byte, kind byte, n int, payload []byte) []byte {
	buf, off := wire.BeginFrame(dst, kind|wire.FlagFiles)
	buf = binary.AppendUvarint(buf, uint64(n))
	buf = append(buf, payload...)
	if err := wire.EndFrame(buf, off, 0); err != nil {
		panic(err)
	}
	return buf
}

// TestUnixReaderFiles sends frames with and without descriptors, among
// them one with more than a sendmsg carries, and checks that each frame
// gets exactly its own descriptors (each a duplicate of the pipe written
// through it), in order.
func TestUnixReaderFiles(t *testing.T) {
	a, b := unixPair(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	counts := []int{0, 1, 3, 0, wire.MaxFilesPerMsg + 100, 2, wire.MaxFrameFiles, 1}
	var stream []byte
	var att []wire.Attach
	var dups []int
	for i, n := range counts {
		if n == 0 {
			stream = wire.AppendFrame(stream, 'p', []byte{byte(i)})
			continue
		}
		var fds []int
		for range n {
			fd, err := wire.DupFD(pw)
			if err != nil {
				t.Fatal(err)
			}
			fds = append(fds, fd)
		}
		dups = append(dups, fds...)
		att = append(att, wire.Attach{At: len(stream), Fds: fds})
		stream = filesFrame(stream, 'f', n, []byte{byte(i)})
	}
	errc := make(chan error, 1)
	go func() {
		errc <- wire.WriteFiles(a, stream, att)
		for _, fd := range dups {
			wire.CloseFD(fd)
		}
	}()
	r := wire.NewUnixReader(b, 0)
	defer r.CloseFiles()
	for i, n := range counts {
		kind, payload, err := r.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		want := byte('p')
		if n > 0 {
			want = 'f'
		}
		if kind != want || len(payload) != 1 || payload[0] != byte(i) {
			t.Fatalf("frame %d: kind %q payload %v, want %q [%d]", i, kind, payload, want, i)
		}
		fs := r.Files()
		if len(fs) != n {
			t.Fatalf("frame %d: got %d descriptors, want %d", i, len(fs), n)
		}
		for j, f := range fs {
			if j == 0 || j == len(fs)-1 {
				if _, err := f.Write([]byte{byte(i)}); err != nil {
					t.Fatalf("frame %d: descriptor %d: %v", i, j, err)
				}
				var got [1]byte
				if _, err := pr.Read(got[:]); err != nil || got[0] != byte(i) {
					t.Fatalf("frame %d: descriptor %d is not the pipe: %v %v", i, j, got, err)
				}
			}
			f.Close()
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestUnixReaderUndeclared: a frame declaring descriptors that did not
// arrive is corrupt, and a plain reader treats the flag as part of the kind.
func TestUnixReaderUndeclared(t *testing.T) {
	a, b := unixPair(t)
	msg := filesFrame(nil, 'f', 2, nil)
	if _, err := a.Write(msg); err != nil {
		t.Fatal(err)
	}
	r := wire.NewUnixReader(b, 0)
	if _, _, err := r.Next(); !errors.Is(err, wire.ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	plain := wire.NewReader(&chunkReader{msg, 100}, 0)
	kind, _, err := plain.Next()
	if err != nil || kind != 'f'|wire.FlagFiles {
		t.Fatalf("plain reader: kind %#x, %v", kind, err)
	}
}

// TestUnixReaderUnclaimed: descriptors no frame takes are closed by the
// next Next or by CloseFiles (the leak check of TestMain sees any left).
func TestUnixReaderUnclaimed(t *testing.T) {
	a, b := unixPair(t)
	fd, err := wire.DupFD(os.Stdin)
	if err != nil {
		t.Fatal(err)
	}
	fd2, err := wire.DupFD(os.Stdin)
	if err != nil {
		t.Fatal(err)
	}
	// Frame 1 declares one descriptor, which the reader does not take;
	// frame 2 declares none but a second descriptor arrives with it.
	stream := filesFrame(nil, 'f', 1, nil)
	at2 := len(stream)
	stream = wire.AppendFrame(stream, 'p', nil)
	err = wire.WriteFiles(a, stream, []wire.Attach{{At: 0, Fds: []int{fd}}, {At: at2, Fds: []int{fd2}}})
	wire.CloseFD(fd)
	wire.CloseFD(fd2)
	if err != nil {
		t.Fatal(err)
	}
	r := wire.NewUnixReader(b, 0)
	for range 2 {
		if _, _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	r.CloseFiles()
}

func TestReaderSetLimit(t *testing.T) {
	stream := wire.AppendFrame(wire.AppendFrame(nil, 'a', make([]byte, 10)), 'b', make([]byte, 100))
	r := wire.NewReader(&chunkReader{stream, 1000}, 0)
	r.SetLimit(10)
	if _, _, err := r.Next(); err != nil {
		t.Fatalf("frame at the limit: %v", err)
	}
	if _, _, err := r.Next(); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("frame over the limit: got %v, want ErrFrameTooLarge", err)
	}
}
