//go:build !linux

package core

import (
	"errors"
	"net"
	"syscall"
)

// directReads: without eventfd, ppoll and pidfds here, callers wait for
// their results the ordinary way (the read loop delivers them), and a
// worker's stream is never parked.
const directReads = false

// spinReads: nobody polls before sleeping here (spin.go).
const spinReads = false

type directWaker struct{}

func newDirectWaker() (*directWaker, error) { return nil, errors.ErrUnsupported }

func (*directWaker) wait(syscall.RawConn) (bool, error) { return false, errors.ErrUnsupported }

func pending(syscall.RawConn) bool { return true }
func (*directWaker) wake()         {}
func (*directWaker) close()        {}

// writeNow writes nothing here: callers write through the connection.
func writeNow(*net.UnixConn, []byte) int { return 0 }

// sockFD is never made here (streams are never parked).
type sockFD struct{}

func newSockFD(*net.UnixConn) (*sockFD, error)              { return nil, errors.ErrUnsupported }
func (*sockFD) Control(func(fd uintptr)) error              { return errors.ErrUnsupported }
func (*sockFD) Read(func(fd uintptr) bool) error            { return errors.ErrUnsupported }
func (*sockFD) Write(func(fd uintptr) bool) error           { return errors.ErrUnsupported }
func (*sockFD) close()                                      {}
func (*sockFD) release()                                    {}
func (*sockFD) conn() (*net.UnixConn, error)                { return nil, errors.ErrUnsupported }
func (*sockFD) waitIn() error                               { return errors.ErrUnsupported }
func (*sockFD) writev(b [][]byte, _ bool) ([][]byte, error) { return b, nil }

type pidWatch struct{}

func newPidWatch(int) (*pidWatch, error) { return nil, errors.ErrUnsupported }
func (*pidWatch) wait()                  {}
func (*pidWatch) close()                 {}
