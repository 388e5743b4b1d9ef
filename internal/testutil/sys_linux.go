//go:build linux

package testutil

import (
	"os"
	"slices"
)

// sysBaseline is what existed before the tests, as far as /proc shows.
type sysBaseline struct {
	exe   string           // this process's executable, to recognise re-executed copies
	procs map[procKey]bool // every process that existed
	fds   map[int]string   // our open descriptors and their targets
	shm   map[string]bool  // /dev/shm paths with "multiproc" in their name
	cg    map[string]bool  // multiproc cgroup directories, in every hierarchy
}

func sysSnapshot() (sysBaseline, error) {
	// The marker goes in before the process listing so that no descendant
	// can start unmarked between the two.
	if err := setMarker(); err != nil {
		return sysBaseline{}, err
	}
	exe, err := selfExe()
	if err != nil {
		return sysBaseline{}, err
	}
	procs, err := scanProcs()
	if err != nil {
		return sysBaseline{}, err
	}
	b := sysBaseline{exe: exe, procs: make(map[procKey]bool, len(procs))}
	for _, p := range procs {
		b.procs[p.key()] = true
	}
	if b.fds, err = OpenFDs(); err != nil {
		return sysBaseline{}, err
	}
	if b.shm, err = listShm(); err != nil {
		return sysBaseline{}, err
	}
	b.cg = listCgroups()
	return b, nil
}

// sysCollect adds to r the processes, descriptors and shm entries that are
// there now and were not in b.
func sysCollect(b sysBaseline, o *options, r *report) {
	procs, err := scanProcs()
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	self := os.Getpid()
	for _, p := range procs {
		if p.pid == self || b.procs[p.key()] {
			continue
		}
		// A direct child is reported whatever it runs and whatever its
		// state: running, it outlived the tests; a zombie, no one waited
		// for it.
		if p.ppid == self {
			r.Children = append(r.Children, describe(p))
			continue
		}
		// A zombie that is not our child is someone else's to reap and
		// cannot be judged (owner returns unknown); a running process that
		// descends from us was reparented after its parent exited, and is
		// the grandchild leak that the children check cannot see.
		if owner(p.pid, b.exe) == ours {
			r.Orphans = append(r.Orphans, describe(p))
		}
	}
	sortProcs(r.Children)
	sortProcs(r.Orphans)

	if !o.skipFDs {
		now, err := OpenFDs()
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
		} else {
			r.FDs = newFDs(b.fds, now, o)
		}
	}

	if now, err := listShm(); err != nil {
		r.Errors = append(r.Errors, err.Error())
	} else {
		r.Shm = newShm(b.shm, now, b.exe)
	}
	r.Cgroups = leakedCgroups(b.cg)
}

func sortProcs(ps []proc) {
	slices.SortFunc(ps, func(a, b proc) int { return a.PID - b.PID })
}
