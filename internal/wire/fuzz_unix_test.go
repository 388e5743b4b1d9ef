//go:build unix

package wire_test

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// FuzzUnixReader feeds arbitrary bytes, with nfds descriptors attached to
// the first byte, to a Reader in descriptor mode: whatever the frames
// declare, it never panics, never hands out more descriptors than
// arrived, and ends with an error.
func FuzzUnixReader(f *testing.F) {
	f.Add(filesFrame(wire.AppendFrame(nil, 'a', nil), 'f', 1, []byte("x")), uint8(1))
	f.Add(filesFrame(nil, 'f', 3, nil), uint8(2))
	f.Add([]byte{1, 0, 0, 0, 0x80 | 'f', 0}, uint8(0))
	f.Add([]byte{2, 0, 0, 0, 0x80 | 'f', 0xff, 0x7f}, uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, nfds uint8) {
		if len(data) == 0 {
			return
		}
		a, b := unixPair(t)
		var fds []int
		for range int(nfds % 8) {
			fd, err := wire.DupFD(os.Stdin)
			if err != nil {
				t.Fatal(err)
			}
			fds = append(fds, fd)
		}
		done := make(chan error, 1)
		go func() {
			err := wire.WriteFiles(a, data, []wire.Attach{{At: 0, Fds: fds}})
			for _, fd := range fds {
				wire.CloseFD(fd)
			}
			a.CloseWrite()
			done <- err
		}()
		r := wire.NewUnixReader(b, 1<<16)
		got := 0
		for {
			_, _, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
					!errors.Is(err, wire.ErrCorrupt) && !errors.Is(err, wire.ErrFrameTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			fs := r.Files()
			got += len(fs)
			for _, f := range fs {
				f.Close()
			}
		}
		r.CloseFiles()
		b.Close() // a writer blocked on a full socket gets an error
		<-done
		if got > len(fds) {
			t.Fatalf("%d descriptors handed out, %d sent", got, len(fds))
		}
	})
}
