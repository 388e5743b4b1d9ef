package handshake

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Run(m) }

func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return s, c
}

func both(t *testing.T, scfg, ccfg *Config) (Result, error, Result, error) {
	s, c := pair(t)
	ctx := context.Background()
	type out struct {
		r   Result
		err error
	}
	ch := make(chan out, 1)
	go func() {
		r, err := Server(ctx, s, scfg)
		if err != nil {
			s.Close()
		}
		ch <- out{r, err}
	}()
	cr, cerr := Client(ctx, c, ccfg)
	if cerr != nil {
		c.Close()
	}
	o := <-ch
	return o.r, o.err, cr, cerr
}

func TestHandshake(t *testing.T) {
	key := []byte("key")
	sr, serr, cr, cerr := both(t, &Config{Key: key, BuildID: "b1"}, &Config{Key: key, BuildID: "b1"})
	if serr != nil || cerr != nil || !sr.SameBuild || !cr.SameBuild || sr.PeerBuild != "b1" {
		t.Fatalf("same build: %+v %v / %+v %v", sr, serr, cr, cerr)
	}
	sr, serr, cr, cerr = both(t, &Config{Key: key, BuildID: "b1"}, &Config{Key: key, BuildID: "b2"})
	if serr != nil || cerr != nil || sr.SameBuild || cr.SameBuild || sr.PeerBuild != "b2" || cr.PeerBuild != "b1" {
		t.Fatalf("other build: %+v %v / %+v %v", sr, serr, cr, cerr)
	}
	_, serr, _, cerr = both(t, &Config{Key: key}, &Config{Key: []byte("other")})
	if !errors.Is(serr, ErrAuth) || !errors.Is(cerr, ErrAuth) || !errors.Is(cerr, ErrHandshake) {
		t.Fatalf("wrong key: %v / %v", serr, cerr)
	}
	sr, serr, _, cerr = both(t, &Config{Key: key, Python: true}, &Config{Key: key, Python: true})
	if serr != nil || cerr != nil || sr.PeerBuild != "" {
		t.Fatalf("python mode: %+v %v / %v", sr, serr, cerr)
	}
	// A Python-mode client on a Go-mode server never sends a hello.
	_, serr, _, _ = both(t, &Config{Key: key, Timeout: 200 * time.Millisecond}, &Config{Key: key, Python: true})
	if !errors.Is(serr, ErrHandshake) {
		t.Fatalf("no hello: %v", serr)
	}
}

func TestLegacyMD5(t *testing.T) {
	key := []byte("key")
	// A legacy (CPython 3.11) challenge: 20 bytes, no prefix.
	s, c := pair(t)
	go func() {
		WriteMessage(s, append([]byte(challengePrefix), bytes.Repeat([]byte{7}, 20)...))
		ReadMessage(s, 256)
		WriteMessage(s, []byte(welcome))
	}()
	h := &state{conn: c, cfg: &Config{Key: key, Python: true}}
	if _, err := h.answer(); !errors.Is(err, ErrAuth) {
		t.Fatalf("legacy challenge without LegacyMD5: %v", err)
	}
	if err := h.verify([]byte("x"), make([]byte, 16)); !errors.Is(err, ErrAuth) {
		t.Fatalf("legacy answer without LegacyMD5: %v", err)
	}
}

// fakeConn reads from a fixed input and discards what is written.
type fakeConn struct {
	r io.Reader
}

func (f *fakeConn) Read(p []byte) (int, error)       { return f.r.Read(p) }
func (f *fakeConn) Write(p []byte) (int, error)      { return len(p), nil }
func (f *fakeConn) Close() error                     { return nil }
func (f *fakeConn) LocalAddr() net.Addr              { return nil }
func (f *fakeConn) RemoteAddr() net.Addr             { return nil }
func (f *fakeConn) SetDeadline(time.Time) error      { return nil }
func (f *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzHandshake feeds arbitrary peer bytes to both sides: each must fail
// with an error (the peer cannot know the random challenge's HMAC), and
// never panic or hang.
func FuzzHandshake(f *testing.F) {
	f.Add([]byte{0, 0, 0, 9, '#', 'W', 'E', 'L', 'C', 'O', 'M', 'E', '#'})
	f.Add(append([]byte{0, 0, 0, 31}, append([]byte(challengePrefix), bytes.Repeat([]byte{1}, 20)...)...))
	f.Add(append([]byte{0, 0, 0, 59}, append([]byte(challengePrefix+sha256Prefix), bytes.Repeat([]byte{1}, 40)...)...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, py := range []bool{false, true} {
			for _, server := range []bool{false, true} {
				cfg := &Config{Key: []byte("k"), Python: py, LegacyMD5: py}
				_, err := run(context.Background(), &fakeConn{bytes.NewReader(in)}, cfg, server)
				if server && err == nil {
					t.Fatalf("server accepted a peer that cannot know the key")
				}
				if err != nil && !errors.Is(err, ErrHandshake) {
					t.Fatalf("error not matching ErrHandshake: %v", err)
				}
			}
		}
	})
}

// FuzzParseHello: any bytes parse or fail with ErrHandshake; what parses
// round-trips.
func FuzzParseHello(f *testing.F) {
	f.Add(AppendHello(nil, Version, 0, "build"))
	f.Add([]byte(helloMagic))
	f.Fuzz(func(t *testing.T, in []byte) {
		v, fl, b, err := ParseHello(in)
		if err != nil {
			if !errors.Is(err, ErrHandshake) {
				t.Fatal(err)
			}
			return
		}
		v2, fl2, b2, err := ParseHello(AppendHello(nil, v, fl, b))
		if err != nil || v2 != v || fl2 != fl || b2 != b {
			t.Fatalf("hello does not round-trip: %q", in)
		}
	})
}
