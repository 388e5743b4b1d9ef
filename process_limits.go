package multiproc

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/multiproc-go/multiproc/internal/boot"
	"github.com/multiproc-go/multiproc/internal/cgroup"
	"github.com/multiproc-go/multiproc/internal/isolate"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// targetLimits, or-ed into a process payload's target kind, says that the
// isolation part follows the target's name (issue 14): an encoded
// isolate.Spec, and, as the start's last file, the crash report file the
// parent owns. Every Process start sends it, limited or not, so that every
// Process's death is explained as a pool worker's is.
const targetLimits = 0x80

var processGroupSeq atomic.Int64

// isoPayload returns the start payload with p.Limits in it, the cgroup
// the child must start in (nil without cgroup limits) and the crash
// report file to pass as the start's last file. The caller removes the
// group and closes the file once the child was reaped.
func (p *Process) isoPayload() ([]byte, *cgroup.Group, *os.File, error) {
	s := p.Limits.spec()
	if !s.IsZero() {
		procs := s.GoMaxProcs
		if procs == 0 {
			procs = runtime.NumCPU()
		}
		if err := s.Validate(procs); err != nil {
			return nil, nil, nil, err
		}
	}
	crash, err := isolate.NewFile("multiproc-crash")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("multiproc: crash report file: %w", err)
	}
	var g *cgroup.Group
	if cs := s.Cgroup(); cs != (cgroup.Settings{}) {
		r, err := cgroup.Find(cs, s.CgroupParent)
		if err != nil {
			crash.Close()
			return nil, nil, nil, fmt.Errorf("multiproc: process limits: %w", err)
		}
		if g, err = r.New(fmt.Sprintf("process-%d", processGroupSeq.Add(1))); err != nil {
			crash.Close()
			return nil, nil, nil, err
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
	return b, g, crash, nil
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

// reportMax bounds the crash report an ExitError carries (as a worker's).
const reportMax = 64 << 10

// deathError is the ExitError of p's child, which exited with code or was
// killed by sig without sending a result or an error: why it died, told
// as a pool worker's death is (isolate.Explain), from its cgroup's
// counters, its crash report and its exit status. A Process keeps no exit
// record, so an exit of the library's own with a non-zero code (none after
// the target started, but a corrupt start payload's) would read as
// os.Exit. cpu is the CPU time the kernel reported at the reap (a death
// at the hard RLIMIT_CPU is a SIGKILL, told from another by it). Call it
// after the child was reaped and before its group is removed.
func (p *Process) deathError(code int, sig syscall.Signal, cpu time.Duration) *ExitError {
	f := isolate.Facts{Code: code, Sig: sig, Runs: "target", Limits: p.Limits.spec(), Report: isolate.Head(p.crash, reportMax), CPUUsed: cpu}
	switch {
	case p.daemonEnd.Load():
		f.Stopped = "Finish, ending a daemonic process with its parent"
	case p.stopped.Load():
		f.Stopped = "Process.Terminate or Kill"
	}
	if g := p.cg; g != nil {
		f.Grouped, f.OOMKills, f.PidsHits = true, g.OOMKills(), g.PidsLimitHits()
	}
	cause, why := isolate.Explain(f)
	return &ExitError{Pid: p.pid, Code: code, Signal: sig, Cause: cause, Reason: why, Report: f.Report}
}

// takeCrashFile splits the crash report file, the start's last, off the
// files a child received.
func takeCrashFile(files []*os.File) ([]*os.File, *os.File) {
	if len(files) == 0 {
		return files, nil
	}
	return files[:len(files)-1], files[len(files)-1]
}

// applyProcessLimits is the child's side: it reads the limits after the
// target's name and applies them before the target runs, after pointing
// the runtime's crash reports at crash (nil: none). A CPUTime allowance
// covers the whole target: crossing it ends the child with SIGXCPU's
// default action, so the parent sees the signal.
func applyProcessLimits(d *wire.Buf, crash *os.File) error {
	if crash != nil {
		if err := isolate.SetCrashOutput(crash); err != nil {
			fmt.Fprintf(os.Stderr, "multiproc: process %d: crash reports: %v\n", os.Getpid(), err)
		}
		crash.Close() // the runtime holds its own duplicate
	}
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
