package isolate

import (
	"io"
	"os"
)

// Head reads up to max bytes from the start of f (a crash report: its
// first lines say what happened).
func Head(f *os.File, max int) string {
	if f == nil {
		return ""
	}
	b := make([]byte, max)
	n, _ := f.ReadAt(b, 0)
	return string(b[:n])
}

// Tail reads the last max bytes of the first size bytes of f (captured
// output: its end is nearest the failure).
func Tail(f *os.File, size int64, max int) string {
	if f == nil || size <= 0 {
		return ""
	}
	off := max64(size-int64(max), 0)
	b := make([]byte, size-off)
	n, err := f.ReadAt(b, off)
	if err != nil && err != io.EOF {
		return ""
	}
	return string(b[:n])
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
