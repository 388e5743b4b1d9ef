package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Settings are the limits of one group; a zero field sets nothing.
type Settings struct {
	// Memory is the hard cap on the group's memory in bytes (v1
	// memory.limit_in_bytes, v2 memory.max): past it the kernel reclaims,
	// then its OOM killer kills a process of the group.
	Memory uint64
	// Swap is the swap the group may use on top of Memory (v1
	// memory.memsw.limit_in_bytes = Memory+Swap, v2 memory.swap.max =
	// Swap); 0 means none, where the kernel accounts swap at all. It
	// needs Memory.
	Swap uint64
	// CPUs is a CPU bandwidth quota in CPUs (1.5: one and a half CPUs'
	// time per period; v1 cpu.cfs_quota_us, v2 cpu.max).
	CPUs float64
	// Pids caps the group's tasks, threads included (pids.max).
	Pids int
}

// controllers lists what s needs, in a fixed order.
func (s Settings) controllers() []string {
	var cs []string
	if s.Memory > 0 {
		cs = append(cs, "memory")
	}
	if s.CPUs > 0 {
		cs = append(cs, "cpu")
	}
	if s.Pids > 0 {
		cs = append(cs, "pids")
	}
	return cs
}

// ErrUnavailable is returned by [Find] when no hierarchy offers a
// controller the settings need; the error wrapping it says which and why.
var ErrUnavailable = errors.New("multiproc: no usable cgroup controller")

// fsys is the file system the package works on: the real one, or a fake
// cgroupfs in tests (plain directories do not grow interface files, and
// cannot be removed while they hold them).
type fsys interface {
	ReadFile(name string) ([]byte, error)
	WriteFile(name, data string) error // an existing file; never creates
	Mkdir(name string) error
	Rmdir(name string) error
	ReadDir(name string) ([]string, error)
}

type osFS struct{}

