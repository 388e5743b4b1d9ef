package main

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
)

// A Row is one line of the benchmark table: a quantity measured on the Go side, optionally
// beside its CPython counterpart and the machine limit it is held against.
//
// Rows are registered from per-topic files (rows_limits.go, rows_process.go, …) with
// [register] in an init function, so a new benchmark never touches the harness.
type Row struct {
	// Name identifies the row in the table, in -only and in -json. Limit rows are named
	// "limit.…"; the name of a CPython counterpart may differ (see Python).
	Name string
	// Unit is printed beside the values, e.g. "ms/proc", "GB/s". It must match the unit the
	// CPython script reports for the counterpart.
	Unit string
	// HigherIsBetter is true for rates (items/s, GB/s) and false for costs (ms, MB).
	HigherIsBetter bool
	// Doc is a one-line description for -list.
	Doc string
	// Note, when set, is printed under the table whenever the row is shown: the caveat a
	// reader needs to interpret the comparison.
	Note string

	// Go measures one sample. The harness calls it once as a warm-up and then -reps times,
	// and reports the median. It must honour ctx where it blocks.
	Go SampleFunc

	// Python names the CPython counterpart; its zero value means there is none.
	Python PyRow

	// Limit names the limit row (registered elsewhere, same unit and direction) that this
	// row is held against; the harness measures it in the same run even when -only would
	// not select it. LimitFunc instead measures a limit of the row's own, shown only in this
	// row's limit column. At most one of the two may be set.
	Limit     string
	LimitFunc SampleFunc

	// Load, if set, starts a background load before the row's Go side is measured and
	// the returned stop ends it after the CPython side: both sides (and LimitFunc) are
	// measured under the same load.
	Load func(ctx context.Context, env *Env) (stop func() error, err error)
}

// A SampleFunc returns one sample of a row in the row's unit.
type SampleFunc func(ctx context.Context, env *Env) (float64, error)

// PyRow names a row of a CPython benchmark script under bench/python/.
type PyRow struct {
	// Script is the file name under bench/python/; empty means "mpbench.py".
	Script string
	// Name is the row name the script accepts as its first argument; empty means the row
	// has no CPython counterpart.
	Name string
}

func (p PyRow) script() string {
	if p.Script == "" {
		return "mpbench.py"
	}
	return p.Script
}

// Env is what a SampleFunc may use of the run's configuration.
type Env struct {
	// Scale multiplies every work size (1 by default, 0.1 with -quick), so a smoke run
	// finishes quickly. Use [Env.N] rather than reading it directly.
	Scale float64
	// Exe is the binary that limit children are re-executed from: mpbench itself (or the
	// test binary), found with os.Executable.
	Exe string
}

// N returns base scaled by e.Scale, rounded, and at least 1.
func (e *Env) N(base int) int {
	n := int(math.Round(float64(base) * e.Scale))
	return max(n, 1)
}

// rowSet is an ordered set of rows.
type rowSet []*Row

// registry holds the registered rows in registration order. It is written only by
// register, from init functions, and read-only afterwards.
var registry rowSet

// register adds rows to the table. It is meant for init functions and panics on a
// malformed row or a duplicate name; references between rows (Limit) are checked by
// [checkRegistry] once every file's init has run.
func register(rows ...Row) { registry.add(rows...) }

func (s *rowSet) add(rows ...Row) {
	for i := range rows {
		r := rows[i]
		switch {
		case r.Name == "" || strings.ContainsAny(r.Name, " \t\n"):
			panic(fmt.Sprintf("mpbench: bad row name %q", r.Name))
		case r.Unit == "":
			panic(fmt.Sprintf("mpbench: row %s has no unit", r.Name))
		case r.Go == nil:
			panic(fmt.Sprintf("mpbench: row %s has no Go measurement", r.Name))
		case r.Limit != "" && r.LimitFunc != nil:
			panic(fmt.Sprintf("mpbench: row %s sets both Limit and LimitFunc", r.Name))
		case r.Python.Script != "" && r.Python.Name == "":
			panic(fmt.Sprintf("mpbench: row %s names a python script but no python row", r.Name))
		case s.lookup(r.Name) != nil:
			panic(fmt.Sprintf("mpbench: row %s registered twice", r.Name))
		}
		*s = append(*s, &r)
	}
}

func (s rowSet) lookup(name string) *Row {
	for _, r := range s {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// checkRegistry reports rows whose Limit does not name a registered row with the same unit
// and direction: a limit in another unit would make the ratio meaningless.
func checkRegistry(rows rowSet) error {
	var errs []string
	for _, r := range rows {
		if r.Limit == "" {
			continue
		}
		l := rows.lookup(r.Limit)
		switch {
		case l == nil:
			errs = append(errs, fmt.Sprintf("row %s: limit %s is not registered", r.Name, r.Limit))
		case l.Unit != r.Unit || l.HigherIsBetter != r.HigherIsBetter:
			errs = append(errs, fmt.Sprintf("row %s (%s) is held against %s (%s): units or directions differ",
				r.Name, r.Unit, l.Name, l.Unit))
		case l.Limit != "" || l.LimitFunc != nil:
			errs = append(errs, fmt.Sprintf("row %s: limit %s has a limit itself", r.Name, l.Name))
		}
	}
	if errs != nil {
		return fmt.Errorf("mpbench: bad registry: %s", strings.Join(errs, "; "))
	}
	return nil
}

// isLimit reports whether r is a machine-limit row, which the table lists first.
func (r *Row) isLimit() bool { return strings.HasPrefix(r.Name, "limit.") }

// selectRows returns the rows whose name matches only (all when only is nil), plus every
// limit row a selected row is held against, limit rows first and otherwise in registration
// order.
func selectRows(rows rowSet, only *regexp.Regexp) []*Row {
	want := make(map[string]bool)
	for _, r := range rows {
		if only == nil || only.MatchString(r.Name) {
			want[r.Name] = true
			if r.Limit != "" {
				want[r.Limit] = true
			}
		}
	}
	var sel []*Row
	for _, r := range rows {
		if want[r.Name] {
			sel = append(sel, r)
		}
	}
	sort.SliceStable(sel, func(i, j int) bool { return sel[i].isLimit() && !sel[j].isLimit() })
	return sel
}
