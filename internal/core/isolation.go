package core

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/multiproc-go/multiproc/internal/boot"
	"github.com/multiproc-go/multiproc/internal/cgroup"
	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/isolate"
)

// Isolation, the parent's side (issue 14): each worker may get a cgroup
// (memory cap, CPU quota, pids), always gets a crash-report file the
// runtime writes through debug.SetCrashOutput, and optionally an output
// capture file and line-prefixing pipes. When it dies, explain reads its
// exit record in the shared page, its cgroup's OOM counter, its crash
// report and its exit status, and says why.

// The crash report file and the output capture file are passed as the
// worker's last files, after the shared page and the initializer's.

// Exit records: before exiting on its own, a worker stores
// exitRecorded|reason<<32|code in wordExit, so that its parent tells the
// library's exits (whose codes, 2 and 3, collide with user ones) from an
// os.Exit in user code, which leaves the word zero.
const (
	exitRecorded = 1 << 63
	exitLibrary  = 1 // the worker's own exit: EXIT asked, parent gone, protocol error...
	exitCPULimit = 2 // a task crossed its CPU allowance (SIGXCPU)
)

// reportMax bounds the crash report an ExitError carries.
const reportMax = 64 << 10

// poolIso is a pool's isolation state.
type poolIso struct {
	root *cgroup.Root // nil when the limits need no cgroup
}

func newPoolIso(cfg *Config) (*poolIso, error) {
	pi := &poolIso{}
	if s := cfg.Limits.Cgroup(); s != (cgroup.Settings{}) {
		r, err := cgroup.Find(s, cfg.Limits.CgroupParent)
		if err != nil {
			return nil, fmt.Errorf("multiproc: worker limits: %w", err)
		}
		pi.root = r
	}
	return pi, nil
}

// workerIso is one worker's isolation state, owned by its worker.
type workerIso struct {
	group   *cgroup.Group // nil without cgroup limits
	cgDir   *os.File      // the group's v2 directory, for the start only
	crash   *os.File
	capture *os.File
	outDone chan struct{} // closed when the output prefixers are done; nil without
	child   []*os.File    // the pipes' write ends, closed once the child has them
}

// newWorkerIso prepares what worker name needs before it starts.
func (p *Pool) newWorkerIso(name string) (*workerIso, error) {
	wi := &workerIso{}
	var err error
	if wi.crash, err = isolate.NewFile("multiproc-crash"); err != nil {
		return nil, fmt.Errorf("multiproc: crash report file: %w", err)
	}
	if p.cfg.CaptureOutput > 0 {
		if wi.capture, err = isolate.NewFile("multiproc-output"); err != nil {
			wi.release()
			return nil, fmt.Errorf("multiproc: output capture file: %w", err)
		}
	}
	if p.iso != nil && p.iso.root != nil {
		if wi.group, err = p.iso.root.New(name); err != nil {
			wi.release()
			return nil, err
		}
		if wi.cgDir, err = wi.group.Dir(); err != nil {
			wi.release()
			return nil, fmt.Errorf("multiproc: opening cgroup: %w", err)
		}
	}
	if p.cfg.PrefixOutput {
		wi.outDone = make(chan struct{})
		var left = 2
		done := make(chan struct{}, 2)
		go func() {
			for left > 0 {
				<-done
				left--
			}
			close(wi.outDone)
		}()
		for _, dst := range []*os.File{os.Stdout, os.Stderr} {
			r, w, err := os.Pipe()
			if err != nil {
				done <- struct{}{}
				continue
			}
			wi.child = append(wi.child, w)
			go prefixLines(r, dst, "["+name+"] ", done)
		}
		if len(wi.child) < 2 {
			wi.release()
			return nil, errors.New("multiproc: making output pipes failed")
		}
	}
	return wi, nil
}

// files are the extra files the worker gets after the shared page.
func (wi *workerIso) files() []*os.File {
	fs := []*os.File{wi.crash}
	if wi.capture != nil {
		fs = append(fs, wi.capture)
	}
	return fs
}

// configure fills the isolation part of a worker's boot.Config.
func (wi *workerIso) configure(c *boot.Config) {
	c.CgroupDir = wi.cgDir
	if wi.group != nil {
		c.Started = wi.group.Join
	}
	if len(wi.child) == 2 {
		c.Stdout, c.Stderr = wi.child[0], wi.child[1]
	}
}

