//go:build unix && !(linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64))

package isolate

import "syscall"

// canDefaultAction: defaultAction cannot go beneath the runtime here, so
// CPUGuard falls back to a goroutine that receives SIGXCPU, and DieOf to a
// plain exit.
const canDefaultAction = false

// defaultAction cannot go beneath the runtime here: DieOf falls back to a
// plain exit.
func defaultAction(sig syscall.Signal) {}
