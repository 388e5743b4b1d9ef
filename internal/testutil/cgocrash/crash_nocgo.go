//go:build !cgo

package cgocrash

// Available reports whether this build has cgo.
const Available = false

// Segfault panics: this build has no cgo.
func Segfault() { panic("cgocrash: built without cgo") }
