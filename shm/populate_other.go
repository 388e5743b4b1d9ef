//go:build !linux

package shm

// populate does nothing where MADV_POPULATE_READ does not exist: pages
// are mapped by faults on first access.
func populate(mem []byte) {}