// started drops what only the start needed.
func (wi *workerIso) started() {
	if wi.cgDir != nil {
		wi.cgDir.Close()
		wi.cgDir = nil
	}
	for _, f := range wi.child {
		f.Close() // the readers see EOF once the worker (and its children) closed theirs
	}
	wi.child = nil
}

// release frees everything, once the worker has been reaped: its cgroup
// (killing what is left in it), its files, and it waits a moment for the
// output prefixers to copy the worker's last lines.
func (wi *workerIso) release() {
	wi.started()
	if wi.group != nil {
		wi.group.Remove()
	}
	if wi.crash != nil {
		wi.crash.Close()
	}
	if wi.capture != nil {
		wi.capture.Close()
	}
	if wi.outDone != nil {
		// A grandchild may hold the pipes open: do not wait for it.
		select {
		case <-wi.outDone:
		case <-time.After(time.Second):
		}
	}
}

// prefixLines copies lines from r to dst, each starting with prefix, until
// r reaches EOF, then closes r. A line longer than the buffer is cut.
func prefixLines(r, dst *os.File, prefix string, done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	buf := make([]byte, 0, 256)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			buf = append(append(buf[:0], prefix...), line...)
			if buf[len(buf)-1] != '\n' && err != bufio.ErrBufferFull {
				buf = append(buf, '\n')
			} else if err == bufio.ErrBufferFull {
				buf = append(buf, '\n')
			}
			dst.Write(buf)
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// death is what the parent could tell about a worker's death.
type death struct {
	cause          errs.DeathCause
	why            string // for ExitError.Reason, empty if nothing to add
	report, output string
}

// explain works out why w died, from its exit status (code, sig), its
// exit record, its cgroup's counters, its crash report and its captured
// output (isolate.Explain, shared with Process). cpu is the CPU time the
// kernel reported at the reap (it covers the task that was running, which
// the published wordCPU does not). Call it after the worker was reaped and
// before its shared page is unmapped.
func (w *worker) explain(code int, sig syscall.Signal, killedByPool bool, cpu time.Duration) death {
	var d death
	rec := w.words.Load(wordExit)
	f := isolate.Facts{
		Code: code, Sig: sig, Runs: "task", Limits: w.p.cfg.Limits,
		CPUUsed: max(time.Duration(w.words.Load(wordCPU)), cpu),
	}
	if rec&exitRecorded != 0 {
		f.CPULimitExit = (rec>>32)&0x7fffffff == exitCPULimit
		f.LibraryExit = !f.CPULimitExit
	}
	if killedByPool {
		f.Stopped = "the pool"
	}
	if wi := w.iso; wi != nil {
		d.report = isolate.Head(wi.crash, reportMax)
		if wi.capture != nil {
			if st, err := wi.capture.Stat(); err == nil {
				d.output = isolate.Tail(wi.capture, st.Size(), w.p.cfg.CaptureOutput)
				f.Captured = st.Size()
			}
		}
		if wi.group != nil {
			f.Grouped, f.OOMKills, f.PidsHits = true, wi.group.OOMKills(), wi.group.PidsLimitHits()
		}
	}
	f.Report, f.Output = d.report, d.output
	d.cause, d.why = isolate.Explain(f)
	return d
}

// apply records d in an ExitError.
func (d death) apply(e *errs.ExitError) {
	e.Cause, e.Report, e.Output = d.cause, d.report, d.output
	if d.why != "" {
		if e.Reason != "" {
			e.Reason += ": " + d.why
		} else {
			e.Reason = d.why
		}
	}
}

// appendIsoPayload appends the isolation part of a worker's start payload,
// which comes first in it: the encoded limits and the output capture
// size. The isolation's files (workerIso.files) are the start's last.
func appendIsoPayload(dst []byte, cfg *Config) []byte {
	dst = cfg.Limits.Append(dst)
	return binary.AppendUvarint(dst, uint64(cfg.CaptureOutput))
}

// checkCPULocked retires w before its next task could reach its lifetime
// CPU limit (the hard RLIMIT_CPU, which kills with SIGKILL).
func (p *Pool) checkCPULocked(w *worker) {
	l := p.cfg.Limits
	if l.CPUTimeTotal <= 0 || w.retiring {
		return
	}
	used := time.Duration(w.words.Load(wordCPU))
	if used+time.Duration(l.CPUSeconds())*time.Second+time.Second >= l.CPUTimeTotal {
		p.retireLocked(w, "cpu")
	}
}
