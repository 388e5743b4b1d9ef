//go:build unix && !(linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64))

package isolate

import "syscall"

// defaultAction cannot go beneath the runtime here: DieOf falls back to a
// plain exit.
func defaultAction(sig syscall.Signal) {}
