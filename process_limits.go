package multiproc

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"

	"github.com/multiproc-go/multiproc/internal/boot"
	"github.com/multiproc-go/multiproc/internal/cgroup"
	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/isolate"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// targetLimits, or-ed into a process payload's target kind, says that an
// encoded isolate.Spec follows the target's name (issue 14).
const targetLimits = 0x80

var processGroupSeq atomic.Int64

// limitsPayload returns the start payload with p.Limits in it, and the
// cgroup the child must start in (nil without cgroup limits). The caller
// removes the group once the child was reaped.
func (p *Process) limitsPayload() ([]byte, *cgroup.Group, error) {
	s := p.Limits.spec()
	if s.IsZero() {
		return p.payload, nil, nil
	}
	procs := s.GoMaxProcs
	if procs == 0 {
		procs = runtime.NumCPU()
	}
	if err := s.Validate(procs); err != nil {
		return nil, nil, err
	}
	var g *cgroup.Group
	if cs := s.Cgroup(); cs != (cgroup.Settings{}) {
		r, err := cgroup.Find(cs, s.CgroupParent)
		if err != nil {
			return nil, nil, fmt.Errorf("multiproc: process limits: %w", err)
		}
		if g, err = r.New(fmt.Sprintf("process-%d", processGroupSeq.Add(1))); err != nil {
			return nil, nil, err
		}
	}
	// The payload is the target's kind and name, then the argument (and
	// its resource trailer): the limits go between the two.
	d := wire.NewBuf(p.payload)
	d.Byte()
	_ = d.Bytes() // the name
	headLen := len(p.payload) - len(d.Rest())
	b := make([]byte, 0, len(p.payload)+32)
	b = append(b, p.payload[0]|targetLimits)
	b = append(b, p.payload[1:headLen]...)
	b = s.Append(b)
	b = append(b, p.payload[headLen:]...)
	return b, g, nil
}

// spawnIn starts the child of p in cgroup g (nil for none).
func spawnIn(ctx context.Context, cfg boot.Config, g *cgroup.Group) (*boot.Child, error) {
	if g == nil {
		return boot.Spawn(ctx, cfg)
	}
	dir, err := g.Dir()
	if err != nil {
		return nil, fmt.Errorf("multiproc: opening cgroup: %w", err)
	}
	cfg.CgroupDir, cfg.Started = dir, g.Join
	c, err := boot.Spawn(ctx, cfg)
	if dir != nil {
		dir.Close()
	}
	return c, err
}

// processCause is why a Process's child died, as far as its cgroup and
// exit status tell: an OOM kill counted by its cgroup, a CPU limit
// (SIGXCPU), or a signal.
func processCause(g *cgroup.Group, sig syscall.Signal) errs.DeathCause {
	switch {
	case g != nil && g.OOMKills() > 0:
		return errs.CauseOutOfMemory
	case sig == syscall.SIGXCPU:
		return errs.CauseCPULimit
	case sig != 0:
		return errs.CauseKilled
	}
	return errs.CauseUnknown
}

// applyProcessLimits is the child's side: it reads the limits after the
// target's name and applies them before the target runs. A CPUTime
// allowance covers the whole target: crossing it ends the child with
// SIGXCPU's default action, so the parent sees the signal.
func applyProcessLimits(d *wire.Buf) error {
	s, err := isolate.Decode(d)
	if err != nil {
		return err
	}
	if err := isolate.Apply(s); err != nil {
		return err
	}
	g, err := isolate.NewCPUGuard(s, func() {
		fmt.Fprintf(os.Stderr, "multiproc: process %d exceeded its CPU time limit (%v)\n", os.Getpid(), s.CPUTime)
		isolate.DieOf(syscall.SIGXCPU)
	})
	if err != nil {
		return err
	}
	if g != nil {
		g.Begin()
	}
	return nil
}
