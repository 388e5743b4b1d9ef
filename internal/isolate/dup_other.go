//go:build unix && !linux

package isolate

import "golang.org/x/sys/unix"

// redirect makes descriptor to refer to what from refers to.
func redirect(from, to int) error { return unix.Dup2(from, to) }
