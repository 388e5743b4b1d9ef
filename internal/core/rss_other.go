//go:build !linux

package core

import "errors"

// residentBytes is unsupported off Linux: memory recycling is a no-op there.
func residentBytes(pid int) (uint64, error) { return 0, errors.ErrUnsupported }
