package isolate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/multiproc-go/multiproc/internal/cgroup"
	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// Spec is the internal twin of multiproc.Limits (the root converts one
// into the other: the fields must stay identical). See that type for the
// contract of each field.
type Spec struct {
	Memory       uint64
	Swap         uint64
	CPUs         float64
	CPUTime      time.Duration
	CPUTimeTotal time.Duration
	OpenFiles    int
	Processes    int
	NoCoreDumps  bool
	Nice         int
	GoMemLimit   int64
	GoMaxProcs   int
	CgroupParent string
}

// Floors below which a Go worker cannot run.
const (
	// MinOpenFiles leaves room for the worker's own descriptors (standard
	// streams, control socket, shared page, crash report, epoll, and the
	// descriptors a task receives) with margin for the task.
	MinOpenFiles = 64
	// MinProcesses is the pids limit's floor before GOMAXPROCS is added:
	// pids.max counts threads, and the runtime needs about this many
	// besides one per P (measured: a worker at fewer than ~16+GOMAXPROCS
	// cannot start its threads).
	MinProcesses = 16
	// MinMemory is the smallest memory cap that lets a Go worker start.
	MinMemory = 16 << 20
)

// IsZero reports whether s sets nothing.
func (s Spec) IsZero() bool { return s == Spec{} }

// ErrInvalidLimits is matched (errors.Is) by every error about a limit
// that cannot be used: a field out of range or in conflict with another
// (from [Spec.Validate], at construction), or one this process cannot
// apply (a hard rlimit above the current one, which cannot be raised; a
// negative Nice without privilege). It is registered, so it still matches
// after crossing a process boundary. The root re-exports it.
var ErrInvalidLimits = errs.RegisterSentinel(errors.New("multiproc: invalid limits"))

// LimitError is an invalid or inapplicable limit: Field names the Limits
// field, Problem says what is wrong with its value. It matches
// [ErrInvalidLimits] and, when Err is set (an apply failure), what Err
// matches.
type LimitError struct {
	Field   string // "Memory", "CPUTime"...
	Problem string // "1048576 is below the 16777216 bytes a Go worker needs to start"
	Err     error  // the system's error, for a limit that could not be applied
}

