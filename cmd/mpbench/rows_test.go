package main

import (
	"context"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want float64
	}{
		{"one", []float64{3}, 3},
		{"odd unsorted", []float64{5, 1, 3}, 3},
		{"even takes the mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"outlier does not move it", []float64{1, 2, 1000}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			if got := median(in); got != tc.want {
				t.Errorf("median(%v) = %g, want %g", tc.in, got, tc.want)
			}
			if !slices.Equal(in, tc.in) {
				t.Errorf("median modified its input: %v, was %v", in, tc.in)
			}
		})
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median(nil) = %g, want NaN", got)
	}
}

func TestEnvN(t *testing.T) {
	for _, tc := range []struct {
		scale float64
		base  int
		want  int
	}{{1, 10, 10}, {0.1, 10, 1}, {0.01, 10, 1}, {0.05, 20000, 1000}, {2, 3, 6}} {
		if got := (&Env{Scale: tc.scale}).N(tc.base); got != tc.want {
			t.Errorf("Env{Scale: %g}.N(%d) = %d, want %d", tc.scale, tc.base, got, tc.want)
		}
	}
}

func sample(context.Context, *Env) (float64, error) { return 1, nil }

// testRows is a registry with limit rows that some rows need and some do not.
func testRows(t *testing.T) rowSet {
	t.Helper()
	var s rowSet
	s.add(
		Row{Name: "a", Unit: "ms", Go: sample, Limit: "limit.x"},
		Row{Name: "b", Unit: "ops/s", HigherIsBetter: true, Go: sample},
		Row{Name: "limit.x", Unit: "ms", Go: sample},
		Row{Name: "limit.y", Unit: "GB/s", HigherIsBetter: true, Go: sample},
		Row{Name: "ab", Unit: "ms", Go: sample, Limit: "limit.x"},
	)
	return s
}

func names(rows []*Row) string {
	var n []string
	for _, r := range rows {
		n = append(n, r.Name)
	}
	return strings.Join(n, " ")
}

func TestSelectRows(t *testing.T) {
	rows := testRows(t)
	for _, tc := range []struct {
		name, only, want string
	}{
		{"all, limits first", "", "limit.x limit.y a b ab"},
		{"pulls in the needed limit", "^a$", "limit.x a"},
		{"needed limit listed once", "^a", "limit.x a ab"},
		{"row without limit", "^b$", "b"},
		{"limits alone", "limit", "limit.x limit.y"},
		{"nothing", "^z", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var re *regexp.Regexp
			if tc.only != "" {
				re = regexp.MustCompile(tc.only)
			}
			if got := names(selectRows(rows, re)); got != tc.want {
				t.Errorf("selectRows(%q) = %q, want %q", tc.only, got, tc.want)
			}
		})
	}
}

func TestRegistryIsValid(t *testing.T) {
	if err := checkRegistry(registry); err != nil {
		t.Fatal(err)
	}
	for _, r := range registry {
		if r.Doc == "" {
			t.Errorf("row %s has no Doc", r.Name)
		}
	}
}

func TestCheckRegistryRejectsBadLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		rows []Row
		want string
	}{
		{"unregistered", []Row{{Name: "a", Unit: "ms", Go: sample, Limit: "limit.z"}}, "not registered"},
		{"other unit", []Row{
			{Name: "a", Unit: "ms", Go: sample, Limit: "limit.x"},
			{Name: "limit.x", Unit: "us", Go: sample},
		}, "units or directions differ"},
		{"other direction", []Row{
			{Name: "a", Unit: "ms", Go: sample, Limit: "limit.x"},
			{Name: "limit.x", Unit: "ms", HigherIsBetter: true, Go: sample},
		}, "units or directions differ"},
		{"limit with a limit", []Row{
			{Name: "a", Unit: "ms", Go: sample, Limit: "limit.x"},
			{Name: "limit.x", Unit: "ms", Go: sample, LimitFunc: sample},
		}, "has a limit itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s rowSet
			s.add(tc.rows...)
			err := checkRegistry(s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("checkRegistry = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestAddPanicsOnMisuse(t *testing.T) {
	for _, tc := range []struct {
		name string
		row  Row
		want string
	}{
		{"no name", Row{Unit: "ms", Go: sample}, "bad row name"},
		{"space in name", Row{Name: "a b", Unit: "ms", Go: sample}, "bad row name"},
		{"no unit", Row{Name: "c", Go: sample}, "no unit"},
		{"no go func", Row{Name: "c", Unit: "ms"}, "no Go measurement"},
		{"both limits", Row{Name: "c", Unit: "ms", Go: sample, Limit: "limit.x", LimitFunc: sample}, "both Limit and LimitFunc"},
		{"script without row", Row{Name: "c", Unit: "ms", Go: sample, Python: PyRow{Script: "x.py"}}, "no python row"},
		{"duplicate", Row{Name: "a", Unit: "ms", Go: sample}, "registered twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testRows(t)
			defer func() {
				r := recover()
				if msg, _ := r.(string); !strings.Contains(msg, tc.want) {
					t.Errorf("panic %v, want one containing %q", r, tc.want)
				}
			}()
			s.add(tc.row)
		})
	}
}
