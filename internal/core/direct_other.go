//go:build !linux

package core

import (
	"errors"
	"net"
)

// directReads: without eventfd and ppoll here, callers wait for their
// results the ordinary way (the read loop delivers them).
const directReads = false

type directWaker struct{}

func newDirectWaker() (*directWaker, error) { return nil, errors.ErrUnsupported }

func (*directWaker) wait(*net.UnixConn) (bool, error) { return false, errors.ErrUnsupported }

func pending(*net.UnixConn) bool { return true }
func (*directWaker) wake()       {}
func (*directWaker) close()      {}

// writeNow writes nothing here: callers write through the connection.
func writeNow(*net.UnixConn, []byte) int { return 0 }
