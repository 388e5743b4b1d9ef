package isolate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/multiproc-go/multiproc/internal/cgroup"
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

// Validate checks s for a child whose GOMAXPROCS will be procs (0: the
// machine's), and returns an error naming the first bad field.
func (s Spec) Validate(procs int) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("multiproc: Limits: "+format, a...)
	}
	switch {
	case s.Memory != 0 && s.Memory < MinMemory:
		return bad("Memory %d is below the %d bytes a Go worker needs to start", s.Memory, MinMemory)
	case s.Swap != 0 && s.Memory == 0:
		return bad("Swap %d needs Memory (swap is allowed on top of the memory cap)", s.Swap)
	case s.Memory > math.MaxInt64/2 || s.Swap > math.MaxInt64/2:
		return bad("Memory %d or Swap %d out of range", s.Memory, s.Swap)
	case s.CPUs < 0 || math.IsNaN(s.CPUs) || math.IsInf(s.CPUs, 0) || (s.CPUs > 0 && s.CPUs < 0.01):
		return bad("CPUs %v must be 0 (no quota) or at least 0.01", s.CPUs)
	case s.CPUTime < 0 || s.CPUTimeTotal < 0:
		return bad("CPUTime %v and CPUTimeTotal %v must not be negative", s.CPUTime, s.CPUTimeTotal)
	case s.CPUTimeTotal > 0 && s.CPUTimeTotal < time.Second:
		return bad("CPUTimeTotal %v is below one second, the kernel's unit for CPU limits", s.CPUTimeTotal)
	case s.CPUTimeTotal > 0 && s.CPUTime > 0 && s.CPUTimeTotal < s.CPUTime:
		return bad("CPUTimeTotal %v is below CPUTime %v: no task could use its allowance", s.CPUTimeTotal, s.CPUTime)
	case s.OpenFiles < 0 || (s.OpenFiles > 0 && s.OpenFiles < MinOpenFiles):
		return bad("OpenFiles %d is below %d, what a worker needs for its own descriptors", s.OpenFiles, MinOpenFiles)
	case s.Nice < -20 || s.Nice > 19:
		return bad("Nice %d must be between -20 and 19", s.Nice)
	case s.GoMemLimit < -1:
		return bad("GoMemLimit %d must be -1 (leave it), 0 (default) or positive", s.GoMemLimit)
	case s.GoMaxProcs < 0:
		return bad("GoMaxProcs %d must not be negative", s.GoMaxProcs)
	case s.Processes < 0:
		return bad("Processes %d must not be negative", s.Processes)
	}
	if s.GoMaxProcs > 0 {
		procs = s.GoMaxProcs
	}
	if procs <= 0 {
		procs = 1
	}
	if floor := MinProcesses + procs; s.Processes > 0 && s.Processes < floor {
		return bad("Processes %d is below %d: pids.max counts threads, and a Go worker with GOMAXPROCS=%d needs about %d+GOMAXPROCS to start", s.Processes, floor, procs, MinProcesses)
	}
	return nil
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
