package cgroup

import (
	"io/fs"
	"testing"
)

func TestParseCPUMax(t *testing.T) {
	tests := []struct {
		name          string
		data          string
		quota, period int64
		ok            bool
	}{
		{"unlimited", "max 100000\n", 0, 0, false},
		{"two CPUs", "200000 100000\n", 200000, 100000, true},
		{"half a CPU", "50000 100000", 50000, 100000, true},
		{"custom period", "150000 50000\n", 150000, 50000, true},
		{"quota only", "300000\n", 300000, 100000, true},
		{"empty", "", 0, 0, false},
		{"garbage", "lots 100000", 0, 0, false},
		{"bad period", "100000 often", 0, 0, false},
		{"zero period", "100000 0", 100000, 0, false},
		{"negative quota", "-1 100000", -1, 100000, false},
		{"three fields", "1 2 3", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, p, ok := parseCPUMax(tt.data)
			if ok != tt.ok || (ok && (q != tt.quota || p != tt.period)) {
				t.Errorf("parseCPUMax(%q) = %d, %d, %v; want %d, %d, %v", tt.data, q, p, ok, tt.quota, tt.period, tt.ok)
			}
		})
	}
}

func TestParseCFS(t *testing.T) {
	tests := []struct {
		name, quota, period string
		wantQ, wantP        int64
		ok                  bool
	}{
		{"unlimited", "-1\n", "100000\n", 0, 0, false},
		{"one and a half", "150000\n", "100000\n", 150000, 100000, true},
		{"no newline", "400000", "100000", 400000, 100000, true},
		{"bad quota", "x\n", "100000\n", 0, 0, false},
		{"bad period", "100000\n", "\n", 0, 0, false},
		{"zero period", "100000\n", "0\n", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, p, ok := parseCFS(tt.quota, tt.period)
			if ok != tt.ok || q != tt.wantQ || p != tt.wantP {
				t.Errorf("parseCFS(%q, %q) = %d, %d, %v; want %d, %d, %v", tt.quota, tt.period, q, p, ok, tt.wantQ, tt.wantP, tt.ok)
			}
		})
	}
}

func TestQuotaToCPUs(t *testing.T) {
	tests := []struct {
		quota, period int64
		want          int
	}{
		{100000, 100000, 1},
		{150000, 100000, 2}, // rounded up: one and a half CPUs keep two processes busy
		{200000, 100000, 2},
		{1000, 100000, 1},
		{0, 100000, 0},
		{100000, 0, 0},
		{1 << 62, 1, 1<<31 - 1},
	}
	for _, tt := range tests {
		if got := quotaToCPUs(tt.quota, tt.period); got != tt.want {
			t.Errorf("quotaToCPUs(%d, %d) = %d, want %d", tt.quota, tt.period, got, tt.want)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		name, data string
		v2, v1     string
	}{
		{"v2 only", "0::/user.slice/user-1000.slice/session-2.scope\n", "/user.slice/user-1000.slice/session-2.scope", ""},
		{"v1 cpu,cpuacct", "12:pids:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n", "", "/docker/abc"},
		{"hybrid", "9:name=systemd:/\n2:cpuacct:/\n1:cpu:/batch\n0::/\n", "/", "/batch"},
		{"cpuset is not cpu", "3:cpuset:/x\n", "", ""},
		{"path with colon", "0::/a:b\n", "/a:b", ""},
		{"empty", "", "", ""},
		{"garbage", "nonsense\n::\n", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v2, v1s := parseProcCgroup(tt.data)
			v1 := v1s["cpu"]
			if v2 != tt.v2 || v1 != tt.v1 {
				t.Errorf("parseProcCgroup = %q, %q; want %q, %q", v2, v1, tt.v2, tt.v1)
			}
		})
	}
}

