package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// legend explains the ratio columns under the table.
var legend = []string{
	"go vs python: how many times better Go is than CPython: python/go for lower-is-better units",
	"  (ms, us/call, MB, s), go/python for higher-is-better units (/s, GB/s); >1x means Go is better.",
	"go vs limit: lower-is-better rows show go/limit, the multiple of the floor (1.12x = 12% above",
	"  it; 1x is the best possible); higher-is-better rows show go/limit, the fraction of the",
	"  ceiling reached (0.43 = 43% of it; 1 is the best possible).",
	"limit rows (limit.*) are measured by mpbench in this run; their value is in the go column.",
	"error: that side failed (see stderr); -: not applicable or not measured.",
}

// formatValue prints a measured value with three significant digits, without exponent
// between 0.001 and a million.
func formatValue(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'g', -1, 64)
	case a >= 1e6 || (a > 0 && a < 1e-3):
		return strconv.FormatFloat(v, 'e', 2, 64)
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// vsPython is the "go vs python" ratio: how many times better Go is, >1 when Go is better.
func vsPython(r *Row, goVal, pyVal float64) float64 {
	if r.HigherIsBetter {
		return goVal / pyVal
	}
	return pyVal / goVal
}

// vsLimit is the "go vs limit" ratio, go/limit in both directions: a multiple of the floor
// (>= 1 in principle) for costs, the fraction of the ceiling reached (<= 1) for rates.
func vsLimit(goVal, limit float64) float64 { return goVal / limit }

// formatRatio prints a ratio; multiples carry an "x", fractions of a ceiling do not.
func formatRatio(v float64, multiple bool) string {
	s := strconv.FormatFloat(v, 'g', 3, 64)
	if v >= 100 {
		s = strconv.FormatFloat(v, 'f', 0, 64)
	}
	if multiple {
		return s + "x"
	}
	return s
}

// cells returns the table cells of one result, in column order.
func (res *result) cells() []string {
	r := res.row
	cell := func(v *float64, err error) string {
		switch {
		case err != nil:
			return "error"
		case v == nil:
			return "-"
		}
		return formatValue(*v)
	}
	c := []string{r.Name, r.Unit, cell(res.goVal, res.goErr), cell(res.pyVal, res.pyErr),
		cell(res.limit, res.limitErr), "-", "-"}
	if res.goVal != nil && res.pyVal != nil {
		c[5] = formatRatio(vsPython(r, *res.goVal, *res.pyVal), true)
	}
	if res.goVal != nil && res.limit != nil {
		c[6] = formatRatio(vsLimit(*res.goVal, *res.limit), !r.HigherIsBetter)
	}
	return c
}

// writeTable prints the header lines, the aligned table of results (text left-aligned,
// numbers right-aligned), the legend and the notes of the rows shown.
func writeTable(w io.Writer, header []string, results []*result) {
	rows := [][]string{{"name", "unit", "go", "python", "limit", "go vs python", "go vs limit"}}
	for _, res := range results {
		rows = append(rows, res.cells())
	}
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, h := range header {
		fmt.Fprintf(&b, "# %s\n", h)
	}
	b.WriteString("\n")
	for n, row := range rows {
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < 2 { // name and unit are text
				b.WriteString(c)
				if i < len(row)-1 {
					b.WriteString(pad)
				}
			} else {
				b.WriteString(pad + c)
			}
		}
		b.WriteString("\n")
		if n == 0 {
			total := 2 * (len(width) - 1)
			for _, wd := range width {
				total += wd
			}
			b.WriteString(strings.Repeat("-", total) + "\n")
		}
	}
	b.WriteString("\n")
	for _, l := range legend {
		b.WriteString(l + "\n")
	}
	notes := false
	for _, res := range results {
		if res.row.Note == "" {
			continue
		}
		if !notes {
			b.WriteString("\nnotes:\n")
			notes = true
		}
		b.WriteString(wrap("- "+res.row.Name+": "+res.row.Note, noteWidth, "  "))
	}
	io.WriteString(w, b.String())
}

// jsonRow is the -json form of a result; absent values are null.
type jsonRow struct {
	Name           string   `json:"name"`
	Unit           string   `json:"unit"`
	Go             *float64 `json:"go"`
	Python         *float64 `json:"python"`
	Limit          *float64 `json:"limit"`
	HigherIsBetter bool     `json:"higher_is_better"`
	// Errors, present only when a side failed, maps the side ("go", "python", "limit") to
	// its error message.
	Errors map[string]string `json:"errors,omitempty"`
}

// writeJSON prints one JSON object per result, one per line.
func writeJSON(w io.Writer, results []*result) error {
	enc := json.NewEncoder(w)
	for _, res := range results {
		j := jsonRow{Name: res.row.Name, Unit: res.row.Unit, Go: res.goVal, Python: res.pyVal,
			Limit: res.limit, HigherIsBetter: res.row.HigherIsBetter}
		for side, err := range map[string]error{"go": res.goErr, "python": res.pyErr, "limit": res.limitErr} {
			if err != nil {
				if j.Errors == nil {
					j.Errors = make(map[string]string)
				}
				j.Errors[side] = err.Error()
			}
		}
		if err := enc.Encode(j); err != nil {
			return fmt.Errorf("mpbench: writing JSON: %w", err)
		}
	}
	return nil
}

// printList prints the selected rows for -list: name, unit, direction, counterparts, doc.
func printList(w io.Writer, rows []*Row) {
	for _, r := range rows {
		dir := "lower is better"
		if r.HigherIsBetter {
			dir = "higher is better"
		}
		extra := ""
		if r.Python.Name != "" {
			extra += " python=" + r.Python.script() + ":" + r.Python.Name
		}
		if r.Limit != "" {
			extra += " limit=" + r.Limit
		}
		if r.LimitFunc != nil {
			extra += " limit=own"
		}
		fmt.Fprintf(w, "%-36s %-8s %-16s %s%s\n", r.Name, r.Unit, dir, r.Doc, extra)
	}
}

// noteWidth is where notes under the table wrap, about the legend's width.
const noteWidth = 95

// wrap breaks s into lines of at most width runes at spaces (a longer word stays whole),
// indenting continuation lines, and ends each line with a newline.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	line := 0
	for i, w := range strings.Fields(s) {
		n := utf8.RuneCountInString(w)
		switch {
		case i == 0:
		case line+1+n > width:
			b.WriteString("\n" + indent)
			line = utf8.RuneCountInString(indent)
		default:
			b.WriteString(" ")
			line++
		}
		b.WriteString(w)
		line += n
	}
	b.WriteString("\n")
	return b.String()
}
