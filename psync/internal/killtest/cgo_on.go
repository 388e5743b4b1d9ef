//go:build cgo

package killtest

// Cgo reports whether this binary was built with cgo enabled (and so, as
// it imports net, links glibc's resolver: the case where glibc owns the
// main thread's robust futex list).
const Cgo = true
