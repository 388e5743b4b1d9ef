package testutil

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
)

// TestOwnCgroups: a cgroup directory named after this process is found,
// and gone once removed.
func TestOwnCgroups(t *testing.T) {
	dirs := ownDirs(mustRead(t, "/proc/self/cgroup"), mustRead(t, "/proc/self/mountinfo"))
	var parent string
	for _, d := range dirs {
		if st, err := os.Stat(path.Join(d, "cgroup.procs")); err == nil && !st.IsDir() {
			parent = d
			break
		}
	}
	if parent == "" {
		t.Skip("no cgroup hierarchy mounted")
	}
	leak := path.Join(parent, fmt.Sprintf("multiproc-%d-1", os.Getpid()))
	if err := os.Mkdir(leak, 0o755); err != nil {
		t.Skipf("cannot make a cgroup here: %v", err)
	}
	found := ownCgroups()
	os.Remove(leak)
	if !slices.Contains(found, leak) {
		t.Errorf("ownCgroups() = %v, want it to report %s", found, leak)
	}
	if again := ownCgroups(); slices.Contains(again, leak) {
		t.Errorf("ownCgroups() = %v after removal", again)
	}
}

func mustRead(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCheckReportsDeadMakersCgroups: a group left by a process that no
// longer runs (a SIGKILLed helper whose groups no start swept) is a leak
// in every hierarchy, v1 memory, cpu and pids and v2 alike; one that was
// there before the baseline is not this run's.
func TestCheckReportsDeadMakersCgroups(t *testing.T) {
	var parents []string
	for _, d := range cgroupParents() {
		if st, err := os.Stat(path.Join(d, "cgroup.procs")); err == nil && !st.IsDir() {
			parents = append(parents, d)
		}
	}
	if len(parents) == 0 {
		t.Skip("no cgroup hierarchy mounted")
	}
	old := path.Join(parents[0], "multiproc-999999997-1")
	if err := os.Mkdir(old, 0o755); err != nil {
		t.Skipf("cannot make a cgroup here: %v", err)
	}
	defer os.Remove(old)
	b, err := snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var dead []string
	for _, p := range parents {
		d := path.Join(p, "multiproc-999999996-2")
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Logf("cannot make %s: %v", d, err)
			continue
		}
		dead = append(dead, d)
	}
	defer func() {
		for _, d := range dead {
			os.Remove(d)
		}
	}()
	r := collect(b, newOptions(nil))
	for _, d := range dead {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			// Another test binary's limited start swept it meanwhile (CI
			// runs packages in parallel): nothing to report any more.
			continue
		}
		if !slices.ContainsFunc(r.Cgroups, func(s string) bool { return strings.HasPrefix(s, d+" ") }) {
			t.Errorf("the dead maker's group %s is not reported; report: %v", d, r.Cgroups)
		}
	}
	if slices.ContainsFunc(r.Cgroups, func(s string) bool { return strings.HasPrefix(s, old) }) {
		t.Errorf("a group from before the baseline is reported: %v", r.Cgroups)
	}
	if len(r.Cgroups) > 0 && !strings.Contains(r.String(), "no longer runs") {
		t.Errorf("report should say the maker is gone:\n%s", r)
	}
	t.Logf("hierarchies checked: %v", parents)
}
