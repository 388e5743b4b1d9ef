//go:build linux

package main

import "syscall"

// socketpair returns a connected unix stream socketpair, both ends close-on-exec, so a
// child started meanwhile by another goroutine cannot inherit them.
func socketpair() ([2]int, error) {
	return syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
}
