package cgroup

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fakeFS is a cgroupfs imitation on plain directories: Mkdir fills a new
// directory with a v2 cgroup's interface files (testdata/v2-leaf), Rmdir
// refuses a group that lists processes (EBUSY, like the kernel) and removes
// the files otherwise, and a write to cgroup.kill empties cgroup.procs.
type fakeFS struct{ t *testing.T }

func (fakeFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (f fakeFS) WriteFile(name, data string) error {
	if _, err := os.Stat(name); err != nil {
		return err // cgroup files are never created by a write
	}
	if filepath.Base(name) == "cgroup.kill" {
		return os.WriteFile(filepath.Join(filepath.Dir(name), "cgroup.procs"), nil, 0o644)
	}
	if filepath.Base(name) == "cgroup.subtree_control" {
		old, _ := os.ReadFile(name)
		set := strings.Fields(string(old))
		for _, w := range strings.Fields(data) {
			set = append(set, strings.TrimPrefix(w, "+"))
		}
		data = strings.Join(set, " ")
	}
	return os.WriteFile(name, []byte(data), 0o644)
}
func (f fakeFS) Mkdir(name string) error {
	if err := os.Mkdir(name, 0o755); err != nil {
		return err
	}
	return os.CopyFS(name, os.DirFS("testdata/v2-leaf"))
}
func (fakeFS) Rmdir(name string) error {
	if b, _ := os.ReadFile(filepath.Join(name, "cgroup.procs")); len(strings.TrimSpace(string(b))) > 0 {
		return &fs.PathError{Op: "rmdir", Path: name, Err: syscall.EBUSY}
	}
	if _, err := os.Stat(name); err != nil {
		return err
	}
	subs, _ := osFS{}.ReadDir(name)
	if len(subs) > 0 {
		return &fs.PathError{Op: "rmdir", Path: name, Err: syscall.EBUSY}
	}
	return os.RemoveAll(name)
}
func (fakeFS) ReadDir(name string) ([]string, error) { return osFS{}.ReadDir(name) }

// fakeTree copies testdata/v2 into a temporary directory and returns it.
func fakeTree(t *testing.T) string {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/v2")); err != nil {
		t.Fatal(err)
	}
	// CopyFS makes files read-only; the fake kernel writes them.
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			os.Chmod(p, 0o644)
		}
		return nil
	})
	return dir
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestV2FakeDelegated makes a group under a delegated v2 parent and checks
// every file the kernel would be given.
func TestV2FakeDelegated(t *testing.T) {
	root := fakeTree(t)
	r, err := find(fakeFS{t}, root, Settings{Memory: 64 << 20, Swap: 1 << 20, CPUs: 0.5, Pids: 40}, "/sys/fs/cgroup/delegated")
	if err != nil {
		t.Fatal(err)
	}
	if v := r.Versions(); v != "v2" {
		t.Errorf("Versions() = %q, want v2", v)
	}
	parent := filepath.Join(root, "sys/fs/cgroup/delegated")
	if got := read(t, parent+"/cgroup.subtree_control"); got != "memory cpu pids" {
		t.Errorf("parent subtree_control = %q, want memory cpu pids", got)
	}
	g, err := r.New("w1")
	if err != nil {
		t.Fatal(err)
	}
	leaf := filepath.Join(parent, TopName(), "w1")
	for file, want := range map[string]string{
		"memory.max":       "67108864",
		"memory.swap.max":  "1048576",
		"memory.oom.group": "1",
		"cpu.max":          "50000 100000",
		"pids.max":         "40",
	} {
		if got := read(t, filepath.Join(leaf, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if got := read(t, filepath.Join(parent, TopName(), "cgroup.subtree_control")); got != "cpu memory pids memory cpu pids" && !strings.Contains(got, "memory") {
		t.Errorf("top subtree_control = %q, want the controllers enabled", got)
	}
	d, err := g.Dir()
	if err != nil || d == nil {
		t.Fatalf("Dir() = %v, %v; want the v2 directory", d, err)
	}
	d.Close()
	if n := g.OOMKills(); n != 0 {
		t.Errorf("OOMKills() = %d before any kill, want 0", n)
	}
	os.WriteFile(filepath.Join(leaf, "memory.events"), []byte("low 0\nhigh 3\nmax 9\noom 2\noom_kill 1\noom_group_kill 1\n"), 0o644)
	if n := g.OOMKills(); n != 1 {
		t.Errorf("OOMKills() = %d after memory.events says oom_kill 1, want 1", n)
	}
	if n := g.PidsLimitHits(); n != 0 {
		t.Errorf("PidsLimitHits() = %d before any refusal, want 0", n)
	}
	os.WriteFile(filepath.Join(leaf, "pids.events"), []byte("max 3\n"), 0o644)
	if n := g.PidsLimitHits(); n != 3 {
		t.Errorf("PidsLimitHits() = %d after pids.events says max 3, want 3", n)
	}
	// A process left in the group: Remove writes cgroup.kill, then removes.
	os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte("999999999\n"), 0o644)
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(parent, TopName())); !os.IsNotExist(err) {
		t.Errorf("the process's directory survived its last group: %v", err)
	}
}

// TestV2FakeBusyParent: the process's own v2 cgroup holds processes and
// has no controllers enabled for children; a real kernel refuses, and so
// must the fake's user, with a message naming what to do.
func TestV2FakeBusyParent(t *testing.T) {
	root := fakeTree(t)
	// Make the fake behave like the kernel: subtree_control of a cgroup
	// with processes cannot be written.
	app := filepath.Join(root, "sys/fs/cgroup/user.slice/app")
	os.Chmod(filepath.Join(app, "cgroup.subtree_control"), 0o444)
	t.Cleanup(func() { os.Chmod(filepath.Join(app, "cgroup.subtree_control"), 0o644) })
	if os.Getuid() == 0 {
		// root ignores file modes: emulate with a file that is not there.
		os.Remove(filepath.Join(app, "cgroup.subtree_control"))
	}
	_, err := find(fakeFS{t}, root, Settings{Memory: 1 << 30}, "")
	if err == nil {
		t.Fatal("find in a cgroup with processes succeeded")
	}
	if !strings.Contains(err.Error(), "CgroupParent") || !strings.Contains(err.Error(), "/user.slice/app") {
		t.Errorf("error %q should name the cgroup and Limits.CgroupParent", err)
	}
}

// TestV2FakeMissingController names the controller that is missing.
func TestV2FakeMissingController(t *testing.T) {
	root := fakeTree(t)
	os.WriteFile(filepath.Join(root, "sys/fs/cgroup/delegated/cgroup.controllers"), []byte("cpu\n"), 0o644)
	_, err := find(fakeFS{t}, root, Settings{Pids: 50}, "/sys/fs/cgroup/delegated")
	if err == nil || !strings.Contains(err.Error(), "controller pids") {
		t.Fatalf("find without pids = %v, want an error naming controller pids", err)
	}
}

// TestV2FakeSweep: a dead parent's directory is removed, a live one's kept.
func TestV2FakeSweep(t *testing.T) {
	root := fakeTree(t)
	parent := filepath.Join(root, "sys/fs/cgroup/delegated")
	ff := fakeFS{t}
	dead := filepath.Join(parent, "multiproc-999999999-12")
	ff.Mkdir(dead)
	ff.Mkdir(filepath.Join(dead, "w3"))
	os.WriteFile(filepath.Join(dead, "w3", "cgroup.procs"), []byte("999999998\n"), 0o644)
	start, _, _ := procStart(os.Getppid())
	live := filepath.Join(parent, "multiproc-"+itoa(os.Getppid())+"-"+itoa(int(start)))
	ff.Mkdir(live)
	if n := sweep(ff, parent); n != 1 {
		t.Errorf("sweep removed %d directories, want 1", n)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("dead parent's directory still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("live parent's directory removed: %v", err)
	}
}

// TestV2FakeSweepOwnCgroup: groups left in the process's own v2 cgroup (by
// a parent that ran without CgroupParent) are swept by a start that makes
// its groups under a delegated parent.
func TestV2FakeSweepOwnCgroup(t *testing.T) {
	root := fakeTree(t)
	ff := fakeFS{t}
	own := filepath.Join(root, "sys/fs/cgroup/user.slice/app", "multiproc-999999999-3")
	ff.Mkdir(own)
	ff.Mkdir(filepath.Join(own, "PoolWorker-2"))
	if _, err := find(ff, root, Settings{Pids: 40}, "/sys/fs/cgroup/delegated"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(own); !os.IsNotExist(err) {
		t.Errorf("the dead parent's group in the process's own v2 cgroup survived: %v", err)
	}
}
