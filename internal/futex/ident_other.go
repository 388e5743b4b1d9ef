//go:build !linux

package futex

import (
	"errors"
	"os"
)

// Self returns this process's pid; the tag is 0 off Linux.
func Self() (pid, tag uint32) { return uint32(os.Getpid()), 0 }

// Ident is unavailable off Linux.
func Ident(pid uint32) (tag uint32, ok bool) { return 0, false }

// Alive is unavailable off Linux: it reports true (never steals a lock).
func Alive(pid, tag uint32) bool { return true }

// Watch is unavailable off Linux.
type Watch struct{ Pid, Tag uint32 }

// NewWatch fails off Linux.
func NewWatch(pid, tag uint32, onDeath func()) (*Watch, error) { return nil, errors.ErrUnsupported }

// Dead reports false.
func (w *Watch) Dead() bool { return false }

// Close does nothing.
func (w *Watch) Close() {}

// Polled reports false.
func (w *Watch) Polled() bool { return false }
