package boot

import (
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// fdDir lists this process's open descriptors.
const fdDir = "/proc/self/fd"

func socketpairCloexec() ([2]int, error) {
	return unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
}

// executable is the running binary itself, even if its file was replaced or
// deleted since: the kernel resolves /proc/self/exe in the forked child.
func executable() string { return "/proc/self/exe" }

func sysProcAttr(newGroup bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: newGroup}
}

// setCgroupDir starts the child directly in the cgroup v2 directory dir
// (clone3 with CLONE_INTO_CGROUP): it never runs outside it.
func setCgroupDir(a *syscall.SysProcAttr, dir *os.File) {
	a.UseCgroupFD = true
	a.CgroupFD = int(dir.Fd())
}

var buildID = sync.OnceValues(func() (string, error) {
	f, err := elf.Open("/proc/self/exe")
	if err != nil {
		return "", fmt.Errorf("multiproc: reading build id: %w", err)
	}
	defer f.Close()
	if s := f.Section(".note.go.buildid"); s != nil {
		if b, err := s.Data(); err == nil && len(b) > 16 {
			return hex.EncodeToString(b[16:]), nil
		}
	}
	// No Go build note (stripped by an unusual linker): fall back to the
	// binary's identity on disk.
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		return "", fmt.Errorf("multiproc: reading build id: %w", err)
	}
	return fmt.Sprintf("file:%d:%d:%d", st.Size, st.Mtim.Sec, st.Mtim.Nsec), nil
})

// BuildID identifies this binary's build; children and remote workers
// refuse a parent whose build differs.
func BuildID() (string, error) { return buildID() }

func init() {
	if isChild {
		// Overlap reading our own build note with the rest of start-up.
		go buildID()
	}
}
