package testutil

import (
	"fmt"
	"os"
	"path"
	"slices"
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