func (osFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (osFS) Mkdir(name string) error              { return os.Mkdir(name, 0o755) }
func (osFS) Rmdir(name string) error              { return syscall.Rmdir(name) }
func (osFS) WriteFile(name, data string) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
func (osFS) ReadDir(name string) ([]string, error) {
	es, err := os.ReadDir(name)
	var names []string
	for _, e := range es {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, err
}

// Root is where one configuration of groups is made: for each controller
// the parent directory, in its v1 hierarchy or in the v2 one.
type Root struct {
	fs       fsys
	s        Settings
	parents  map[string]string // controller -> parent directory
	v2       map[string]bool   // controllers served by v2
	v2Parent string            // "" if no controller is on v2
	v1Dirs   []string          // distinct v1 parent directories
	// sweepDirs are the directories [Root.Sweep] looks in: every
	// hierarchy's, not only those this configuration uses.
	sweepDirs []string
}

// Find locates, for every controller s needs, where this process may make
// groups: in the v1 hierarchy carrying it, the process's own cgroup there;
// otherwise in v2, v2Parent if not empty (a delegated cgroup with no
// processes of its own), else the process's own v2 cgroup, which works only
// if it can enable the controller for its children. It fails with an
// error wrapping [ErrUnavailable] that names the controller and says what
// v2 needs. It removes the groups of dead processes under the parent
// directories it found ([Root.Sweep]).
func Find(s Settings, v2Parent string) (*Root, error) {
	return find(osFS{}, "", s, v2Parent)
}

// find is Find on fs, with every absolute path below prefix (a fake tree
// in tests).
func find(fs fsys, prefix string, s Settings, v2Parent string) (*Root, error) {
	r := &Root{fs: fs, s: s, parents: map[string]string{}, v2: map[string]bool{}}
	need := s.controllers()
	if len(need) == 0 {
		return r, nil
	}
	self, err := fs.ReadFile(prefix + "/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	mi, err := fs.ReadFile(prefix + "/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	v2Path, v1Paths := parseProcCgroup(string(self))
	v2m, v1ms := parseMountinfo(string(mi))
	var missing []string
	for _, c := range need {
		for _, m := range v1ms {
			if p, ok := v1Paths[c]; ok && m.has(c) {
				r.parents[c] = prefix + m.dir(p)
				break
			}
		}
		if _, ok := r.parents[c]; ok {
			continue
		}
		if v2m.Point == "" {
			missing = append(missing, c)
			continue
		}
		if r.v2Parent == "" {
			r.v2Parent = v2Parent
			if r.v2Parent == "" {
				r.v2Parent = prefix + v2m.dir(v2Path)
			} else {
				r.v2Parent = prefix + r.v2Parent
			}
		}
		b, _ := fs.ReadFile(r.v2Parent + "/cgroup.controllers")
		if !hasWord(string(b), c) {
			missing = append(missing, c)
			continue
		}
		r.parents[c], r.v2[c] = r.v2Parent, true
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: controller %s: not mounted in a v1 hierarchy, and not available in the v2 cgroup %q (cgroup.controllers of a v2 parent must list it: run in a delegated subtree, e.g. systemd's Delegate=yes, and name its directory in Limits.CgroupParent)",
			ErrUnavailable, strings.Join(missing, ", "), strings.TrimPrefix(r.v2Parent, prefix))
	}
	if r.v2Parent != "" {
		// v2 forbids controllers in a cgroup with processes: the parent
		// must hand them to its children before our directory can.
		if err := enable(fs, r.v2Parent, r.v2Controllers()); err != nil {
			return nil, fmt.Errorf("%w: v2 cgroup %q cannot delegate %s to child groups (%w); a v2 parent must hold no processes itself: name a delegated, empty cgroup in Limits.CgroupParent",
				ErrUnavailable, strings.TrimPrefix(r.v2Parent, prefix), strings.Join(r.v2Controllers(), ", "), err)
		}
	}
	seen := map[string]bool{}
	for _, c := range need {
		d := r.parents[c]
		if !r.v2[c] && !seen[d] {
			seen[d] = true
			r.v1Dirs = append(r.v1Dirs, d)
		}
	}
	r.sweepDirs = sweepDirs(prefix, v2m, v1ms, v2Path, v1Paths, r.v2Parent, v2Parent)
	// A limited start is the "next start" after a SIGKILLed parent: one
	// directory listing per hierarchy, negligible beside starting workers.
	r.Sweep()
	return r, nil
}

// sweepDirs lists where groups of this process, or of one that ran where
// it runs, may have been made: its own cgroup in every v1 hierarchy that
// carries a controller groups use (memory, cpu, pids), in v2, and the v2
// parent, whichever of them this start needs. A SIGKILLed parent that
// used a CPU quota left a group in the cpu hierarchy that a start with a
// memory cap alone would not otherwise look at.
func sweepDirs(prefix string, v2m Mount, v1ms []Mount, v2Path string, v1Paths map[string]string, used, v2Parent string) []string {
	var ds []string
	seen := map[string]bool{}
	add := func(d string) {
		if d != "" && !seen[d] {
			seen[d] = true
			ds = append(ds, d)
		}
	}
	for _, m := range v1ms {
		for _, c := range []string{"memory", "cpu", "pids"} {
			if p, ok := v1Paths[c]; ok && m.has(c) {
				add(prefix + m.dir(p))
			}
		}
	}
	if v2m.Point != "" {
		add(prefix + v2m.dir(v2Path))
		if v2Parent != "" {
			add(prefix + v2Parent)
		}
	}
	add(used)
	return ds
}

func (r *Root) v2Controllers() []string {
	var cs []string
	for _, c := range r.s.controllers() {
		if r.v2[c] {
			cs = append(cs, c)
		}
	}
	return cs
}

// dirs lists the distinct parent directories.
func (r *Root) dirs() []string {
	ds := append([]string(nil), r.v1Dirs...)
	if r.v2Parent != "" && len(r.v2Controllers()) > 0 {
		ds = append(ds, r.v2Parent)
	}
	return ds
}

// Versions says which hierarchies r uses: "v1", "v2" or "v1+v2"; "" when
// it needs no controller.
func (r *Root) Versions() string {
	var vs []string
	if len(r.v1Dirs) > 0 {
		vs = append(vs, "v1")
	}
	if len(r.v2Controllers()) > 0 {
		vs = append(vs, "v2")
	}
	return strings.Join(vs, "+")
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// enable makes sure controllers cs are enabled in dir's subtree_control.
func enable(fs fsys, dir string, cs []string) error {
	b, err := fs.ReadFile(dir + "/cgroup.subtree_control")
	if err != nil {
		return err
	}
	var add []string
	for _, c := range cs {
		if !hasWord(string(b), c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	return fs.WriteFile(dir+"/cgroup.subtree_control", strings.Join(add, " "))
}

// TopName is the directory under which this process makes its groups:
// "multiproc-PID-START".
func TopName() string { return topName }

var topName = func() string {
	start, _, _ := procStart(os.Getpid())
	return fmt.Sprintf("multiproc-%d-%d", os.Getpid(), start)
}()

// tops counts, per directory "parent/multiproc-PID-START", the groups of
// this process in it, so that the last one removed removes it too.
var tops = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

// Group is one worker's cgroup: a directory per v1 hierarchy and one in v2.
// Its methods are safe for concurrent use.
type Group struct {
	r    *Root
	name string
	dirs []string          // leaf directories, v1 first
	ctl  map[string]string // controller -> leaf directory
	v2   string            // v2 leaf, "" if none
	once sync.Once
}

// New makes the group name (unique among this process's groups) and writes
// its settings. The caller places processes in it (with [Group.Dir] at
// start for v2, [Group.Join] for v1) and must call [Group.Remove].
func (r *Root) New(name string) (*Group, error) {
	g := &Group{r: r, name: name, ctl: map[string]string{}}
	if len(r.parents) == 0 {
		return g, nil
	}
	leafOf := map[string]string{}
	for _, parent := range r.dirs() {
		top := filepath.Join(parent, topName)
		tops.Lock()
		if tops.n[top] == 0 {
			if err := r.fs.Mkdir(top); err != nil && !errors.Is(err, fs.ErrExist) {
				tops.Unlock()
				g.Remove()
				return nil, fmt.Errorf("multiproc: making cgroup %s: %w", top, err)
			}
			if parent == r.v2Parent {
				if err := enable(r.fs, top, r.v2Controllers()); err != nil {
					tops.Unlock()
					r.fs.Rmdir(top)
					g.Remove()
					return nil, fmt.Errorf("multiproc: enabling controllers in cgroup %s: %w", top, err)
				}
			}
		}
		tops.n[top]++
		tops.Unlock()
		leaf := filepath.Join(top, name)
		if err := r.fs.Mkdir(leaf); err != nil {
			releaseTop(r.fs, top)
			g.Remove()
			return nil, fmt.Errorf("multiproc: making cgroup %s: %w", leaf, err)
		}
		g.dirs = append(g.dirs, leaf)
		leafOf[parent] = leaf
		if parent == r.v2Parent {
			g.v2 = leaf
		}
	}
	for c, parent := range r.parents {
		g.ctl[c] = leafOf[parent]
	}
	if err := g.apply(); err != nil {
		g.Remove()
		return nil, err
	}
	return g, nil
}

func (g *Group) write(c, file, value string) error {
	if err := g.r.fs.WriteFile(filepath.Join(g.ctl[c], file), value); err != nil {
		return fmt.Errorf("multiproc: cgroup %s: writing %s: %w", g.ctl[c], file, err)
	}
	return nil
}

func (g *Group) apply() error {
	s := g.r.s
	if s.Memory > 0 {
		if g.r.v2["memory"] {
			if err := g.write("memory", "memory.max", strconv.FormatUint(s.Memory, 10)); err != nil {
				return err
			}
			if g.exists("memory", "memory.swap.max") {
				if err := g.write("memory", "memory.swap.max", strconv.FormatUint(s.Swap, 10)); err != nil {
					return err
				}
			}
			// One OOM kill takes the whole group: a worker's own children
			// die with it rather than linger half-alive.
			if g.exists("memory", "memory.oom.group") {
				g.write("memory", "memory.oom.group", "1")
			}
		} else {
			if err := g.write("memory", "memory.limit_in_bytes", strconv.FormatUint(s.Memory, 10)); err != nil {
				return err
			}
			// memsw bounds memory plus swap; it exists only where the
			// kernel accounts swap (swapaccount=1).
			if g.exists("memory", "memory.memsw.limit_in_bytes") {
				if err := g.write("memory", "memory.memsw.limit_in_bytes", strconv.FormatUint(s.Memory+s.Swap, 10)); err != nil {
					return err
				}
			}
		}
	}
	if s.CPUs > 0 {
		const period = 100000
		quota := max(int64(s.CPUs*period), 1000)
		if g.r.v2["cpu"] {
			if err := g.write("cpu", "cpu.max", fmt.Sprintf("%d %d", quota, period)); err != nil {
				return err
			}
		} else {
			if err := g.write("cpu", "cpu.cfs_period_us", strconv.Itoa(period)); err != nil {
				return err
			}
			if err := g.write("cpu", "cpu.cfs_quota_us", strconv.FormatInt(quota, 10)); err != nil {
				return err
			}
		}
	}
	if s.Pids > 0 {
		if err := g.write("pids", "pids.max", strconv.Itoa(s.Pids)); err != nil {
			return err
		}
	}
	return nil
}

func (g *Group) exists(c, file string) bool {
	_, err := g.r.fs.ReadFile(filepath.Join(g.ctl[c], file))
	return err == nil
}

// Dir opens the group's v2 directory, for starting a child in it
// (CLONE_INTO_CGROUP: syscall.SysProcAttr's UseCgroupFD); nil, nil when the
// group has no v2 part. The caller closes it.
func (g *Group) Dir() (*os.File, error) {
	if g.v2 == "" {
		return nil, nil
	}
	return os.OpenFile(g.v2, os.O_RDONLY|syscall.O_DIRECTORY, 0)
}

// Join moves process pid into the group's v1 directories (v2 children are
// started in theirs).
func (g *Group) Join(pid int) error {
	for _, d := range g.dirs {
		if d == g.v2 {
			continue
		}
		if err := g.r.fs.WriteFile(filepath.Join(d, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("multiproc: moving process %d into cgroup %s: %w", pid, d, err)
		}
	}
	return nil
}

// OOMKills is how many processes of the group the kernel's OOM killer has
// killed (v1 memory.oom_control, v2 memory.events "oom_kill"); 0 without a
// memory cap or where it cannot be read.
func (g *Group) OOMKills() uint64 {
	d, ok := g.ctl["memory"]
	if !ok {
		return 0
	}
	file := "memory.oom_control"
	if g.r.v2["memory"] {
		file = "memory.events"
	}
	b, err := g.r.fs.ReadFile(filepath.Join(d, file))
	if err != nil {
		return 0
	}
	n, _ := parseKeyed(string(b), "oom_kill")
	return n
}

// PidsLimitHits is how many times a fork or thread creation in the group
// failed because it had reached pids.max (the "max" counter of v1 and v2
// pids.events); 0 without a pids limit or where it cannot be read. It
// rises for a fork that fails with EAGAIN in a task as well as for the
// thread creation a Go process dies of.
func (g *Group) PidsLimitHits() uint64 {
	d, ok := g.ctl["pids"]
	if !ok {
		return 0
	}
	b, err := g.r.fs.ReadFile(filepath.Join(d, "pids.events"))
	if err != nil {
		return 0
	}
	n, _ := parseKeyed(string(b), "max")
	return n
}

// Pids lists the processes in the group.
func (g *Group) Pids() []int {
	seen := map[int]bool{}
	var pids []int
	for _, d := range g.dirs {
		for _, p := range readPids(g.r.fs, d) {
			if !seen[p] {
				seen[p], pids = true, append(pids, p)
			}
		}
	}
	return pids
}

func readPids(fs fsys, dir string) []int {
	b, err := fs.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		if p, err := strconv.Atoi(f); err == nil && p > 0 {
			pids = append(pids, p)
		}
	}
	return pids
}

// removeWait bounds how long Remove waits for killed processes to leave a
// group (a loaded machine takes a moment to tear a process down).
const removeWait = 10 * time.Second

// Remove kills whatever still runs in the group (a worker's leftover
// children: v2 cgroup.kill, v1 SIGKILL to each), removes its directories
// and, with this process's last group under a parent, the process's
// directory there. Call it after the worker was reaped. Later calls do
// nothing.
func (g *Group) Remove() error {
	var err error
	g.once.Do(func() {
		for i := len(g.dirs) - 1; i >= 0; i-- {
			d := g.dirs[i]
			if e := removeLeaf(g.r.fs, d); e != nil && err == nil {
				err = e
			}
			releaseTop(g.r.fs, filepath.Dir(d))
		}
	})
	return err
}

// removeLeaf kills the processes of leaf directory d and removes it.
func removeLeaf(fs fsys, d string) error {
	deadline := time.Now().Add(removeWait)
	for wait := 100 * time.Microsecond; ; wait = min(2*wait, 20*time.Millisecond) {
		if fs.WriteFile(filepath.Join(d, "cgroup.kill"), "1") != nil {
			for _, p := range readPids(fs, d) {
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
		err := fs.Rmdir(d)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("multiproc: removing cgroup %s: %w", d, err)
		}
		time.Sleep(wait) // the kernel tears the killed processes down; nothing to wait on
	}
}

func releaseTop(fs fsys, top string) {
	tops.Lock()
	defer tops.Unlock()
	tops.n[top]--
	if tops.n[top] <= 0 {
		delete(tops.n, top)
		fs.Rmdir(top)
	}
}

// Sweep removes the groups of processes that no longer run
// ("multiproc-PID-START" whose pid is gone or runs with another start
// time), killing what still runs in them, beside this process's own
// cgroup in every hierarchy groups may use (v1 memory, cpu and pids, v2,
// and the v2 parent): not only the hierarchies r needs. It returns how
// many such directories it removed. [Find] runs it, so every start with
// cgroup limits (a pool's, a limited Process's) sweeps.
func (r *Root) Sweep() int {
	n := 0
	for _, d := range r.sweepDirs {
		n += sweep(r.fs, d)
	}
	return n
}

func sweep(fs fsys, parent string) int {
	names, _ := fs.ReadDir(parent)
	n := 0
	for _, name := range names {
		pid, start, ok := parseTop(name)
		if !ok || pid == os.Getpid() {
			continue
		}
		if s, alive, err := procStart(pid); err != nil || (alive && s == start) {
			continue
		}
		top := filepath.Join(parent, name)
		leaves, _ := fs.ReadDir(top)
		for _, l := range leaves {
			removeLeaf(fs, filepath.Join(top, l))
		}
		if fs.Rmdir(top) == nil {
			n++
		}
	}
	return n
}

// parseTop parses "multiproc-PID-START".
func parseTop(name string) (pid int, start uint64, ok bool) {
	rest, found := strings.CutPrefix(name, "multiproc-")
	if !found {
		return 0, 0, false
	}
	p, s, found := strings.Cut(rest, "-")
	if !found {
		return 0, 0, false
	}
	pid, err1 := strconv.Atoi(p)
	start, err2 := strconv.ParseUint(s, 10, 64)
	return pid, start, err1 == nil && err2 == nil && pid > 0
}

// procStart returns the start time of process pid, in clock ticks since
// boot (field 22 of /proc/PID/stat), and whether it exists.
func procStart(pid int) (start uint64, alive bool, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return 0, false, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("unexpected /proc/%d/stat: %w", pid, err)
	}
	return start, true, nil
}
