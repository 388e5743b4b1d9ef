package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

// TestMain makes the test binary a stand-in for mpbench: the limit rows re-execute it as
// a bare limit child, and the process rows as a multiproc child, exactly as they do the
// real binary.
func TestMain(m *testing.M) {
	limitChildMain()
	multiproc.Main()
	// The library starts every child from one locked OS thread that lives as long as the
	// process (see internal/boot): that goroutine is the library's design, not a leak.
	testutil.Run(m)
}

// TestSmoke runs every registered row through the real code path (flags, re-exec of
// limit children, the library's processes, medians, JSON output) with one sample at a
// twentieth of the work, without the CPython side.
func TestSmoke(t *testing.T) {
	// A race-enabled child sleeps 1 s at exit by default, waiting for late reports.
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	var stdout, stderr bytes.Buffer
	code := run([]string{"-reps", "1", "-scale", "0.05", "-no-python", "-json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("run exited %d; stderr:\n%s", code, stderr.String())
	}
	got := make(map[string]jsonRow)
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var r jsonRow
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("bad JSON line %q: %v", line, err)
		}
		got[r.Name] = r
	}
	for _, row := range registry {
		r, ok := got[row.Name]
		switch {
		case !ok:
			t.Errorf("row %s: missing from the output", row.Name)
		case r.Go == nil || !(*r.Go > 0):
			t.Errorf("row %s: go = %v, want a positive value", row.Name, r.Go)
		case r.Python != nil:
			t.Errorf("row %s: python = %v with -no-python, want null", row.Name, *r.Python)
		case (row.Limit != "" || row.LimitFunc != nil) != (r.Limit != nil):
			t.Errorf("row %s: limit = %v, want a value exactly when the row has a limit (%q, or a LimitFunc)", row.Name, r.Limit, row.Limit)
		case row.Limit != "" && *r.Limit != *got[row.Limit].Go:
			t.Errorf("row %s: limit = %v, want the go value of %s, %v", row.Name, *r.Limit, row.Limit, *got[row.Limit].Go)
		}
	}
}

// TestSmokeTable checks the table output of a real run of one cheap row.
func TestSmokeTable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-only", "^limit.memcpy$", "-reps", "1", "-no-python"}, &stdout, &stderr); code != 0 {
		t.Fatalf("run exited %d; stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"# python: skipped (-no-python)", "limit.memcpy", "GB/s", "go vs limit"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr.String(), "mpbench: limit.memcpy [go]: ") {
		t.Errorf("stderr lacks the progress line:\n%s", stderr.String())
	}
}

func TestRunUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no row matches", []string{"-only", "^nothing$"}, "no row matches"},
		{"bad regexp", []string{"-only", "("}, "-only"},
		{"zero reps", []string{"-reps", "0"}, "-reps must be at least 1"},
		{"bad start method", []string{"-py-start", "vfork"}, "-py-start must be"},
		{"bad scale", []string{"-scale", "-1"}, "scale must be positive"},
		{"extra argument", []string{"process_start"}, "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.want)
			}
		})
	}
}

func TestList(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-list", "-only", "^process_start$"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d; stderr: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "limit.reexec_handshake_and_wait ") ||
		!strings.HasPrefix(lines[1], "process_start ") {
		t.Errorf("got\n%s\nwant the limit row, then process_start", stdout.String())
	}
}

func TestParseFlagsScale(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  string // "" leaves MPBENCH_SCALE unset
		args []string
		want float64
	}{
		{"default", "", nil, 1},
		{"env", "0.25", nil, 0.25},
		{"flag beats env", "0.25", []string{"-scale", "2"}, 2},
		{"quick beats both", "0.25", []string{"-scale", "2", "-quick"}, quickScale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(scaleEnv, tc.env)
			}
			cfg, err := parseFlags(tc.args, new(bytes.Buffer))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.scale != tc.want {
				t.Errorf("scale = %g, want %g", cfg.scale, tc.want)
			}
		})
	}
}
