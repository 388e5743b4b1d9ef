package core

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/internal/logs"
)

// TestRestartBackoff guards the restart intensity rule: deaths up to the
// limit within the window restart at once; beyond it restarts back off,
// doubling up to 5s; once the window has passed, restarts are immediate
// again. The start of the back-off is logged once, not once per failure,
// and Stats reports the current back-off.
func TestRestartBackoff(t *testing.T) {
	var buf bytes.Buffer
	p := &Pool{cfg: Config{MaxRestarts: 3, RestartWindow: time.Hour}, log: logs.New(slog.New(slog.NewTextHandler(&buf, nil)))}
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
		if got := p.Stats().Backoff; got != p.backoff {
			t.Fatalf("death %d beyond the limit: Stats().Backoff = %v, want %v", i+4, got, p.backoff)
		}
		want = min(2*want, 5*time.Second)
	}
	if n := strings.Count(buf.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d warnings logged for one crash loop, want 1:\n%s", n, buf.String())
	}
	// Deaths older than the window no longer count.
	p.cfg.RestartWindow = time.Nanosecond
	for i := range p.deaths {
		p.deaths[i] = time.Now().Add(-time.Second)
	}
	if got := p.Stats().Backoff; got != 0 {
		t.Fatalf("after the window: Stats().Backoff = %v, want 0", got)
	}
	p.noteFailureLocked()
	if p.backoff != 0 {
		t.Fatalf("after the window: backoff %v, want 0", p.backoff)
	}
}
