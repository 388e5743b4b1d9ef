//go:build !unix

package main

import "os/exec"

// killGroupOnCancel leaves the default cancellation, which kills the interpreter only.
func killGroupOnCancel(*exec.Cmd) {}
