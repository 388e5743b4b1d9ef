package bufcache

import "testing"

// TestCache: buffers come back most recent first, and the bounds hold.
func TestCache(t *testing.T) {
	c := &Cache{Max: 3 << 10, MaxBuf: 2 << 10}
	if b := c.Get(); b != nil {
		t.Fatalf("empty cache gave a buffer of cap %d", cap(b))
	}
	a, b := make([]byte, 5, 1<<10), make([]byte, 0, 2<<10)
	c.Put(a)
	c.Put(b)
	c.Put(make([]byte, 0, 1<<10)) // over Max: dropped
	c.Put(make([]byte, 0, 4<<10)) // over MaxBuf: dropped
	if got := c.Get(); cap(got) != cap(b) || len(got) != 0 {
		t.Fatalf("first Get: len %d cap %d, want the last buffer put, empty (cap %d)", len(got), cap(got), cap(b))
	}
	if got := c.Get(); cap(got) != cap(a) || len(got) != 0 {
		t.Fatalf("second Get: len %d cap %d, want the first buffer, empty (cap %d)", len(got), cap(got), cap(a))
	}
	if got := c.Get(); got != nil {
		t.Fatalf("third Get: cap %d, want nil: the bounds dropped the others", cap(got))
	}
}
