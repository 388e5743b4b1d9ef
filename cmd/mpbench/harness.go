package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// scaleEnv scales every row's work size on both sides; the CPython script reads it too.
const scaleEnv = "MPBENCH_SCALE"

// quickScale is the scale -quick sets: enough work to exercise every code path.
const quickScale = 0.1

// config is the parsed command line.
type config struct {
	only     *regexp.Regexp // nil selects every row
	reps     int
	scale    float64
	timeout  time.Duration // per row and side
	json     bool
	list     bool
	noPython bool
	python   string // interpreter; "" means python3 from PATH
	pyStart  string // CPython start method; "" means the platform default
	pyDir    string // directory holding the CPython scripts; "" means search
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("mpbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: mpbench [flags]\n\n"+
			"Runs the multiproc benchmarks, their CPython counterparts (bench/python/) and this\n"+
			"machine's limits in one run, and prints a table of medians.\n\nflags:\n")
		fs.PrintDefaults()
	}
	cfg := &config{}
	only := fs.String("only", "", "run only rows whose name matches this `regexp` (and the limit rows they need)")
	fs.IntVar(&cfg.reps, "reps", 5, "samples per row and side, after one warm-up; the median is reported")
	fs.BoolVar(&cfg.json, "json", false, "print one JSON object per row instead of the table")
	fs.BoolVar(&cfg.list, "list", false, "list the rows and exit")
	fs.BoolVar(&cfg.noPython, "no-python", false, "skip the CPython side")
	fs.StringVar(&cfg.python, "python", "", "CPython interpreter `path` (default: python3 from PATH)")
	fs.StringVar(&cfg.pyStart, "py-start", "", "CPython start `method`: spawn, fork or forkserver (default: the platform's)")
	fs.StringVar(&cfg.pyDir, "pydir", "", "`directory` of the CPython scripts (default: bench/python in the current directory or a parent)")
	fs.DurationVar(&cfg.timeout, "timeout", 120*time.Second, "time limit per row and side (warm-up and all samples)")
	scale := fs.Float64("scale", envScale(), "multiply every work size by this `factor` (default $"+scaleEnv+" or 1)")
	quick := fs.Bool("quick", false, "smoke run: same as -scale "+strconv.FormatFloat(quickScale, 'g', -1, 64))
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("mpbench: unexpected arguments %q", fs.Args())
	}
	cfg.scale = *scale
	if *quick {
		cfg.scale = quickScale
	}
	switch {
	case cfg.reps < 1:
		return nil, fmt.Errorf("mpbench: -reps must be at least 1, got %d", cfg.reps)
	case !(cfg.scale > 0):
		return nil, fmt.Errorf("mpbench: the scale must be positive, got %g", cfg.scale)
	case cfg.timeout <= 0:
		return nil, fmt.Errorf("mpbench: -timeout must be positive, got %v", cfg.timeout)
	}
	switch cfg.pyStart {
	case "", "spawn", "fork", "forkserver":
	default:
		return nil, fmt.Errorf("mpbench: -py-start must be spawn, fork or forkserver, got %q", cfg.pyStart)
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			return nil, fmt.Errorf("mpbench: -only: %w", err)
		}
		cfg.only = re
	}
	return cfg, nil
}

// envScale returns $MPBENCH_SCALE, or 1 when it is unset or not a number (which the
// flag check then reports if it is not positive).
func envScale() float64 {
	s, ok := os.LookupEnv(scaleEnv)
	if !ok {
		return 1
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return f
}

// result is one row's outcome. A nil value is absent (no counterpart, side skipped, or
// failed, in which case the matching error is set).
type result struct {
	row                 *Row
	goVal, pyVal, limit *float64
	goErr, pyErr        error
	limitErr            error
}

// run is main without the process exit and the child dispatch; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if err := checkRegistry(registry); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	rows := selectRows(registry, cfg.only)
	if cfg.list {
		printList(stdout, rows)
		return 0
	}
	if len(rows) == 0 {
		fmt.Fprintf(stderr, "mpbench: no row matches -only %q\n", cfg.only)
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "mpbench: cannot find own executable for re-exec: %v\n", err)
		return 1
	}
	env := &Env{Scale: cfg.scale, Exe: exe}
	py := newPython(cfg, rows, stderr)

	// On the first interrupt, the running row's children (and CPython's process group,
	// which the terminal's signal does not reach) are killed and the rows measured so far
	// are printed; a second interrupt kills mpbench at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	results := measureAll(ctx, cfg, env, py, rows, stderr)
	if cfg.json {
		if err := writeJSON(stdout, results); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	} else {
		writeTable(stdout, header(cfg, py), results)
	}
	for _, r := range results {
		if r.goErr != nil || r.pyErr != nil || r.limitErr != nil {
			return 1
		}
	}
	return 0
}

