package boot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc/internal/wire"
)

func init() {
	// cgroup answers with its own /proc/self/cgroup.
	Handle("cgroup", func(s *Session) int {
		b, _ := os.ReadFile("/proc/self/cgroup")
		if _, err := s.Conn.Write(wire.AppendFrame(nil, kindEcho, b)); err != nil {
			return 1
		}
		return 0
	})
}

// v2Dir returns this process's cgroup v2 directory and its path in the
// hierarchy, or skips.
func v2Dir(t *testing.T) (dir, cgPath string) {
	self, _ := os.ReadFile("/proc/self/cgroup")
	for _, line := range strings.Split(string(self), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			cgPath = p
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f := strings.Fields(pre)
		if ok && strings.HasPrefix(post, "cgroup2 ") && len(f) >= 5 && f[3] == "/" {
			dir = f[4]
		}
	}
	if dir == "" || cgPath == "" {
		t.Skip("no cgroup v2 hierarchy mounted")
	}
	return filepath.Join(dir, cgPath), cgPath
}

// TestSpawnInCgroupV2 starts a child directly in a v2 cgroup
// (CLONE_INTO_CGROUP) on the real v2 mount: it needs no controller, so it
// runs even where v2 has none (as on this project's machine).
func TestSpawnInCgroupV2(t *testing.T) {
	parent, cgPath := v2Dir(t)
	name := fmt.Sprintf("multiproc-boot-test-%d", os.Getpid())
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a v2 cgroup here: %v", err)
	}
	defer os.Remove(dir)
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := Spawn(spawnCtx(t), Config{Role: "cgroup", CgroupDir: d})
	if err != nil {
		t.Fatal(err)
	}
	_, payload, err := c.Reader.Next()
	c.Conn.Close()
	c.Cmd.Wait()
	if err != nil {
		t.Fatal(err)
	}
	want := "0::" + filepath.Join(cgPath, name) + "\n"
	if !strings.Contains(string(payload), want) {
		t.Errorf("the child's /proc/self/cgroup is\n%s\nwant it to contain %q", payload, want)
	}
}

// TestSpawnStartedFails: a Started hook that fails kills and reaps the
// child, and Spawn returns its error.
func TestSpawnStartedFails(t *testing.T) {
	boom := errors.New("cannot join")
	var pid int
	_, err := Spawn(spawnCtx(t), Config{Role: "echo", Started: func(p int) error { pid = p; return boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("Spawn = %v, want the hook's error", err)
	}
	if pid == 0 {
		t.Fatal("the hook never ran")
	}
}