func TestParseMountinfo(t *testing.T) {
	const hybrid = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:7 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
`
	const container = `1200 1100 0:40 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw
1300 1100 0:41 / /mnt/with\040space rw - ext4 /dev/sda1 rw
`
	tests := []struct {
		name   string
		data   string
		v2, v1 Mount
	}{
		{"hybrid", hybrid, Mount{Point: "/sys/fs/cgroup/unified", Root: "/"}, Mount{Point: "/sys/fs/cgroup/cpu,cpuacct", Root: "/"}},
		{"container bind mount", container, Mount{Point: "/sys/fs/cgroup", Root: "/docker/abc"}, Mount{}},
		{"none", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n", Mount{}, Mount{}},
		{"truncated lines", "1 2 3 - cgroup2\n - \n", Mount{}, Mount{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v2, v1s := parseMountinfo(tt.data)
			var v1 Mount
			for _, m := range v1s {
				if m.has("cpu") {
					v1 = Mount{Point: m.Point, Root: m.Root}
				}
			}
			if v2.Point != tt.v2.Point || v2.Root != tt.v2.Root || v1.Point != tt.v1.Point || v1.Root != tt.v1.Root {
				t.Errorf("parseMountinfo = %+v, %+v; want %+v, %+v", v2, v1, tt.v2, tt.v1)
			}
		})
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/mnt/with\040space`: "/mnt/with space",
		`/plain`:             "/plain",
		`/tab\011x\134y`:     "/tab\tx\\y",
		`/short\04`:          `/short\04`,
		`/bad\999`:           `/bad\999`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCPULimit runs the whole lookup over fake /proc and /sys contents.
func TestCPULimit(t *testing.T) {
	const v2Mount = "1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
	tests := []struct {
		name  string
		files map[string]string
		want  int
	}{
		{"v2 limited", map[string]string{
			"/proc/self/cgroup":          "0::/app\n",
			"/proc/self/mountinfo":       v2Mount,
			"/sys/fs/cgroup/app/cpu.max": "250000 100000\n",
		}, 3},
		{"v2 unlimited", map[string]string{
			"/proc/self/cgroup":          "0::/app\n",
			"/proc/self/mountinfo":       v2Mount,
			"/sys/fs/cgroup/app/cpu.max": "max 100000\n",
		}, 0},
		{"v2 ancestor tighter", map[string]string{
			"/proc/self/cgroup":                  "0::/outer/inner\n",
			"/proc/self/mountinfo":               v2Mount,
			"/sys/fs/cgroup/outer/inner/cpu.max": "800000 100000\n",
			"/sys/fs/cgroup/outer/cpu.max":       "100000 100000\n",
		}, 1},
		{"v2 without mountinfo uses /sys/fs/cgroup", map[string]string{
			"/proc/self/cgroup":          "0::/app\n",
			"/sys/fs/cgroup/app/cpu.max": "200000 100000\n",
		}, 2},
		{"v2 container without cgroup namespace", map[string]string{
			"/proc/self/cgroup":      "0::/docker/abc\n",
			"/proc/self/mountinfo":   "1 0 0:1 /docker/abc /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n",
			"/sys/fs/cgroup/cpu.max": "400000 100000\n",
		}, 4},
		{"v2 cgroup outside the mount", map[string]string{
			"/proc/self/cgroup":      "0::/elsewhere\n",
			"/proc/self/mountinfo":   "1 0 0:1 /docker/abc /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n",
			"/sys/fs/cgroup/cpu.max": "100000 100000\n",
		}, 1},
		{"v1 cfs quota", map[string]string{
			"/proc/self/cgroup":                                  "4:cpu,cpuacct:/batch\n",
			"/proc/self/mountinfo":                               "2 0 0:2 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
			"/sys/fs/cgroup/cpu,cpuacct/batch/cpu.cfs_quota_us":  "150000\n",
			"/sys/fs/cgroup/cpu,cpuacct/batch/cpu.cfs_period_us": "100000\n",
			"/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":        "-1\n",
			"/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us":       "100000\n",
		}, 2},
		{"hybrid takes the smaller", map[string]string{
			"/proc/self/cgroup": "1:cpu:/\n0::/\n",
			"/proc/self/mountinfo": "2 0 0:2 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n" +
				"3 0 0:3 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
			"/sys/fs/cgroup/cpu/cpu.cfs_quota_us":  "300000\n",
			"/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
			"/sys/fs/cgroup/unified/cpu.max":       "500000 100000\n",
		}, 3},
		{"no cgroup file", map[string]string{}, 0},
		{"garbage everywhere", map[string]string{
			"/proc/self/cgroup":          "0::/app\n",
			"/proc/self/mountinfo":       "\x00\xff - cgroup2\n",
			"/sys/fs/cgroup/app/cpu.max": "\x00\x01",
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := func(name string) ([]byte, error) {
				if s, ok := tt.files[name]; ok {
					return []byte(s), nil
				}
				return nil, fs.ErrNotExist
			}
			if got := CPULimit(read); got != tt.want {
				t.Errorf("CPULimit = %d, want %d", got, tt.want)
			}
		})
	}
}
