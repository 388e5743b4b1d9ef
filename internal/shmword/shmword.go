// Package shmword shares memory between a parent and one child: a page of
// 64-bit counters followed by a byte area. A pool worker publishes in the
// counters how many tasks it has started and completed, and keeps its
// not-yet-sent results in the byte area, with plain stores and no system
// call; when it dies, the parent still reads both, so it knows exactly
// which task was running and loses no finished result, even though results
// are sent in batches.
package shmword

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/multiproc-go/multiproc/internal/memfd"
)

// Count words come first, in one page; AreaSize bytes follow.
const (
	pageSize = 4096
	Count    = pageSize / 8
	AreaSize = 256 << 10
	Size     = pageSize + AreaSize
)

// Words is a mapped page of counters.
type Words struct {
	mem []byte
}

// New creates an anonymous shared page and returns it with a file that a
// child can map with Open. The caller closes the file once the child has
// it; the page lives as long as any mapping does.
func New() (*Words, *os.File, error) {
	f, err := memfd.New("multiproc-words", Size)
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
	mem, err := memfd.Map(f, 0, Size)
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

// Area returns the shared byte area. Writes by one side become visible to
// the other after a Store that the other side Loads (release/acquire).
func (w *Words) Area() []byte { return w.mem[pageSize:Size:Size] }

// Close unmaps the page.
func (w *Words) Close() error {
	if w.mem == nil {
		return nil
	}
	err := memfd.Unmap(w.mem)
	w.mem = nil
	return err
}
