//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// childFD is the limit child's end of the socketpair, the first of cmd.ExtraFiles.
const childFD = 3

// serveLimitChild runs in the re-executed child and returns its exit code. It uses raw
// blocking syscalls on fd 3, outside the Go netpoller, like a C program would.
func serveLimitChild(role string) int {
	switch role {
	case roleHandshake, rolePingpong, roleBandwidth, roleSpin:
	default:
		fmt.Fprintf(os.Stderr, "mpbench: unknown %s role %q\n", limitChildEnv, role)
		return 2
	}
	// A child run by hand must not block on a terminal or write into a random file.
	var st syscall.Stat_t
	if err := syscall.Fstat(childFD, &st); err != nil || uint32(st.Mode)&syscall.S_IFMT != syscall.S_IFSOCK {
		fmt.Fprintf(os.Stderr, "mpbench: %s=%s is set but fd %d is not the socket mpbench passes: this "+
			"process is a limit-benchmark child and only mpbench itself starts it; unset %s to run mpbench\n",
			limitChildEnv, role, childFD, limitChildEnv)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "mpbench: limit child %s: %v\n", role, err)
		return 1
	}
	if err := writeFull(childFD, []byte{1}); err != nil {
		return fail(err)
	}
	switch role {
	case roleSpin:
		// Burn one CPU on another goroutine while this one waits, blocked in read,
		// for the parent to close its end.
		go func() {
			for x := uint64(0); ; x++ {
				spinResult.Store(x) // work the compiler cannot drop
			}
		}()
		b := make([]byte, 1)
		for {
			n, err := read(childFD, b)
			if err != nil {
				return fail(err)
			}
			if n == 0 {
				return 0
			}
		}
	case rolePingpong:
		b := make([]byte, 1)
		for {
			n, err := read(childFD, b)
			if err != nil {
				return fail(err)
			}
			if n == 0 { // the parent closed its end: done
				return 0
			}
			if err := writeFull(childFD, b); err != nil {
				return fail(err)
			}
		}
	case roleBandwidth:
		b := make([]byte, bandwidthChunk)
		for {
			n, err := read(childFD, b)
			if err != nil {
				return fail(err)
			}
			if n == 0 {
				break
			}
		}
		if err := writeFull(childFD, []byte{1}); err != nil {
			return fail(err)
		}
	}
	return 0
}

// limitChild is a re-executed mpbench serving one role at the other end of a socketpair.
type limitChild struct {
	cmd      *exec.Cmd
	fd       int      // the parent's end: blocking, used with raw syscalls only; -1 once closed
	childEnd *os.File // the child's end until Start has passed it on
	stop     func() bool
}

// newLimitChild prepares, but does not start, a limit child serving role.
func newLimitChild(exe, role string) (*limitChild, error) {
	fds, err := socketpair()
	if err != nil {
		return nil, fmt.Errorf("mpbench: socketpair: %w", err)
	}
	c := &limitChild{cmd: exec.Command(exe), fd: fds[0], childEnd: os.NewFile(uintptr(fds[1]), "mpbench-limit")}
	c.cmd.Env = append(os.Environ(), limitChildEnv+"="+role)
	c.cmd.ExtraFiles = []*os.File{c.childEnd}
	c.cmd.Stderr = os.Stderr
	return c, nil
}

// start starts the child and arranges for ctx's cancellation to kill it, which turns any
// blocked read of the parent into EOF: no limit row can hang.
func (c *limitChild) start(ctx context.Context) error {
	err := c.cmd.Start()
	c.childEnd.Close()
	if err != nil {
		syscall.Close(c.fd)
		return fmt.Errorf("mpbench: starting limit child: %w", err)
	}
	// Kill goes through the os.Process handle (a pidfd on Linux), so it can never hit an
	// unrelated process that reused the pid.
	c.stop = context.AfterFunc(ctx, func() { c.cmd.Process.Kill() })
	return nil
}

// readByte reads one byte, reporting EOF as an error.
func (c *limitChild) readByte(ctx context.Context) error {
	var b [1]byte
	n, err := read(c.fd, b[:])
	if err == nil && n == 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return c.fail(ctx, err)
	}
	return nil
}

func (c *limitChild) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("mpbench: limit child: %w", ctx.Err())
	}
	return fmt.Errorf("mpbench: limit child: %w", err)
}

