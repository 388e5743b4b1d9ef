package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/internal/testutil"
)

// fakePython stands in for the interpreter: it is started as `fakepy SCRIPT ROW ARGS...`
// like python3, logs its arguments and scale, and behaves as the row name says.
const fakePython = `#!/bin/sh
echo "$@ scale=$MPBENCH_SCALE" >> "$FAKEPY_LOG"
case "$2" in
--probe) echo '{"executable": "'"$0"'", "python": "0.0-fake", "start_method": "fork"}' ;;
ok) echo 'a worker printed this'; echo '{"name": "ok", "unit": "ms", "value": 1.5, "samples": [1.5]}' ;;
badunit) echo '{"name": "badunit", "unit": "s", "value": 1.5}' ;;
garbage) echo 'not json' ;;
crash) echo 'Traceback (most recent call last):' >&2; echo 'ValueError: boom' >&2; exit 1 ;;
hang) sleep 60 & echo "$!" > "$FAKEPY_LOG.pid"; wait ;;
esac
`

// newFakePython returns a python runner using fakePython, and the path of its log.
func newFakePython(t *testing.T) (*python, string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("needs /bin/sh")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "fakepy")
	if err := os.WriteFile(exe, []byte(fakePython), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mpbench.py"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "log")
	t.Setenv("FAKEPY_LOG", log)
	cfg := &config{python: exe, pyDir: dir, pyStart: "spawn", reps: 3, scale: 0.5, timeout: 2 * time.Second}
	rows := []*Row{{Name: "ok", Unit: "ms", Python: PyRow{Name: "ok"}}}
	var stderr bytes.Buffer
	p := newPython(cfg, rows, &stderr)
	if !p.enabled() {
		t.Fatalf("fake interpreter rejected: %s", stderr.String())
	}
	return p, log
}

func TestPythonMeasure(t *testing.T) {
	p, log := newFakePython(t)
	if got, want := p.describe(), "start method fork (-py-start)"; !strings.Contains(got, want) {
		t.Errorf("describe() = %q, want it to contain %q", got, want)
	}
	for _, tc := range []struct {
		row, unit string
		want      float64 // when wantErr is ""
		wantErr   string
	}{
		{row: "ok", unit: "ms", want: 1.5},
		{row: "badunit", unit: "ms", wantErr: "reported badunit in s, want badunit in ms"},
		{row: "garbage", unit: "ms", wantErr: "printed no result"},
		{row: "crash", unit: "ms", wantErr: "exit status 1: Traceback (most recent call last): | ValueError: boom"},
	} {
		t.Run(tc.row, func(t *testing.T) {
			v, err := p.measure(context.Background(), &Row{Name: tc.row, Unit: tc.unit, Python: PyRow{Name: tc.row}})
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.wantErr == "" && *v != tc.want:
				t.Errorf("value %g, want %g", *v, tc.want)
			}
		})
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(log)
	want := filepath.Join(dir, "mpbench.py") + " ok --reps 3 --start-method spawn scale=0.5"
	if !strings.Contains(string(b), want+"\n") {
		t.Errorf("interpreter log:\n%s\nwant a line %q", b, want)
	}
}

// TestPythonTimeoutKillsGroup guards the containment of a hung CPython row: the row fails
// after -timeout, and the interpreter's own children die with it.
func TestPythonTimeoutKillsGroup(t *testing.T) {
	p, log := newFakePython(t)
	p.timeout = time.Second
	start := time.Now()
	_, err := p.measure(context.Background(), &Row{Name: "hang", Unit: "ms", Python: PyRow{Name: "hang"}})
	if err == nil || !strings.Contains(err.Error(), "timed out after 1s") {
		t.Fatalf("error %v, want a timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("measure returned after %v, want about 1s", d)
	}
	// The leak check in TestMain also reports the sleep if it survived; this says which test.
	b, err := os.ReadFile(log + ".pid")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return !testutil.ProcessAlive(pid) },
		"the interpreter's child %d survived the timeout", pid)
}

func TestPythonMissingIsSkipped(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	rows := []*Row{{Name: "ok", Unit: "ms", Python: PyRow{Name: "ok"}}}
	var stderr bytes.Buffer
	p := newPython(&config{reps: 1, scale: 1, timeout: time.Second}, rows, &stderr)
	if p.enabled() {
		t.Fatal("python side enabled without python3 in PATH")
	}
	want := "mpbench: python3 not found in PATH (name an interpreter with -python PATH); skipping the CPython side\n"
	if stderr.String() != want {
		t.Errorf("notice %q, want %q", stderr.String(), want)
	}
	if got := p.describe(); !strings.Contains(got, "python3 not found") {
		t.Errorf("header %q does not say why the CPython side is missing", got)
	}
}

// TestPythonRowsMatchScript checks every CPython counterpart named by a Go row against
// the real script's --list: the row must exist there with the same unit and direction.
func TestPythonRowsMatchScript(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 in PATH")
	}
	dir, err := findScriptDir()
	if err != nil {
		t.Fatal(err)
	}
	scripts := make(map[string]map[string]jsonRow)
	for _, r := range registry {
		if r.Python.Name == "" {
			continue
		}
		rows, ok := scripts[r.Python.script()]
		if !ok {
			out, err := exec.Command(py, filepath.Join(dir, r.Python.script()), "--list").Output()
			if err != nil {
				t.Fatalf("%s --list: %v", r.Python.script(), err)
			}
			rows = make(map[string]jsonRow)
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				var j jsonRow
				if err := json.Unmarshal([]byte(line), &j); err != nil {
					t.Fatalf("%s --list printed %q: %v", r.Python.script(), line, err)
				}
				rows[j.Name] = j
			}
			scripts[r.Python.script()] = rows
		}
		j, ok := rows[r.Python.Name]
		switch {
		case !ok:
			t.Errorf("row %s: %s has no row %s", r.Name, r.Python.script(), r.Python.Name)
		case j.Unit != r.Unit || j.HigherIsBetter != r.HigherIsBetter:
			t.Errorf("row %s: %s:%s is in %s (higher is better: %v), want %s (%v)", r.Name,
				r.Python.script(), r.Python.Name, j.Unit, j.HigherIsBetter, r.Unit, r.HigherIsBetter)
		}
	}
}
