//go:build !unix

package isolate

import (
	"errors"
	"os"
)

// Capture is unsupported here.
type Capture struct{}

// NewCapture fails: descriptors cannot be redirected here.
func NewCapture(f *os.File, max int) (*Capture, error) { return nil, errors.ErrUnsupported }

// Begin does nothing.
func (c *Capture) Begin() {}

// End returns "".
func (c *Capture) End(failed bool) string { return "" }
