package multiproc

import (
	"io"
	"os"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// progressConfig decides where progress bars are drawn, if anywhere.
type progressConfig struct{ w io.Writer }

func newProgressConfig(c poolConfig) progressConfig {
	switch {
	case c.Progress != nil:
		return progressConfig{w: c.Progress}
	case c.AutoProgress && term.IsTerminal(int(os.Stderr.Fd())):
		return progressConfig{w: os.Stderr}
	}
	return progressConfig{}
}

// bar is one call's progress bar; a nil *bar draws nothing.
type bar struct {
	p    *mpb.Progress
	b    *mpb.Bar
	once sync.Once
}

func (c progressConfig) start(name string, total int) *bar {
	if c.w == nil {
		return nil
	}
	p := mpb.New(mpb.WithOutput(c.w), mpb.WithWidth(40), mpb.WithAutoRefresh())
	b := p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name(name+" "), decor.CountersNoUnit("%d/%d")),
		mpb.AppendDecorators(decor.Percentage(), decor.Name(" "), decor.EwmaETA(decor.ET_STYLE_GO, 30)),
	)
	return &bar{p: p, b: b}
}

func (b *bar) add(n int) {
	if b != nil {
		b.b.IncrBy(n)
	}
}

// done completes the bar and waits for its renderer to stop.
func (b *bar) done() {
	if b != nil {
		b.once.Do(func() {
			b.b.SetTotal(-1, true)
			b.p.Wait()
		})
	}
}

// abort removes the bar after a failure and waits for its renderer.
func (b *bar) abort() {
	if b != nil {
		b.once.Do(func() {
			b.b.Abort(false)
			b.p.Wait()
		})
	}
}
