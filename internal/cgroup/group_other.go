//go:build !linux

package cgroup

import (
	"errors"
	"fmt"
	"os"
)

// Settings are the limits of one group; a zero field sets nothing. Only
// Linux has cgroups: elsewhere [Find] fails for any non-zero Settings.
type Settings struct {
	Memory uint64
	Swap   uint64
	CPUs   float64
	Pids   int
}

// ErrUnavailable is returned by [Find] when no hierarchy offers a
// controller the settings need.
var ErrUnavailable = errors.New("multiproc: no usable cgroup controller")

// Root is where groups are made; elsewhere than Linux only an empty one
// exists.
type Root struct{}

// Find fails unless s is zero: there are no cgroups here.
func Find(s Settings, v2Parent string) (*Root, error) {
	if s != (Settings{}) {
		return nil, fmt.Errorf("%w: cgroups exist on Linux only: %w", ErrUnavailable, errors.ErrUnsupported)
	}
	return &Root{}, nil
}

// Versions is "" here.
func (r *Root) Versions() string { return "" }

// Sweep does nothing here.
func (r *Root) Sweep() int { return 0 }

// TopName is the directory a process's groups would live under.
func TopName() string { return fmt.Sprintf("multiproc-%d-0", os.Getpid()) }

// Group is an empty group.
type Group struct{}

// New returns an empty group.
func (r *Root) New(name string) (*Group, error) { return &Group{}, nil }

// Dir returns nil, nil.
func (g *Group) Dir() (*os.File, error) { return nil, nil }

// Join does nothing.
func (g *Group) Join(pid int) error { return nil }

// OOMKills is 0.
func (g *Group) OOMKills() uint64 { return 0 }

// PidsLimitHits is 0.
func (g *Group) PidsLimitHits() uint64 { return 0 }

// Pids is nil.
func (g *Group) Pids() []int { return nil }

// Remove does nothing.
func (g *Group) Remove() error { return nil }
