package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/examples/internal/extest"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

func TestMain(m *testing.M) {
	multiproc.Main()
	testutil.Run(m)
}

// section is what the program printed under one "==" header.
type section struct {
	title    string
	sleeping []string // pids that printed "PID Sleeping D"
	results  []string // other lines, in order
}

func parse(t *testing.T, out string) []section {
	t.Helper()
	var secs []section
	for _, l := range extest.Lines(out) {
		if title, ok := strings.CutPrefix(l, "== "); ok {
			secs = append(secs, section{title: title})
			continue
		}
		if len(secs) == 0 {
			t.Fatalf("line %q before the first section", l)
		}
		s := &secs[len(secs)-1]
		if pid, rest, _ := strings.Cut(l, " "); strings.HasPrefix(rest, "Sleeping ") {
			s.sleeping = append(s.sleeping, pid)
			continue
		}
		s.results = append(s.results, l)
	}
	return secs
}

// TestOutput runs the example and checks each section's results: what
// submit, as_completed and executor.map returned, that the results name
// the workers that printed "Sleeping", and that wait(FIRST_COMPLETED)
// returned the short call and the others were cancelled.
func TestOutput(t *testing.T) {
	out := extest.Run(t, extest.Build(t), "-sleep", "200ms")
	secs := parse(t, out)
	wantTitles := []string{
		"executor.submit(do_something, 200ms) twice; future.result()",
		"as_completed([executor.submit(do_something, 200ms) for _ in range(4)])",
		"executor.map(do_something, [200ms 400ms 600ms 800ms])",
		"wait([submit(do_something, s) for s in [200ms 800ms 800ms 800ms]], return_when=FIRST_COMPLETED)",
	}
	if len(secs) != len(wantTitles) {
		t.Fatalf("got %d sections, want %d:\n%s", len(secs), len(wantTitles), out)
	}
	for i, s := range secs {
		if s.title != wantTitles[i] {
			t.Errorf("section %d is %q, want %q", i, s.title, wantTitles[i])
		}
		if n := len(s.results); n == 0 || !strings.HasPrefix(s.results[n-1], "Finished in ") {
			t.Errorf("section %q does not end with its Finished line: %q", s.title, s.results)
		} else {
			secs[i].results = s.results[:n-1]
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// results checks that the results are "PID Done sleeping for D" with
	// the durations want, in order, each from a worker that printed
	// Sleeping.
	results := func(t *testing.T, s section, want ...string) {
		t.Helper()
		var got []string
		for _, r := range s.results {
			pid, rest, _ := strings.Cut(r, " ")
			d, ok := strings.CutPrefix(rest, "Done sleeping for ")
			if !ok || !slices.Contains(s.sleeping, pid) {
				t.Errorf("result %q: want PID Done sleeping for D, from one of the workers %q", r, s.sleeping)
			}
			got = append(got, d)
		}
		if !slices.Equal(got, want) {
			t.Errorf("results for %q, want %q", got, want)
		}
		if len(s.sleeping) != len(want) {
			t.Errorf("%d Sleeping lines, want %d", len(s.sleeping), len(want))
		}
	}
	t.Run("submit", func(t *testing.T) { results(t, secs[0], "200ms", "200ms") })
	t.Run("as_completed", func(t *testing.T) { results(t, secs[1], "200ms", "200ms", "200ms", "200ms") })
	t.Run("map keeps order", func(t *testing.T) { results(t, secs[2], "200ms", "400ms", "600ms", "800ms") })
	t.Run("wait first completed", func(t *testing.T) {
		s := secs[3]
		// The short call ends first, so it is the one done; the other three
		// are cancelled, whether running or still queued.
		want := []string{"not done: 3", "cancelled 3 of 3, running ones included"}
		if len(s.results) != 3 || !slices.Equal(s.results[1:], want) {
			t.Fatalf("results %q, want a first completed line, then %q", s.results, want)
		}
		r, ok := strings.CutPrefix(s.results[0], "first completed: ")
		if pid, _, _ := strings.Cut(r, " "); !ok || r != fmt.Sprintf("%s Done sleeping for 200ms", pid) {
			t.Errorf("first line %q, want first completed: PID Done sleeping for 200ms", s.results[0])
		}
	})
}
