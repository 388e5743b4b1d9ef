package multiproc_test

import "testing"

// TestStatsRSSWithoutMaxMemory guards that Stats reads each worker's
// resident size on every call, not only in pools that recycle by memory.
func TestStatsRSSWithoutMaxMemory(t *testing.T) {
	p := newPool(t, 2)
	ws := p.Stats().PerWorker
	if len(ws) != 2 {
		t.Fatalf("%d workers in Stats, want 2", len(ws))
	}
	for _, w := range ws {
		if w.RSS == 0 {
			t.Fatalf("worker %d: RSS 0 without MaxMemory, want its resident size", w.Pid)
		}
	}
}
