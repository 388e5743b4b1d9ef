// Package bufcache keeps byte buffers for reuse across garbage collections.
//
// A sync.Pool is emptied by every other collection, and a large Map
// allocates enough (its result, its items) to run several: its chunk
// buffers would then be fresh memory for every map, and on this project's
// virtual machine the first touch of a fresh 4 KiB page costs ~13 µs
// (8 MB of chunks: 26 ms, more than the map's own work). A Cache keeps what
// it is given, up to a total size, so buffers stay resident and warm; it
// is a small LIFO under a mutex (buffers are taken and returned a few per
// chunk, not per item). What it does not do: shrink on its own. Its bound
// is what a program that once ran a large map keeps.
package bufcache

import "sync"

// Cache holds free buffers up to Max bytes in all, each at most MaxBuf
// bytes of capacity. The zero value keeps nothing; all methods are safe for
// concurrent use.
type Cache struct {
	Max    int // total capacity kept
	MaxBuf int // larger buffers are dropped

	mu    sync.Mutex
	free  [][]byte // most recently returned last: the warmest first out
	bytes int      // capacity of free
}

// Get returns an empty buffer, the most recently returned one if any (nil
// otherwise).
func (c *Cache) Get() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.free)
	if n == 0 {
		return nil
	}
	b := c.free[n-1]
	c.free[n-1] = nil
	c.free = c.free[:n-1]
	c.bytes -= cap(b)
	return b[:0]
}

// Put returns b for reuse; the caller must not use it afterwards. A buffer
// over MaxBuf, or one that does not fit within Max, is left to the garbage
// collector.
func (c *Cache) Put(b []byte) {
	if cap(b) == 0 || cap(b) > c.MaxBuf {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bytes+cap(b) > c.Max {
		return
	}
	c.free = append(c.free, b)
	c.bytes += cap(b)
}
