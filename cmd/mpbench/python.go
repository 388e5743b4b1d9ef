package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// pyScriptDir is where the CPython scripts live, relative to the repository root.
const pyScriptDir = "bench/python"

// probeTimeout bounds the interpreter probe, which imports multiprocessing and nothing else.
const probeTimeout = 30 * time.Second

// python runs the CPython side: one interpreter subprocess per row, so that a crash or a
// hang in one row (CPython's Pool hangs when a worker dies) costs that row only.
type python struct {
	exe     string // interpreter, as sys.executable reported it; "" when the side is off
	dir     string // directory of the scripts
	start   string // start method asked for with -py-start; "" for the default
	method  string // start method the interpreter reported it will use
	version string
	off     string // why the side is off, for the table header
	reps    int
	scale   float64
	timeout time.Duration
}

// newPython finds the interpreter and the scripts and probes them once. When that fails,
// the CPython side is switched off with a notice on stderr and the Go side still runs.
func newPython(cfg *config, rows []*Row, stderr io.Writer) *python {
	p := &python{start: cfg.pyStart, reps: cfg.reps, scale: cfg.scale, timeout: cfg.timeout}
	needed := false
	for _, r := range rows {
		needed = needed || r.Python.Name != ""
	}
	switch {
	case cfg.noPython:
		p.off = "skipped (-no-python)"
		return p
	case !needed:
		p.off = "no selected row has a CPython counterpart"
		return p
	}
	skip := func(why string) *python {
		p.exe, p.off = "", why
		fmt.Fprintf(stderr, "mpbench: %s; skipping the CPython side\n", why)
		return p
	}

	exe := cfg.python
	if exe == "" {
		var err error
		if exe, err = exec.LookPath("python3"); err != nil {
			return skip("python3 not found in PATH (name an interpreter with -python PATH)")
		}
	}
	p.dir = cfg.pyDir
	if p.dir == "" {
		var err error
		if p.dir, err = findScriptDir(); err != nil {
			return skip(err.Error())
		}
	}
	p.exe = exe
	out, err := p.command(context.Background(), probeTimeout, "mpbench.py", "--probe")
	if err != nil {
		return skip(fmt.Sprintf("%s does not run %s: %v", exe, filepath.Join(p.dir, "mpbench.py"), err))
	}
	var probe struct {
		Executable  string `json:"executable"`
		Version     string `json:"python"`
		StartMethod string `json:"start_method"`
	}
	if err := json.Unmarshal(lastJSONLine(out), &probe); err != nil || probe.StartMethod == "" {
		return skip(fmt.Sprintf("%s --probe printed no usable JSON: %q", exe, out))
	}
	// Run the interpreter directly from now on: a launcher such as a pyenv shim costs tens
	// of milliseconds per row and is no part of CPython.
	if probe.Executable != "" {
		p.exe = probe.Executable
	}
	p.version, p.method = probe.Version, probe.StartMethod
	return p
}

// findScriptDir looks for bench/python/mpbench.py in the current directory and its
// parents, so the command works from anywhere inside the repository.
func findScriptDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("no CPython scripts: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		dir := filepath.Join(d, pyScriptDir)
		if _, err := os.Stat(filepath.Join(dir, "mpbench.py")); err == nil {
			return dir, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no %s/mpbench.py in %s or its parents (name the directory with -pydir)", pyScriptDir, wd)
		}
	}
}

func (p *python) enabled() bool { return p.exe != "" }

// describe is the header line saying what the CPython column holds.
func (p *python) describe() string {
	if !p.enabled() {
		return "python: " + p.off
	}
	how := "platform default"
	if p.start != "" {
		how = "-py-start"
	}
	return fmt.Sprintf("python: CPython %s (%s), start method %s (%s)", p.version, p.exe, p.method, how)
}

// measure runs r's CPython counterpart in its own interpreter and returns its median.
func (p *python) measure(ctx context.Context, r *Row) (*float64, error) {
	out, err := p.command(ctx, p.timeout, r.Python.script(), r.Python.Name, "--reps", strconv.Itoa(p.reps))
	if err != nil {
		return nil, err
	}
	var res struct {
		Name  string   `json:"name"`
		Unit  string   `json:"unit"`
		Value *float64 `json:"value"`
	}
	if err := json.Unmarshal(lastJSONLine(out), &res); err != nil || res.Value == nil {
		return nil, fmt.Errorf("mpbench: python row %s printed no result: %q", r.Python.Name, out)
	}
	if res.Name != r.Python.Name || res.Unit != r.Unit {
		return nil, fmt.Errorf("mpbench: python row %s reported %s in %s, want %s in %s",
			r.Python.Name, res.Name, res.Unit, r.Python.Name, r.Unit)
	}
	return res.Value, nil
}

// command runs script (under p.dir) with args within timeout and returns its stdout. The
// interpreter runs in its own process group, so a timeout kills its workers too.
func (p *python) command(ctx context.Context, timeout time.Duration, script string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	argv := append([]string{filepath.Join(p.dir, script)}, args...)
	if p.start != "" {
		argv = append(argv, "--start-method", p.start)
	}
	cmd := exec.CommandContext(ctx, p.exe, argv...)
	cmd.Env = append(os.Environ(), scaleEnv+"="+strconv.FormatFloat(p.scale, 'g', -1, 64))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	killGroupOnCancel(cmd)
	// Pool workers that outlive a killed interpreter may hold the output pipes open;
	// WaitDelay stops Wait from waiting for them.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("mpbench: python %s timed out after %v", strings.Join(args, " "), timeout)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("mpbench: python %s: interrupted: %w", strings.Join(args, " "), ctx.Err())
	}
	if err != nil {
		return nil, fmt.Errorf("mpbench: python %s: %w%s", strings.Join(args, " "), err, tail(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// lastJSONLine returns the last line of out that looks like a JSON object; the scripts
// print their result last, and anything a worker printed comes before it.
func lastJSONLine(out []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if l := bytes.TrimSpace(lines[i]); bytes.HasPrefix(l, []byte("{")) {
			return l
		}
	}
	return nil
}

// tail returns the last few lines of a failed interpreter's stderr (the exception), ready
// to append to an error message.
func tail(stderr []byte) string {
	lines := strings.Split(strings.TrimSpace(string(stderr)), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return ": " + strings.Join(lines, " | ")
}
