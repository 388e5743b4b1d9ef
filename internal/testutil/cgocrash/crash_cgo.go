//go:build cgo

package cgocrash

/*
static void multiproc_segfault(void) {
	volatile int *p = (volatile int *)0;
	*p = 1;
}
*/
import "C"

// Available reports whether this build has cgo.
const Available = true

// Segfault writes through a null pointer in C.
func Segfault() { C.multiproc_segfault() }
