//go:build !linux

package pages

// Min is the size from which Populate would make its system call.
const Min = 64 << 10

// Populate does nothing here: populating pages in bulk is Linux's
// MADV_POPULATE_WRITE.
func Populate[T any]([]T) {}
