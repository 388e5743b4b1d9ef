// Package shmword shares a few 64-bit counters between a parent and one
// child through a mapped page. A pool worker publishes in it how many tasks
// it has started and completed, with plain atomic stores and no system call,
// so that when it dies the parent knows exactly which task it was running,
// even though results are sent in batches.
package shmword

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"
)

// Size is the mapped size; it holds Count words.
const (
	Size  = 4096
	Count = Size / 8
)

// Words is a mapped page of counters.
type Words struct {
	mem []byte
}

// New creates an anonymous shared page and returns it with a file that a
// child can map with Open. The caller closes the file once the child has
// it; the page lives as long as any mapping does.
func New() (*Words, *os.File, error) {
	f, err := anonFile()
	if err != nil {
		return nil, nil, fmt.Errorf("multiproc: shared counters: %w", err)
	}
	w, err := Open(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return w, f, nil
}

// Open maps the page of f (which stays owned by the caller).
func Open(f *os.File) (*Words, error) {
	mem, err := mmap(f)
	if err != nil {
		return nil, fmt.Errorf("multiproc: mapping shared counters: %w", err)
	}
	return &Words{mem: mem}, nil
}

func (w *Words) word(i int) *uint64 {
	if i < 0 || i >= Count {
		panic("shmword: index out of range")
	}
	return (*uint64)(unsafe.Pointer(&w.mem[i*8]))
}

// Load reads word i.
func (w *Words) Load(i int) uint64 { return atomic.LoadUint64(w.word(i)) }

// Store writes word i.
func (w *Words) Store(i int, v uint64) { atomic.StoreUint64(w.word(i), v) }

// Close unmaps the page.
func (w *Words) Close() error {
	if w.mem == nil {
		return nil
	}
	err := munmap(w.mem)
	w.mem = nil
	return err
}
