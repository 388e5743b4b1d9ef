package futex

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Self returns this process's pid and start-time tag, the identity a
// [Mutex] word records. It is computed once.
func Self() (pid, tag uint32) {
	selfOnce.Do(func() {
		selfPid = uint32(os.Getpid())
		if st, ok := readStat(int(selfPid)); ok {
			selfTag = st.tag
		}
	})
	return selfPid, selfTag
}

var (
	selfOnce         sync.Once
	selfPid, selfTag uint32
)

type procStat struct {
	state byte
	tag   uint32 // low 32 bits of the start time, in clock ticks since boot
}

// readStat reads /proc/PID/stat without allocating much: state (field 3)
// and starttime (field 22). ok is false when the process does not exist.
func readStat(pid int) (procStat, bool) {
	return readStatPath("/proc/" + itoa(pid) + "/stat")
}

func itoa(n int) string { return strconv.Itoa(n) }

// readStatPath is readStat of a stat file by path (a thread's is
// /proc/self/task/TID/stat; /proc/TID/stat also works for any thread).
func readStatPath(path string) (procStat, bool) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return procStat{}, false
	}
	var buf [1024]byte
	n, err := unix.Read(fd, buf[:])
	unix.Close(fd)
	if err != nil || n <= 0 {
		return procStat{}, false
	}
	b := buf[:n]
	// The command name (field 2) may hold spaces and parentheses: the
	// fields that follow start after its last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return procStat{}, false
	}
	fields := bytes.Fields(b[i+2:])
	if len(fields) < 20 {
		return procStat{}, false
	}
	st, err := strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return procStat{}, false
	}
	return procStat{state: fields[0][0], tag: uint32(st)}, true
}

// Ident returns the start-time tag of the live process pid (ok false when
// there is none): what a word would record for it.
func Ident(pid uint32) (tag uint32, ok bool) {
	st, ok := readStat(int(pid))
	if !ok || st.state == 'Z' || st.state == 'X' || st.state == 'x' {
		return 0, false
	}
	return st.tag, true
}

// Alive reports whether the process pid with start-time tag still runs: it
// exists, is not a zombie, and has that start time (a live process with the
// same pid and another start time reused the pid of a dead one). It reads
// /proc/PID/stat: a few microseconds, so callers use it on slow paths only.
func Alive(pid, tag uint32) bool {
	st, ok := readStat(int(pid))
	if !ok {
		return false
	}
	return st.tag == tag && st.state != 'Z' && st.state != 'X' && st.state != 'x'
}

// Watch tells when one process exits: a pidfd (PIDFD_NONBLOCK) waited on
// by Go's netpoller, so a watch costs a goroutine, not an OS thread.
type Watch struct {
	Pid, Tag uint32
	dead     atomic.Bool
	f        *os.File      // nil when the process was found dead at once
	done     chan struct{} // closed when the watching goroutine has returned
}

// NewWatch watches process pid with start-time tag. When it exits (or is
// found dead or replaced by a stranger already), Dead becomes true and
// onDeath runs once, on the watch's goroutine. The error reports that the
// process cannot be watched (pidfd_open unavailable): callers fall back to
// timed [Alive] checks.
func NewWatch(pid, tag uint32, onDeath func()) (*Watch, error) {
	w := &Watch{Pid: pid, Tag: tag}
	fd, err := openPidfd(pid)
	if errors.Is(err, unix.ESRCH) {
		w.dead.Store(true)
		return w, nil
	}
	if err != nil {
		return nil, os.NewSyscallError("pidfd_open", err)
	}
	// The pidfd names whatever process had the pid when it was opened: the
	// start time, read after, says whether that is the one the word names.
	if !Alive(pid, tag) {
		unix.Close(fd)
		w.dead.Store(true)
		return w, nil
	}
	w.f = os.NewFile(uintptr(fd), "pidfd")
	rc, err := w.f.SyscallConn()
	if err != nil {
		w.f.Close()
		return nil, err
	}
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		err := rc.Read(func(fd uintptr) bool {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, _ := unix.Poll(pfd, 0)
			return n > 0
		})
		if err == nil {
			w.dead.Store(true)
			onDeath()
		}
	}()
	return w, nil
}

// Dead reports whether the watched process was seen to exit.
func (w *Watch) Dead() bool { return w.dead.Load() }

// Polled reports whether a pidfd watches the process (rather than the
// process having been found dead at once).
func (w *Watch) Polled() bool { return w.f != nil }

// Close stops the watch and waits for its goroutine.
func (w *Watch) Close() {
	if w.f == nil {
		return
	}
	w.f.Close()
	<-w.done
	w.f = nil
}

// tgid returns the process (thread group) of thread id tid, from
// /proc/TID/status, or tid itself when that cannot be read.
func tgid(tid int) int {
	b, err := os.ReadFile("/proc/" + itoa(tid) + "/status")
	if err != nil {
		return tid
	}
	if i := bytes.Index(b, []byte("\nTgid:")); i >= 0 {
		f := bytes.Fields(b[i+6:])
		if len(f) > 0 {
			if n, err := strconv.Atoi(string(f[0])); err == nil {
				return n
			}
		}
	}
	return tid
}