// measureAll measures rows in order, each row's Go side and then its CPython side so that
// the two never compete for the CPUs, and fills in each row's limit from the limit rows
// measured in the same run.
func measureAll(ctx context.Context, cfg *config, env *Env, py *python, rows []*Row, stderr io.Writer) []*result {
	results := make([]*result, len(rows))
	byName := make(map[string]*result, len(rows))
	for i, r := range rows {
		res := &result{row: r}
		results[i], byName[r.Name] = res, res
		if ctx.Err() != nil {
			res.goErr = fmt.Errorf("mpbench: interrupted")
			continue
		}

		var stopLoad func() error
		if r.Load != nil {
			var err error
			if stopLoad, err = r.Load(ctx, env); err != nil {
				res.goErr = err
				progress(stderr, r, "go", nil, err)
				continue
			}
		}
		res.goVal, res.goErr = measureGo(ctx, cfg, env, r.Go)
		progress(stderr, r, "go", res.goVal, res.goErr)
		if r.LimitFunc != nil {
			res.limit, res.limitErr = measureGo(ctx, cfg, env, r.LimitFunc)
			progress(stderr, r, "limit", res.limit, res.limitErr)
		}
		if py.enabled() && r.Python.Name != "" {
			res.pyVal, res.pyErr = py.measure(ctx, r)
			progress(stderr, r, "python", res.pyVal, res.pyErr)
		}
		if stopLoad != nil {
			if err := stopLoad(); err != nil && res.goErr == nil {
				res.goErr = err
			}
		}
	}
	for _, res := range results {
		if name := res.row.Limit; name != "" {
			// selectRows put every needed limit row first, so it has been measured.
			l := byName[name]
			res.limit = l.goVal
			if l.goErr != nil {
				res.limitErr = fmt.Errorf("mpbench: limit %s failed", name)
			}
		}
	}
	return results
}

// measureGo runs one warm-up and cfg.reps samples of f within cfg.timeout, and returns
// their median.
func measureGo(ctx context.Context, cfg *config, env *Env, f SampleFunc) (*float64, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	samples := make([]float64, 0, cfg.reps)
	for i := -1; i < cfg.reps; i++ { // i == -1 is the warm-up
		// Each sample starts on a collected heap, as testing.B's runs do (and the CPython
		// side's samples after gc.collect()): otherwise the last sample's garbage is still
		// uncollected when this one allocates, so a large allocation (a map's 8 MB of items)
		// takes fresh pages, and a first-touch fault costs ~10 µs a page here.
		runtime.GC()
		v, err := f(ctx, env)
		if err == nil && ctx.Err() != nil {
			err = fmt.Errorf("mpbench: row exceeded -timeout %v: %w", cfg.timeout, ctx.Err())
		}
		if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
			err = fmt.Errorf("mpbench: sample is %v", v)
		}
		if err != nil {
			return nil, err
		}
		if i >= 0 {
			samples = append(samples, v)
		}
	}
	m := median(samples)
	return &m, nil
}

// median returns the median of xs (the mean of the middle two for an even count), or NaN
// for none. It does not modify xs.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// progress reports one measured cell on stderr, so a long run shows where it is.
func progress(w io.Writer, r *Row, side string, v *float64, err error) {
	if err != nil {
		fmt.Fprintf(w, "mpbench: %s [%s]: error: %v\n", r.Name, side, err)
		return
	}
	fmt.Fprintf(w, "mpbench: %s [%s]: %s %s\n", r.Name, side, formatValue(*v), r.Unit)
}

// header describes the run for the lines above the table.
func header(cfg *config, py *python) []string {
	h := []string{fmt.Sprintf("mpbench: %s %s/%s, %d CPUs, reps=%d (median after 1 warm-up), scale=%g",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cfg.reps, cfg.scale)}
	return append(h, py.describe())
}
