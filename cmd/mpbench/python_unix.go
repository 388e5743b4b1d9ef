//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// killGroupOnCancel puts the interpreter in a process group of its own and makes the
// command's cancellation kill that whole group, so CPython's pool workers die with it.
// The group cannot have been reused: Cancel runs before Wait reaps the leader, whose pid
// is the group id.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
