package isolate

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// niceAll sets the nice value of every thread of this process. Nice is per
// thread on Linux (setpriority(PRIO_PROCESS, pid) changes only the thread
// whose id is pid), and a new thread inherits its creator's value, so
// once every thread has it, the threads the runtime creates later have it
// too. A thread started while the list is walked could come from one not
// yet changed, so the walk repeats until a pass changes nothing.
func niceAll(n int) error {
	for pass := 0; pass < 100; pass++ {
		tids, err := threads()
		if err != nil {
			return err
		}
		changed := false
		for _, tid := range tids {
			cur, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
			if err != nil {
				continue // the thread exited
			}
			// The raw system call returns 20-nice.
			if 20-cur == n {
				continue
			}
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, n); err != nil {
				if err == unix.ESRCH {
					continue
				}
				return err
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return nil
}

// threads lists this process's thread ids.
func threads() ([]int, error) {
	d, err := os.Open("/proc/self/task")
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(names))
	for _, name := range names {
		if tid, err := strconv.Atoi(name); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// highestFD is the largest open descriptor number, or -1.
func highestFD() int {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return -1
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	top := -1
	for _, name := range names {
		if fd, err := strconv.Atoi(name); err == nil && fd > top {
			top = fd
		}
	}
	return top
}
