package testutil

import (
	"fmt"
	"time"

	"go.uber.org/goleak"
)

// defaultDeadline is how long Run waits for leaks to go away. Worker
// processes exit asynchronously after Close and goroutines that drain pipes
// finish a moment after them; on a loaded 2-core machine running several test
// binaries at once that moment can reach seconds. A genuine leak only costs
// this much time once, on a failing run.
const defaultDeadline = 10 * time.Second

// An Option changes what [Run] checks.
type Option interface {
	apply(*options)
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	deadline   time.Duration
	goleak     []goleak.Option
	skipFDs    bool
	fdPrefixes []string
}

func newOptions(opts []Option) *options {
	o := &options{deadline: defaultDeadline}
	for _, opt := range opts {
		opt.apply(o)
	}
	return o
}

// IgnoreGoroutine makes the goroutine check ignore goroutines whose topmost
// function is topFunc, fully qualified as it appears in a stack trace
// ("example.com/pkg.(*Server).loop"). Use it for goroutines that a dependency
// starts once per process and never stops.
func IgnoreGoroutine(topFunc string) Option {
	if topFunc == "" {
		panic("testutil: IgnoreGoroutine with an empty function name")
	}
	return optionFunc(func(o *options) {
		o.goleak = append(o.goleak, goleak.IgnoreTopFunction(topFunc))
	})
}

// Deadline sets how long [Run] keeps polling for leaks to disappear before it
// reports them; the default is 10 s. It panics if d is not positive.
func Deadline(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("testutil: non-positive deadline %v", d))
	}
	return optionFunc(func(o *options) { o.deadline = d })
}

// SkipFDCheck turns off the file descriptor check, for packages whose
// dependencies keep descriptors open for the life of the process.
func SkipFDCheck() Option {
	return optionFunc(func(o *options) { o.skipFDs = true })
}

// IgnoreFD makes the file descriptor check ignore descriptors whose link
// target in /proc/self/fd starts with prefix, such as "socket:" or
// "anon_inode:[pidfd]". Prefer it to [SkipFDCheck]: the other kinds of
// descriptor stay checked.
func IgnoreFD(prefix string) Option {
	if prefix == "" {
		panic("testutil: IgnoreFD with an empty prefix would ignore every descriptor; use SkipFDCheck")
	}
	return optionFunc(func(o *options) { o.fdPrefixes = append(o.fdPrefixes, prefix) })
}
