package ipc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// fuzzConn is a net.Conn that reads a fixed input and discards writes.
type fuzzConn struct{ r io.Reader }

func (f *fuzzConn) Read(p []byte) (int, error)       { return f.r.Read(p) }
func (f *fuzzConn) Write(p []byte) (int, error)      { return len(p), nil }
func (f *fuzzConn) Close() error                     { return nil }
func (f *fuzzConn) LocalAddr() net.Addr              { return nil }
func (f *fuzzConn) RemoteAddr() net.Addr             { return nil }
func (f *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (f *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

type fuzzItem struct {
	I int
	S string
	F float64
}

func goFrame(kind byte, p []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(p)))
	return append(append(b, kind), p...)
}

// FuzzFrames feeds arbitrary bytes to a Conn's receive side, in the Go
// framing (same build and other build) and in CPython's: every receive
// returns a message or an error, the sequence ends (at the input's end at
// the latest), and nothing panics or allocates beyond the size limit.
func FuzzFrames(f *testing.F) {
	it := codecFor[fuzzItem]()
	v, _ := it.native.Append(nil, fuzzItem{1, "hello", 3.14})
	val := binary.LittleEndian.AppendUint64(nil, it.nativeFP)
	val = append(append(val, encNative), v...)
	g, _ := appendGob(nil, fuzzItem{2, "x", 1}, it.name)
	gv := binary.LittleEndian.AppendUint64(nil, it.gobFP)
	gv = append(append(gv, encGob), g...)
	f.Add(append(goFrame(kindBytes, []byte("hi")), goFrame(kindClose, nil)...))
	f.Add(goFrame(kindValue, val))
	f.Add(goFrame(kindValue, gv))
	f.Add([]byte{0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 2, 'h', 'i'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, mode := range []connConfig{
			{sameBuild: true, max: 1 << 20, canRead: true},
			{sameBuild: false, max: 1 << 20, canRead: true},
			{python: true, max: 1 << 20, canRead: true},
		} {
			mode.tls = true // no raw connection: the generic path
			c := newConn(&fuzzConn{bytes.NewReader(in)}, mode)
			ctx := context.Background()
			for i := 0; ; i++ {
				if i > len(in)+1 {
					t.Fatalf("more messages than input bytes")
				}
				var err error
				switch i % 3 {
				case 0:
					_, err = c.RecvBytes(ctx)
				case 1:
					_, err = c.RecvBytesInto(ctx, make([]byte, 8))
					if errors.Is(err, ErrBufferTooShort) {
						err = nil
					}
				case 2:
					if mode.python {
						_, err = c.RecvBytes(ctx)
					} else {
						_, err = Recv[fuzzItem](ctx, c)
					}
				}
				// A message that does not decode is that message's
				// error; anything else ends the stream, for good.
				if err != nil && c.r.err != nil {
					break
				}
			}
			c.Close()
		}
	})
}
