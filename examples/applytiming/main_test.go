package main

import (
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

// event is one line a worker printed: "PID Sleeping D" or "PID Done
// sleeping for D".
type event struct {
	pid   string
	done  bool
	sleep string
}

// section is what the program printed under one "==" header.
type section struct {
	title    string
	events   []event
	other    []string // lines that are neither events nor the timing
	finished bool     // the "Finished in ..." line came last
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
		if s.finished {
			t.Errorf("section %q: line %q after the Finished line", s.title, l)
		}
		var e event
		switch pid, rest, _ := strings.Cut(l, " "); {
		case strings.HasPrefix(rest, "Sleeping "):
			e = event{pid: pid, sleep: strings.TrimPrefix(rest, "Sleeping ")}
		case strings.HasPrefix(rest, "Done sleeping for "):
			e = event{pid: pid, done: true, sleep: strings.TrimPrefix(rest, "Done sleeping for ")}
		case strings.HasPrefix(l, "Finished in ") && strings.HasSuffix(l, " second(s)"):
			s.finished = true
			continue
		default:
			s.other = append(s.other, l)
			continue
		}
		s.events = append(s.events, e)
	}
	return secs
}

// TestOrdering checks, from the lines the workers printed, that apply ran
// the calls one after the other and that apply_async, map and map_async ran
// them side by side in distinct workers. It does not look at the timings:
// they are printed for people, and tests do not assert speed.
func TestOrdering(t *testing.T) {
	// 300 ms leaves a loaded machine ample time to start all four calls
	// before the first one ends.
	out := extest.Run(t, extest.Build(t), "-sleep", "300ms")
	secs := parse(t, out)
	wantTitles := []string{
		"for i in range(4): pool.apply(do_something, (300ms,))",
		"for i in range(4): pool.apply_async(do_something, (300ms,))",
		"pool.map(do_something, [300ms 600ms 900ms 1.2s])",
		"pool.map_async(do_something, [300ms 600ms 900ms 1.2s])",
	}
	if len(secs) != len(wantTitles) {
		t.Fatalf("got %d sections, want %d:\n%s", len(secs), len(wantTitles), out)
	}
	for i, s := range secs {
		if s.title != wantTitles[i] {
			t.Errorf("section %d is %q, want %q", i, s.title, wantTitles[i])
		}
		if !s.finished {
			t.Errorf("section %q has no Finished line", s.title)
		}
		if len(s.events) != 8 {
			t.Errorf("section %q: %d worker lines, want 8 (4 Sleeping, 4 Done)", s.title, len(s.events))
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	t.Run("apply is sequential", func(t *testing.T) {
		s := secs[0]
		for i := 0; i < len(s.events); i += 2 {
			start, end := s.events[i], s.events[i+1]
			if start.done || !end.done || start.pid != end.pid {
				t.Errorf("lines %d and %d are %+v, %+v; want each Sleeping followed by its own Done", i, i+1, start, end)
			}
		}
	})
	concurrent := func(t *testing.T, s section, sleeps ...string) {
		t.Helper()
		pids := map[string]bool{}
		var got []string
		for i, e := range s.events {
			if want := i >= 4; e.done != want {
				t.Errorf("line %d is %+v; want all four Sleeping lines before any Done line", i, e)
			}
			if !e.done {
				pids[e.pid] = true
				got = append(got, e.sleep)
			}
		}
		if len(pids) != 4 {
			t.Errorf("calls ran in %d distinct workers, want 4", len(pids))
		}
		if !sameSet(got, sleeps) {
			t.Errorf("sleeps %q, want %q in any order", got, sleeps)
		}
	}
	t.Run("apply_async is concurrent", func(t *testing.T) {
		concurrent(t, secs[1], "300ms", "300ms", "300ms", "300ms")
	})
	t.Run("map is concurrent", func(t *testing.T) {
		concurrent(t, secs[2], "300ms", "600ms", "900ms", "1.2s")
	})
	t.Run("map_async is concurrent and returns at once", func(t *testing.T) {
		concurrent(t, secs[3], "300ms", "600ms", "900ms", "1.2s")
		if want := []string{"map_async returned at once; the main process goes on"}; !slices.Equal(secs[3].other, want) {
			t.Errorf("other lines %q, want %q", secs[3].other, want)
		}
	})
}

func sameSet(a, b []string) bool {
	count := map[string]int{}
	for _, x := range a {
		count[x]++
	}
	for _, x := range b {
		count[x]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}
