//go:build !linux

package testutil

import (
	"errors"
	"fmt"
	"runtime"
)

// Without /proc there is no portable way to list a process's children,
// descriptors or shared memory, so on other systems Run checks goroutines
// only.

type sysBaseline struct{}

func sysSnapshot() (sysBaseline, error) { return sysBaseline{}, nil }

func sysCollect(sysBaseline, *options, *report) {}

func unsupported(what string) error {
	return fmt.Errorf("testutil: %s needs /proc, which %s lacks: %w", what, runtime.GOOS, errors.ErrUnsupported)
}

// Children returns the pids of the direct children of process pid. It needs
// /proc: on this system it returns an error wrapping [errors.ErrUnsupported].
func Children(pid int) ([]int, error) {
	return nil, unsupported("listing child processes")
}

// ProcessState returns the state letter of process pid as Linux's
// /proc/PID/stat shows it. On this system the state is unknown and ok is
// always false.
func ProcessState(pid int) (state byte, ok bool) {
	return 0, false
}

// ProcessAlive reports whether process pid exists and is not a zombie. On
// this system that is unknown and it always returns false, so tests must not
// take false to mean that a process exited.
func ProcessAlive(pid int) bool {
	return false
}

// OpenFDs returns this process's open file descriptors and what they refer
// to. It needs /proc: on this system it returns an error wrapping
// [errors.ErrUnsupported].
func OpenFDs() (map[int]string, error) {
	return nil, unsupported("listing file descriptors")
}
