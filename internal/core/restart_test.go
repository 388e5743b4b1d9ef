package core

import (
	"testing"
	"time"
)

// TestRestartBackoff guards the restart intensity rule: deaths up to the
// limit within the window restart at once; beyond it restarts back off,
// doubling up to 5s; once the window has passed, restarts are immediate
// again.
func TestRestartBackoff(t *testing.T) {
	p := &Pool{cfg: Config{MaxRestarts: 3, RestartWindow: time.Hour}}
	for i := range 3 {
		p.noteFailureLocked()
		if p.backoff != 0 || time.Until(p.nextSpawn) > 0 {
			t.Fatalf("death %d within the limit: backoff %v", i+1, p.backoff)
		}
	}
	want := 50 * time.Millisecond
	for i := range 10 {
		p.noteFailureLocked()
		if p.backoff != want {
			t.Fatalf("death %d beyond the limit: backoff %v, want %v", i+4, p.backoff, want)
		}
		if time.Until(p.nextSpawn) <= 0 {
			t.Fatalf("death %d beyond the limit: next start not delayed", i+4)
		}
		want = min(2*want, 5*time.Second)
	}
	// Deaths older than the window no longer count.
	p.cfg.RestartWindow = time.Nanosecond
	for i := range p.deaths {
		p.deaths[i] = time.Now().Add(-time.Second)
	}
	p.noteFailureLocked()
	if p.backoff != 0 {
		t.Fatalf("after the window: backoff %v, want 0", p.backoff)
	}
}
