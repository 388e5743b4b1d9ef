package ipc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/ipc"
)

func listen(t *testing.T, key []byte, opts ...ipc.Option) *ipc.Listener {
	t.Helper()
	l, err := ipc.Listen("unix", filepath.Join(t.TempDir(), "s"), key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// waitRejected waits until the listener refused n connections in all.
func waitRejected(t *testing.T, l *ipc.Listener, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for l.Rejected() < n {
		if time.Now().After(deadline) {
			t.Fatalf("listener refused %d connections, want %d", l.Rejected(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// roundTrip dials l and checks one exchange with the accepted end.
func roundTrip(t *testing.T, l *ipc.Listener, key []byte, opts ...ipc.Option) {
	t.Helper()
	ctx := testCtx(t)
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept(ctx)
		if err == nil {
			defer c.Close()
			var m []byte
			if m, err = c.RecvBytes(ctx); err == nil {
				err = c.SendBytes(ctx, m)
			}
		}
		done <- err
	}()
	c, err := ipc.Dial(ctx, l.Addr().Network(), l.Addr().String(), key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SendBytes(ctx, []byte("ping"))
	if m, err := c.RecvBytes(ctx); err != nil || string(m) != "ping" {
		t.Fatalf("RecvBytes = %q, %v", m, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestListenerRefusesAndKeepsServing(t *testing.T) {
	key := []byte("k")
	l := listen(t, key, ipc.HandshakeTimeout(2*time.Second), ipc.Logger(discard()))
	garbage := [][]byte{
		[]byte("GET / HTTP/1.0\r\n\r\n"),
		{0x7f, 0xff, 0xff, 0xff, 1, 2, 3},        // a huge length
		{0xff, 0xff, 0xff, 0xff},                 // -1
		{0, 0, 0, 3, 'a', 'b', 'c'},              // a short non-challenge answer
		{0, 0, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9}, // truncated
	}
	var want int64
	for _, g := range garbage {
		nc, err := net.Dial("unix", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		nc.Write(g)
		nc.(*net.UnixConn).CloseWrite()
		want++
		waitRejected(t, l, want)
		nc.Close()
	}
	ctx := testCtx(t)
	if _, err := ipc.Dial(ctx, "unix", l.Addr().String(), []byte("wrong")); !errors.Is(err, ipc.ErrAuth) {
		t.Fatalf("wrong key: %v", err)
	}
	want++
	waitRejected(t, l, want)
	// A peer that connects and sends nothing is dropped at the deadline.
	nc, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	want++
	waitRejected(t, l, want)
	roundTrip(t, l, key)
}

func TestListenerUnauthenticatedCap(t *testing.T) {
	// With a cap of 2, two silent connections hold both slots; a third
	// (good) peer is served once the deadline frees one, not before.
	key := []byte("k")
	l := listen(t, key, ipc.MaxUnauthenticated(2), ipc.HandshakeTimeout(time.Second), ipc.Logger(discard()))
	for range 2 {
		nc, err := net.Dial("unix", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
	}
	roundTrip(t, l, key)
	// The good peer got a slot only once a silent one was dropped.
	if l.Rejected() < 1 {
		t.Fatalf("a good peer was served while both slots were held (rejected %d)", l.Rejected())
	}
}

func TestDialHandshakeTimeout(t *testing.T) {
	// A server that accepts and says nothing: Dial fails at its deadline.
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "mute"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			var b [1]byte
			c.Read(b[:])
		}
	}()
	start := time.Now()
	_, err = ipc.Dial(testCtx(t), "unix", ln.Addr().String(), []byte("k"), ipc.HandshakeTimeout(200*time.Millisecond))
	if !errors.Is(err, ipc.ErrHandshake) {
		t.Fatalf("Dial to a mute server: %v, want ErrHandshake", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("Dial took %v", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ipc.Dial(ctx, "unix", ln.Addr().String(), []byte("k")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial with a cancelled context: %v", err)
	}
}

func TestListenerCloseEndsAccept(t *testing.T) {
	l := listen(t, []byte("k"))
	errc := make(chan error, 1)
	go func() { _, err := l.Accept(context.Background()); errc <- err }()
	l.Close()
	if err := <-errc; !errors.Is(err, ipc.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

func TestOptionsConflict(t *testing.T) {
	if _, err := ipc.Listen("unix", filepath.Join(t.TempDir(), "s"), []byte("k"), ipc.LegacyMD5()); err == nil {
		t.Fatal("LegacyMD5 without Python accepted")
	}
	if _, err := ipc.Dial(context.Background(), "unix", "x", []byte("k"), ipc.MaxUnauthenticated(3)); err == nil {
		t.Fatal("MaxUnauthenticated on Dial accepted")
	}
	if _, err := ipc.Listen("unix", filepath.Join(t.TempDir(), "s"), nil); err == nil {
		t.Fatal("an empty key accepted")
	}
}

// tlsConfigs returns a server and a client configuration over a fresh
// self-signed certificate for "ipc.test".
func tlsConfigs(t *testing.T) (srv, cli *tls.Config) {
	t.Helper()
	cert := selfSigned(t)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	srv = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	cli = &tls.Config{RootCAs: pool, ServerName: "ipc.test", MinVersion: tls.VersionTLS13}
	return srv, cli
}

func TestTLS(t *testing.T) {
	srv, cli := tlsConfigs(t)
	key := []byte("k")
	l, err := ipc.Listen("tcp", "127.0.0.1:0", key, ipc.TLS(srv), ipc.Logger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	roundTrip(t, l, key, ipc.TLS(cli))
	// Without TLS the server refuses the connection.
	if _, err := ipc.Dial(testCtx(t), "tcp", l.Addr().String(), key, ipc.HandshakeTimeout(2*time.Second)); err == nil {
		t.Fatal("a plain client got through a TLS listener")
	}
	// That a TLS Conn cannot be passed to another process is
	// TestTLSConnToProcess.
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ipc.test"}, DNSNames: []string{"ipc.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: leaf}
}
