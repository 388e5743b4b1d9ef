package manager

import (
	"context"
	"errors"

	"github.com/multiproc-go/multiproc/ipc"
)

// ipcConn is an ipc.Conn as a message connection: every connection of a
// manager is one, authenticated by ipc's handshake (the one in the
// project) before anything it carries is decoded.
type ipcConn struct {
	c   *ipc.Conn
	buf []byte
}

func newIPCConn(c *ipc.Conn) *ipcConn { return &ipcConn{c: c, buf: make([]byte, 4<<10)} }

func (x *ipcConn) SendMsg(b []byte) error {
	ctx := context.Background()
	// Buffered: ipc's writer goroutine writes it, or the next receive on
	// this connection does (a client's call reads its answer on its own
	// goroutine; a server's connection loop goes back to receiving), so
	// no extra flush is on the round trip.
	return x.c.SendBytes(ctx, b)
}

func (x *ipcConn) RecvMsg(ctx context.Context) ([]byte, error) {
	n, err := x.c.RecvBytesInto(ctx, x.buf)
	if err != nil {
		var short *ipc.BufferTooShortError
		if errors.As(err, &short) {
			if len(short.Message) <= 1<<20 {
				x.buf = make([]byte, 2*len(short.Message))
			}
			return short.Message, nil
		}
		return nil, err
	}
	return x.buf[:n], nil
}

func (x *ipcConn) SameBuild() bool { return x.c.SameBuild() }
func (x *ipcConn) Close() error    { return x.c.Close() }

// testDial, set by tests only, replaces the network for addresses of
// its network "mem".
var testDial func(ctx context.Context, addr address, key []byte) (msgConn, error)

// dialOpts are the ipc options proxies received from other processes
// dial with (TLS configurations do not travel: see the package
// documentation).
func dial(ctx context.Context, addr address, key []byte, opts ...ipc.Option) (msgConn, error) {
	if testDial != nil && addr.network == "mem" {
		return testDial(ctx, addr, key)
	}
	c, err := ipc.Dial(ctx, addr.network, addr.addr, key, opts...)
	if err != nil {
		return nil, err
	}
	return newIPCConn(c), nil
}
