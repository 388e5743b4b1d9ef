package boot

import (
	"fmt"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// MaxLimit is the largest message size limit there can be: what the 4-byte
// length of a frame header carries.
const MaxLimit = 1<<32 - 1

// MessageLimit returns the message size limit a configured MaxMessageSize
// stands for: n itself, or [wire.DefaultMaxFrame] for 0. A negative n, or
// one over MaxLimit, is an error; callers validating their own settings
// (a Process, a pool) use it so that every component accepts the same
// values.
func MessageLimit(n int) (int, error) {
	switch {
	case n == 0:
		return wire.DefaultMaxFrame, nil
	case n < 0 || int64(n) > MaxLimit:
		return 0, fmt.Errorf("multiproc: MaxMessageSize %d out of range: want 0 (the default, %d bytes) or 1 to %d", n, wire.DefaultMaxFrame, int64(MaxLimit))
	}
	return n, nil
}