// Error is "multiproc: Limits.Field: problem".
func (e *LimitError) Error() string {
	s := "multiproc: Limits." + e.Field + ": " + e.Problem
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes every LimitError match ErrInvalidLimits.
func (e *LimitError) Is(target error) bool { return target == ErrInvalidLimits }

// Unwrap returns the system's error, if any.
func (e *LimitError) Unwrap() error { return e.Err }

func invalid(field, format string, a ...any) error {
	return &LimitError{Field: field, Problem: fmt.Sprintf(format, a...)}
}

// Validate checks s for a child whose GOMAXPROCS will be procs (0: the
// machine's), and returns a [*LimitError] naming the first bad field. It
// also checks the rlimit fields against this process's hard limits, which
// a child inherits and cannot raise (on Linux and macOS).
func (s Spec) Validate(procs int) error {
	switch {
	case s.Memory != 0 && s.Memory < MinMemory:
		return invalid("Memory", "%d is below the %d bytes a Go worker needs to start", s.Memory, MinMemory)
	case s.Memory > math.MaxInt64/2:
		return invalid("Memory", "%d is out of range", s.Memory)
	case s.Swap != 0 && s.Memory == 0:
		return invalid("Swap", "%d needs Memory (swap is allowed on top of the memory cap)", s.Swap)
	case s.Swap > math.MaxInt64/2:
		return invalid("Swap", "%d is out of range", s.Swap)
	case s.CPUs < 0 || math.IsNaN(s.CPUs) || math.IsInf(s.CPUs, 0) || (s.CPUs > 0 && s.CPUs < 0.01):
		return invalid("CPUs", "%v must be 0 (no quota) or at least 0.01", s.CPUs)
	case s.CPUTime < 0:
		return invalid("CPUTime", "%v must not be negative", s.CPUTime)
	case s.CPUTimeTotal < 0:
		return invalid("CPUTimeTotal", "%v must not be negative", s.CPUTimeTotal)
	case s.CPUTimeTotal > 0 && s.CPUTimeTotal < time.Second:
		return invalid("CPUTimeTotal", "%v is below one second, the kernel's unit for CPU limits", s.CPUTimeTotal)
	case s.CPUTimeTotal > 0 && s.CPUTime > 0 && s.CPUTimeTotal < s.CPUTime:
		return invalid("CPUTimeTotal", "%v is below CPUTime %v: no task could use its allowance", s.CPUTimeTotal, s.CPUTime)
	case s.OpenFiles < 0:
		return invalid("OpenFiles", "%d is negative (0 means no limit)", s.OpenFiles)
	case s.OpenFiles > 0 && s.OpenFiles < MinOpenFiles:
		return invalid("OpenFiles", "%d is below %d, what a worker needs for its own descriptors", s.OpenFiles, MinOpenFiles)
	case s.Processes < 0:
		return invalid("Processes", "%d must not be negative", s.Processes)
	case s.Nice < -20 || s.Nice > 19:
		return invalid("Nice", "%d must be between -20 and 19", s.Nice)
	case s.GoMemLimit < -1:
		return invalid("GoMemLimit", "%d must be -1 (leave it), 0 (default) or positive", s.GoMemLimit)
	case s.GoMemLimit > 0 && s.Memory > 0 && uint64(s.GoMemLimit) > s.Memory:
		return invalid("GoMemLimit", "%d is above Memory %d: the kernel would kill the worker before the garbage collector worked harder", s.GoMemLimit, s.Memory)
	case s.GoMaxProcs < 0:
		return invalid("GoMaxProcs", "%d must not be negative", s.GoMaxProcs)
	}
	if s.GoMaxProcs > 0 {
		procs = s.GoMaxProcs
	}
	if procs <= 0 {
		procs = 1
	}
	if floor := MinProcesses + procs; s.Processes > 0 && s.Processes < floor {
		return invalid("Processes", "%d is below %d: pids.max counts threads, and a Go worker with GOMAXPROCS=%d needs about %d+GOMAXPROCS to start", s.Processes, floor, procs, MinProcesses)
	}
	return checkHardLimits(s)
}

// Cgroup is the part of s a cgroup enforces.
func (s Spec) Cgroup() cgroup.Settings {
	return cgroup.Settings{Memory: s.Memory, Swap: s.Swap, CPUs: s.CPUs, Pids: s.Processes}
}

// MemLimit is the GOMEMLIMIT the child sets: GoMemLimit if positive; by
// default (0) nine tenths of Memory, so that the garbage collector works
// harder before the kernel's cap kills; none (-1) otherwise.
func (s Spec) MemLimit() int64 {
	switch {
	case s.GoMemLimit > 0:
		return s.GoMemLimit
	case s.GoMemLimit == 0 && s.Memory > 0:
		return int64(s.Memory / 10 * 9)
	}
	return -1
}

// CPUSeconds is CPUTime rounded up to whole seconds (RLIMIT_CPU's unit).
func (s Spec) CPUSeconds() uint64 {
	return uint64((s.CPUTime + time.Second - 1) / time.Second)
}

// specVersion is the layout version of an encoded Spec.
const specVersion = 1

// Append appends the child's part of s (what Apply and the CPU guard use)
// to dst.
func (s Spec) Append(dst []byte) []byte {
	dst = append(dst, specVersion)
	dst = binary.AppendUvarint(dst, uint64(s.CPUTime))
	dst = binary.AppendUvarint(dst, uint64(s.CPUTimeTotal))
	dst = binary.AppendUvarint(dst, uint64(s.OpenFiles))
	core := byte(0)
	if s.NoCoreDumps {
		core = 1
	}
	dst = append(dst, core)
	dst = binary.AppendVarint(dst, int64(s.Nice))
	dst = binary.AppendVarint(dst, s.MemLimit())
	return binary.AppendUvarint(dst, uint64(s.GoMaxProcs))
}

// Decode reads what Append wrote, from d.
func Decode(d *wire.Buf) (Spec, error) {
	var s Spec
	if v := d.Byte(); d.Err() == nil && v != specVersion {
		return s, fmt.Errorf("%w: limits version %d, want %d", wire.ErrCorrupt, v, specVersion)
	}
	s.CPUTime = time.Duration(min(d.Uvarint(), math.MaxInt64))
	s.CPUTimeTotal = time.Duration(min(d.Uvarint(), math.MaxInt64))
	s.OpenFiles = int(min(d.Uvarint(), math.MaxInt32))
	s.NoCoreDumps = d.Byte() == 1
	s.Nice = int(max(min(d.Varint(), 19), -20))
	s.GoMemLimit = d.Varint()
	s.GoMaxProcs = int(min(d.Uvarint(), math.MaxInt32))
	if d.Err() != nil {
		return Spec{}, fmt.Errorf("limits: %w", d.Err())
	}
	if s.GoMemLimit < -1 {
		return Spec{}, errors.New("limits: bad memory limit")
	}
	return s, nil
}
