package multiproc

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// progressConfig decides where progress bars are drawn, if anywhere, and
// how: a terminal gets live bars (mpb redraws them in place with cursor
// movements); anything else (a log file, a pipe, a buffer) gets plain
// lines, because cursor codes written to a file are noise to whoever reads
// it.
type progressConfig struct {
	w    io.Writer
	live bool        // w is a terminal
	mu   *sync.Mutex // serialises the plain lines of concurrent calls on w
}

func newProgressConfig(c poolConfig) progressConfig {
	switch {
	case c.Progress != nil:
		return progressConfig{w: c.Progress, live: isTerminal(c.Progress), mu: new(sync.Mutex)}
	case c.AutoProgress && term.IsTerminal(int(os.Stderr.Fd())):
		return progressConfig{w: os.Stderr, live: true}
	}
	return progressConfig{}
}

// isTerminal reports whether w is a file (anything with a descriptor)
// open on a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// bar is one call's progress: a live bar or plain lines. A nil *bar draws
// nothing. Its methods are safe for concurrent use (chunks finish on the
// pool's reader goroutines).
type bar struct {
	once sync.Once // done or abort, whichever comes first
	p    *mpb.Progress
	b    *mpb.Bar
	line *lineBar
}

func (c progressConfig) start(name string, total int) *bar {
	if c.w == nil {
		return nil
	}
	if !c.live {
		return &bar{line: newLineBar(c.w, c.mu, name, total, time.Now)}
	}
	p := mpb.New(mpb.WithOutput(c.w), mpb.WithWidth(40), mpb.WithAutoRefresh())
	b := p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name(name+" "), decor.CountersNoUnit("%d/%d")),
		mpb.AppendDecorators(decor.Percentage(), decor.Name(" "), decor.EwmaETA(decor.ET_STYLE_GO, 30)),
	)
	return &bar{p: p, b: b}
}

func (b *bar) add(n int) {
	switch {
	case b == nil:
	case b.line != nil:
		b.line.add(n)
	default:
		b.b.IncrBy(n)
	}
}

// done completes the bar (and waits for a live bar's renderer to stop).
func (b *bar) done() {
	if b != nil {
		b.once.Do(func() {
			if b.line != nil {
				b.line.finish("")
				return
			}
			b.b.SetTotal(-1, true)
			b.p.Wait()
		})
	}
}

// abort ends the bar after a failure (and waits for a live bar's renderer).
func (b *bar) abort() {
	if b != nil {
		b.once.Do(func() {
			if b.line != nil {
				b.line.finish(" failed")
				return
			}
			b.b.Abort(false)
			b.p.Wait()
		})
	}
}

// lineBar reports progress as plain lines, "name done/total pct%": at most
// one line per tenth of the work and per second (a map of an hour writes
// ten lines, a map of a second only its last), plus one final line.
type lineBar struct {
	mu    *sync.Mutex // shared by the bars writing on w; guards the fields below
	w     io.Writer
	name  string
	total int
	now   func() time.Time // time.Now, or a test's clock

	n      int       // items done
	tenths int       // tenths of the work done at the last line
	last   time.Time // when the last line was written (or the bar started)
}

func newLineBar(w io.Writer, mu *sync.Mutex, name string, total int, now func() time.Time) *lineBar {
	return &lineBar{mu: mu, w: w, name: name, total: total, now: now, last: now()}
}

func (l *lineBar) add(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n += n
	if l.n >= l.total {
		return // the final line is finish's
	}
	tenths := l.n * 10 / l.total
	if tenths <= l.tenths {
		return
	}
	if now := l.now(); now.Sub(l.last) >= time.Second {
		l.tenths, l.last = tenths, now
		l.writeLocked("")
	}
}

// finish writes the final line, with suffix after the percentage.
func (l *lineBar) finish(suffix string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writeLocked(suffix)
}

func (l *lineBar) writeLocked(suffix string) {
	pct := 100
	if l.total > 0 {
		pct = l.n * 100 / l.total
	}
	// Progress is best effort: a failing writer must not fail the map.
	fmt.Fprintf(l.w, "%s %d/%d %d%%%s\n", l.name, l.n, l.total, pct, suffix)
}
