//go:build !linux

package futex

import (
	"os"
	"unsafe"
)

// alias is a word registered in the kernel's robust list: Linux only.
type alias struct{ addr unsafe.Pointer }

func register(f *os.File, off int64) *alias { return nil }

func (a *alias) unregister() {}

func robustSelf() uint64 { return 0 }

func tgid(tid int) int { return tid }

// Registered returns 0: there is no robust list off Linux.
func Registered() int { return 0 }
