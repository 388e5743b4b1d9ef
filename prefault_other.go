//go:build !linux

package multiproc

// prefault does nothing here: populating pages in bulk is Linux's
// MADV_POPULATE_WRITE.
func prefault[T any]([]T) {}