// finish closes the parent's end, which makes a pingpong child exit, and waits for the
// child. It is safe to call more than once.
func (c *limitChild) finish() error {
	if c.fd < 0 {
		return nil
	}
	syscall.Close(c.fd)
	c.fd = -1
	err := c.cmd.Wait()
	c.stop()
	if err != nil {
		return fmt.Errorf("mpbench: limit child: %w", err)
	}
	return nil
}

// reexecHandshake measures the mean time per process from cmd.Start to the first byte the
// child writes to fd 3, and with wait also through cmd.Wait, in ms.
func reexecHandshake(ctx context.Context, env *Env, wait bool) (float64, error) {
	n := env.N(handshakeProcs)
	var total time.Duration
	for range n {
		c, err := newLimitChild(env.Exe, roleHandshake)
		if err != nil {
			return 0, err
		}
		start := time.Now()
		if err := c.start(ctx); err != nil {
			return 0, err
		}
		err = c.readByte(ctx)
		end := time.Now()
		if err != nil {
			c.finish()
			return 0, err
		}
		err = c.finish()
		if wait {
			end = time.Now()
		}
		if err != nil {
			return 0, err
		}
		total += end.Sub(start)
	}
	return total.Seconds() * 1e3 / float64(n), nil
}

// socketpairPingpong measures 1-byte round trips per second with a child that echoes.
func socketpairPingpong(ctx context.Context, env *Env) (float64, error) {
	c, err := startReady(ctx, env, rolePingpong)
	if err != nil {
		return 0, err
	}
	defer c.finish()
	n := env.N(pingpongTrips)
	b := []byte{1}
	start := time.Now()
	for range n {
		if err := writeFull(c.fd, b); err != nil {
			return 0, c.fail(ctx, err)
		}
		if err := c.readByte(ctx); err != nil {
			return 0, err
		}
	}
	elapsed := time.Since(start)
	if err := c.finish(); err != nil {
		return 0, err
	}
	return float64(n) / elapsed.Seconds(), nil
}

// unixBandwidth measures the rate at which the child receives 64 KiB writes, in GB/s
// (1e9 bytes/s), up to its acknowledgement of EOF.
func unixBandwidth(ctx context.Context, env *Env) (float64, error) {
	c, err := startReady(ctx, env, roleBandwidth)
	if err != nil {
		return 0, err
	}
	defer c.finish()
	n := env.N(bandwidthWrites)
	buf := make([]byte, bandwidthChunk)
	for i := range buf {
		buf[i] = byte(i)
	}
	start := time.Now()
	for range n {
		if err := writeFull(c.fd, buf); err != nil {
			return 0, c.fail(ctx, err)
		}
	}
	if err := syscall.Shutdown(c.fd, syscall.SHUT_WR); err != nil {
		return 0, c.fail(ctx, err)
	}
	if err := c.readByte(ctx); err != nil {
		return 0, err
	}
	elapsed := time.Since(start)
	if err := c.finish(); err != nil {
		return 0, err
	}
	return float64(n) * bandwidthChunk / elapsed.Seconds() / 1e9, nil
}

// spinResult is what a spinner child's loop writes.
var spinResult atomic.Uint64

// startSpinners starts one spinner child per CPU, each burning a CPU until stop closes
// its socket: the background load of the *.loaded rows.
func startSpinners(ctx context.Context, env *Env) (stop func() error, err error) {
	var cs []*limitChild
	stop = func() error {
		var first error
		for _, c := range cs {
			if err := c.finish(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for range runtime.NumCPU() {
		c, err := startReady(ctx, env, roleSpin)
		if err != nil {
			stop()
			return nil, err
		}
		cs = append(cs, c)
	}
	return stop, nil
}

// startReady starts a limit child and waits for its ready byte, so the measurement that
// follows does not include the start.
func startReady(ctx context.Context, env *Env, role string) (*limitChild, error) {
	c, err := newLimitChild(env.Exe, role)
	if err != nil {
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	if err := c.readByte(ctx); err != nil {
		c.finish()
		return nil, err
	}
	return c, nil
}

// read is syscall.Read retrying EINTR. The Go runtime installs its signal handlers with
// SA_RESTART, so this is insurance, not a path the measurement takes.
func read(fd int, b []byte) (int, error) {
	for {
		n, err := syscall.Read(fd, b)
		if !errors.Is(err, syscall.EINTR) {
			return n, err
		}
	}
}

// writeFull writes all of b with raw syscall.Write calls.
func writeFull(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
