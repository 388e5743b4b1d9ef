package cgroup

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

func itoa(n int) string { return strconv.Itoa(n) }

// realRoot finds the machine's cgroups for s, or skips.
func realRoot(t *testing.T, s Settings) *Root {
	t.Helper()
	r, err := Find(s, os.Getenv("MULTIPROC_CGROUP_PARENT"))
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("no usable cgroups here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRealGroup makes a group on this machine's hierarchies (v1 here),
// moves a process into it, checks the limits and removes it with the
// process still inside.
func TestRealGroup(t *testing.T) {
	r := realRoot(t, Settings{Memory: 64 << 20, Pids: 32})
	t.Logf("hierarchies: %s", r.Versions())
	g, err := r.New("test-" + itoa(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		g.Remove()
		t.Fatal(err)
	}
	if err := g.Join(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		g.Remove()
		t.Fatal(err)
	}
	if pids := g.Pids(); !slices.Contains(pids, cmd.Process.Pid) {
		t.Errorf("Pids() = %v, want it to hold %d", pids, cmd.Process.Pid)
	}
	if d := g.ctl["memory"]; !r.v2["memory"] {
		if got := readTrim(t, filepath.Join(d, "memory.limit_in_bytes")); got != "67108864" {
			t.Errorf("memory.limit_in_bytes = %s, want 67108864", got)
		}
	}
	if got := readTrim(t, filepath.Join(g.ctl["pids"], "pids.max")); got != "32" {
		t.Errorf("pids.max = %s, want 32", got)
	}
	// Remove kills what is left, then removes the directories.
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for _, d := range g.dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still exists after Remove: %v", d, err)
		}
		if _, err := os.Stat(filepath.Dir(d)); !os.IsNotExist(err) {
			t.Errorf("%s still exists after the last group went: %v", filepath.Dir(d), err)
		}
	}
}

// TestRealSweep leaves a group behind as a SIGKILLed parent would (a
// directory named after a pid that does not run) and sweeps it.
func TestRealSweep(t *testing.T) {
	r := realRoot(t, Settings{Pids: 64})
	parent := r.dirs()[0]
	dead := filepath.Join(parent, "multiproc-999999999-7")
	if err := os.Mkdir(dead, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dead, "w1"), 0o755); err != nil {
		os.Remove(dead)
		t.Fatal(err)
	}
	if n := r.Sweep(); n < 1 {
		if _, err := os.Stat(dead); err == nil {
			t.Errorf("Sweep() = %d, want at least 1", n)
		} // else another test binary's start swept it first
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		os.Remove(filepath.Join(dead, "w1"))
		os.Remove(dead)
		t.Errorf("the dead parent's group survived the sweep: %v", err)
	}
}

// TestRealSweepEveryHierarchy: a SIGKILLed parent that used a memory cap,
// a CPU quota and a pids limit left a group in each of the three v1
// hierarchies (and one in v2); the next start, whatever it limits (here
// memory alone), removes them all.
func TestRealSweepEveryHierarchy(t *testing.T) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skip(err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skip(err)
	}
	v2Path, v1Paths := parseProcCgroup(string(self))
	v2m, v1ms := parseMountinfo(string(mi))
	var parents []string
	for _, m := range v1ms {
		for _, c := range []string{"memory", "cpu", "pids"} {
			if p, ok := v1Paths[c]; ok && m.has(c) && !slices.Contains(parents, m.dir(p)) {
				parents = append(parents, m.dir(p))
			}
		}
	}
	if v2m.Point != "" {
		parents = append(parents, v2m.dir(v2Path))
	}
	var dead []string
	for _, parent := range parents {
		d := filepath.Join(parent, "multiproc-999999998-5")
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Logf("cannot make %s here: %v", d, err)
			continue
		}
		dead = append(dead, d)
		if err := os.Mkdir(filepath.Join(d, "PoolWorker-1"), 0o755); err != nil {
			t.Logf("cannot make a leaf in %s: %v", d, err)
		}
	}
	t.Cleanup(func() {
		for _, d := range dead {
			os.Remove(filepath.Join(d, "PoolWorker-1"))
			os.Remove(d)
		}
	})
	if len(dead) < 2 {
		t.Skipf("fewer than two hierarchies to leave groups in (%v)", parents)
	}
	realRoot(t, Settings{Memory: 64 << 20})
	for _, d := range dead {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("the dead parent's group %s survived a start with a memory cap: %v", d, err)
		}
	}
}

func readTrim(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(slices.DeleteFunc(b, func(c byte) bool { return c == '\n' }))
}

// BenchmarkGroupNewRemove is the cgroup part of a limited worker's start
// and end: make a group with a memory cap and a pids limit, remove it.
func BenchmarkGroupNewRemove(b *testing.B) {
	r, err := Find(Settings{Memory: 512 << 20, Pids: 128}, os.Getenv("MULTIPROC_CGROUP_PARENT"))
	if err != nil {
		b.Skip(err)
	}
	for i := 0; b.Loop(); i++ {
		g, err := r.New("bench-" + itoa(i))
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Remove(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFind is what every limited start pays before its first group:
// reading /proc/self/cgroup and mountinfo, and sweeping every hierarchy.
func BenchmarkFind(b *testing.B) {
	for b.Loop() {
		if _, err := Find(Settings{Memory: 512 << 20, Pids: 128}, os.Getenv("MULTIPROC_CGROUP_PARENT")); err != nil {
			b.Skip(err)
		}
	}
}
