//go:build !linux

package isolate

import "os"

// NewFile makes an anonymous file that grows as it is written: an unlinked
// temporary file here.
func NewFile(name string) (*os.File, error) {
	f, err := os.CreateTemp("", name+"-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return f, nil
}
