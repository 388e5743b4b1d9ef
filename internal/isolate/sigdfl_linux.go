//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64)

package isolate

import (
	"syscall"
	"unsafe"
)

// sigaction is the kernel's struct for rt_sigaction on these
// architectures: handler, flags, restorer, mask.
type sigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// canDefaultAction: defaultAction works here, so the kernel itself ends
// a process whose task crosses its CPU allowance (see CPUGuard).
const canDefaultAction = true

// defaultAction restores sig's default action (SIG_DFL) beneath the Go
// runtime, which installs its own handler for every signal.
func defaultAction(sig syscall.Signal) {
	var sa sigaction // SIG_DFL is 0
	syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&sa)), 0, 8, 0, 0)
}
