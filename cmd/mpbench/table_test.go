package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{0.000536, "5.36e-04"},
		{0.536, "0.536"},
		{5.2149, "5.21"},
		{12.345, "12.3"},
		{123.4, "123"},
		{34550.4, "34550"},
		{2480000, "2.48e+06"},
	} {
		if got := formatValue(tc.in); got != tc.want {
			t.Errorf("formatValue(%g) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRatios(t *testing.T) {
	cost := &Row{Name: "c", Unit: "ms"}
	rate := &Row{Name: "r", Unit: "GB/s", HigherIsBetter: true}
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"cost: go twice as fast as python", vsPython(cost, 5, 10), 2},
		{"cost: go slower than python", vsPython(cost, 10, 5), 0.5},
		{"rate: go twice the python rate", vsPython(rate, 20, 10), 2},
		{"rate: go half the python rate", vsPython(rate, 5, 10), 0.5},
		{"cost: 1.25 times the floor", vsLimit(5, 4), 1.25},
		{"rate: a quarter of the ceiling", vsLimit(2, 8), 0.25},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %g, want %g", tc.name, tc.got, tc.want)
		}
	}
	for _, tc := range []struct {
		v        float64
		multiple bool
		want     string
	}{
		{1.1234, true, "1.12x"},
		{2, true, "2x"},
		{1234.5, true, "1234x"},
		{0.4321, false, "0.432"},
	} {
		if got := formatRatio(tc.v, tc.multiple); got != tc.want {
			t.Errorf("formatRatio(%g, %v) = %q, want %q", tc.v, tc.multiple, got, tc.want)
		}
	}
}

func ptr(v float64) *float64 { return &v }

// tableResults covers every kind of cell: a limit row, rows with and without counterparts
// in both directions, failures.
func tableResults() []*result {
	limit := &Row{Name: "limit.floor", Unit: "ms/proc"}
	start := &Row{Name: "process_start", Unit: "ms/proc", Limit: "limit.floor", Python: PyRow{Name: "process_start"},
		Note: "a note that is long enough to be wrapped onto a second line under the table, indented by two spaces."}
	rate := &Row{Name: "pool_map", Unit: "items/s", HigherIsBetter: true, LimitFunc: sample, Python: PyRow{Name: "pool_map"}}
	broken := &Row{Name: "broken", Unit: "ms", Python: PyRow{Name: "broken"}}
	return []*result{
		{row: limit, goVal: ptr(4)},
		{row: start, goVal: ptr(5), pyVal: ptr(12.5), limit: ptr(4)},
		{row: rate, goVal: ptr(2.5e6), pyVal: ptr(2.5e5), limit: ptr(1e7)},
		{row: broken, goErr: errors.New("boom"), pyErr: errors.New("timed out")},
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	writeTable(&b, []string{"mpbench: header"}, tableResults())
	want := `# mpbench: header

name           unit           go  python     limit  go vs python  go vs limit
-----------------------------------------------------------------------------
limit.floor    ms/proc         4       -         -             -            -
process_start  ms/proc         5    12.5         4          2.5x        1.25x
pool_map       items/s  2.50e+06  250000  1.00e+07           10x         0.25
broken         ms          error   error         -             -            -
`
	got := b.String()
	if !strings.HasPrefix(got, want) {
		t.Errorf("table:\n%s\nwant it to start with:\n%s", got, want)
	}
	for _, l := range legend {
		if !strings.Contains(got, l+"\n") {
			t.Errorf("legend line %q missing", l)
		}
	}
	wantNote := "\nnotes:\n- process_start: a note that is long enough to be wrapped onto a second line under the table,\n  indented by two spaces.\n"
	if !strings.HasSuffix(got, wantNote) {
		t.Errorf("table ends:\n%s\nwant the notes:\n%s", got[len(got)-len(wantNote)-20:], wantNote)
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := writeJSON(&b, tableResults()); err != nil {
		t.Fatal(err)
	}
	want := `{"name":"limit.floor","unit":"ms/proc","go":4,"python":null,"limit":null,"higher_is_better":false}
{"name":"process_start","unit":"ms/proc","go":5,"python":12.5,"limit":4,"higher_is_better":false}
{"name":"pool_map","unit":"items/s","go":2500000,"python":250000,"limit":10000000,"higher_is_better":true}
{"name":"broken","unit":"ms","go":null,"python":null,"limit":null,"higher_is_better":false,"errors":{"go":"boom","python":"timed out"}}
`
	if got := b.String(); got != want {
		t.Errorf("JSON:\n%s\nwant:\n%s", got, want)
	}
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("line %q: %v", line, err)
		}
	}
}

func TestWrap(t *testing.T) {
	got := wrap("aaa bbb ccc dddddddddd e", 8, "  ")
	want := "aaa bbb\n  ccc\n  dddddddddd\n  e\n"
	if got != want {
		t.Errorf("wrap = %q, want %q", got, want)
	}
}
