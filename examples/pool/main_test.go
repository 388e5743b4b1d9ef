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

// TestOutput runs the example and checks every section's output. The
// apply_async callbacks run in completion order, so their lines are checked
// as a set.
func TestOutput(t *testing.T) {
	out := extest.Run(t, extest.Build(t))
	lines := extest.Lines(out)

	var results []string
	var rest []string
	for _, l := range lines {
		if strings.HasPrefix(l, "Result: ") {
			results = append(results, l)
			continue
		}
		rest = append(rest, l)
	}
	slices.Sort(results)
	if want := []string{"Result: 0", "Result: 1", "Result: 4", "Result: 9"}; !slices.Equal(results, want) {
		t.Errorf("callback lines (sorted) = %q, want %q", results, want)
	}

	want := []string{
		"== Pool(5).map(f, [1..10])",
		"[1 4 9 16 25 36 49 64 81 100]",
		"== Pool(4).map(square, [1 2 3 4])",
		"[1 4 9 16]",
		"== Pool(4).apply_async(square, (i,), callback=print_result) for i in range(4)",
		"== Pool(4).map(worker_function, range(10))",
		"[0 1 4 9 16 25 36 49 64 81]",
		"== Pool(4).apply(square, (7,))",
		"49",
		"== Pool(4).apply_async(power, args=(2, 10)).get()",
		"task submitted, running in the background...",
		"1024",
		"== Pool(4).starmap(power, [(2, 3), (3, 2), (10, 3)])",
		"[8 9 1000]",
		"== Pool(4).map_async(square, range(10), callback=print)",
		"map_async returned at once; the main process goes on",
		"callback: [0 1 4 9 16 25 36 49 64 81]",
		"get: [0 1 4 9 16 25 36 49 64 81]",
	}
	if !slices.Equal(rest, want) {
		t.Errorf("output without the callback lines:\n got %q\nwant %q", rest, want)
	}
	// The four callback lines belong to their section: Close waited for
	// them before the next section started.
	i := slices.Index(lines, want[4])
	if i < 0 || len(lines) < i+5 {
		t.Fatalf("no four lines after %q:\n%s", want[4], out)
	}
	for _, l := range lines[i+1 : i+5] {
		if !strings.HasPrefix(l, "Result: ") {
			t.Errorf("line %q after %q, want the four callback lines first", l, want[4])
		}
	}
}
