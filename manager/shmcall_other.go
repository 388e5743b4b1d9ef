//go:build !linux

package manager

import (
	"context"
	"fmt"
)

// Without futexes (and /proc) there is no call slot: every call takes the
// socket. See shmcall_linux.go.

const msgFastWake = 'w'

const (
	opFastOpen   byte = 0xF0
	opFastAttach byte = 0xF1
)

type fastClient struct{}

func (c *client) attachFast(context.Context) {}
func (c *client) closeFast()                 {}

func (c *client) fastPost(uint64, byte, uint64, uint64, [][]byte) bool { return false }

func (c *client) fastWait(ctx context.Context, p *pendingCall) error { return c.wait(ctx, p) }

type fastServer struct{}

func (c *sconn) fastOp(r *request) ([][]byte, error) {
	return nil, fmt.Errorf("%w: no call slot on this platform", ErrNoSuchMethod)
}

func (c *sconn) fastWake()  {}
func (c *sconn) closeFast() {}

func (c *sconn) fastAnswer(build func([]byte) []byte, _ uint64, _ byte) {
	c.send(build)
}
