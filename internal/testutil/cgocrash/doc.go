// Package cgocrash makes a segmentation fault inside C code, for the
// isolation tests that check a worker's cgo crash is reported as such
// (test files cannot use cgo themselves). Without cgo, [Available] is
// false and [Segfault] panics.
package cgocrash
