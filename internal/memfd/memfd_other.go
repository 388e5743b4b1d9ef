//go:build unix && !linux

package memfd

import "os"

// newAnon creates a temporary file and unlinks it at once: without memfd,
// that is what keeps it from outliving its users.
func newAnon(name string, size int64) (*os.File, error) {
	f, err := os.CreateTemp("", name+"-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	if err := allocate(f, size); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func allocate(f *os.File, size int64) error {
	if err := preallocate(f, size); err != nil {
		return err
	}
	return f.Truncate(size)
}
