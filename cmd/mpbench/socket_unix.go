//go:build unix && !linux

package main

import "syscall"

// socketpair returns a connected unix stream socketpair, both ends close-on-exec. Without
// SOCK_CLOEXEC the flag is set afterwards under syscall.ForkLock, so a child started
// meanwhile by another goroutine cannot inherit the ends.
func socketpair() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return fds, err
	}
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	return fds, nil
}
