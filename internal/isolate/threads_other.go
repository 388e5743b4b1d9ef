//go:build unix && !linux

package isolate

import "golang.org/x/sys/unix"

// niceAll sets the process's nice value: outside Linux it is per process.
func niceAll(n int) error { return unix.Setpriority(unix.PRIO_PROCESS, 0, n) }

// highestFD is unknown here (-1): the descriptor limit is applied as asked.
func highestFD() int { return -1 }
