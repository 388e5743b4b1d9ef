//go:build !cgo

package killtest

// Cgo reports whether this binary was built with cgo enabled.
const Cgo = false
