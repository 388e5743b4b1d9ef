//go:build unix && !linux

package boot

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

// fdDir lists this process's open descriptors (fdesc on the BSDs and macOS).
const fdDir = "/dev/fd"

func socketpairCloexec() ([2]int, error) {
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

func executable() string {
	p, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return p
}

// Without a parent-death signal, children rely on the control socket's EOF.
func sysProcAttr(newGroup bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: newGroup}
}

var buildID = sync.OnceValues(func() (string, error) {
	st, err := os.Stat(executable())
	if err != nil {
		return "", fmt.Errorf("multiproc: reading build id: %w", err)
	}
	return fmt.Sprintf("file:%d:%d", st.Size(), st.ModTime().UnixNano()), nil
})

// BuildID identifies this binary's build.
func BuildID() (string, error) { return buildID() }

// setCgroupDir does nothing: there are no cgroups here (internal/cgroup
// never hands out a directory).
func setCgroupDir(a *syscall.SysProcAttr, dir *os.File) {}
