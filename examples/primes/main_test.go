package main

import (
	"fmt"
	"regexp"
	"slices"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/examples/internal/extest"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

func TestMain(m *testing.M) {
	multiproc.Main()
	testutil.Run(m)
}

// isPrime is an independent check of the example's count.
func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// TestOutput runs the example on a small range (the seed's 10000 numbers
// are for people; 150 keep the test quick) and checks that Pool(2),
// Pool(72) and the goroutines each found the primes the test counts itself.
// The timings are printed but not checked.
func TestOutput(t *testing.T) {
	const start, n = 1_000_000_000, 150
	out := extest.Run(t, extest.Build(t), "-start", fmt.Sprint(start), "-n", fmt.Sprint(n))
	primes := 0
	for i := start; i < start+n; i++ {
		if isPrime(i) {
			primes++
		}
	}
	want := []string{
		fmt.Sprintf(`factoring \[%d, %d\)`, start, start+n),
		fmt.Sprintf(`Pool\(2\): %d primes, running time: \d+\.\d{6} seconds`, primes),
		fmt.Sprintf(`Pool\(72\): %d primes, running time: \d+\.\d{6} seconds`, primes),
		fmt.Sprintf(`2 goroutines: %d primes, running time: \d+\.\d{6} seconds`, primes),
	}
	lines := extest.Lines(out)
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, l := range lines {
		if !regexp.MustCompile(`^` + want[i] + `$`).MatchString(l) {
			t.Errorf("line %d:\n got %q\nwant %s", i+1, l, want[i])
		}
	}
}

func TestPrimeFactors(t *testing.T) {
	tests := []struct {
		n    int
		want []int
	}{
		{2, []int{2}},
		{12, []int{2, 2, 3}},
		{97, []int{97}},
		{1_000_000_000, []int{2, 2, 2, 2, 2, 2, 2, 2, 2, 5, 5, 5, 5, 5, 5, 5, 5, 5}},
		{1_000_000_007, []int{1_000_000_007}},
		{999_999_937 * 2, []int{2, 999_999_937}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			if got := primeFactors(tt.n); !slices.Equal(got, tt.want) {
				t.Errorf("primeFactors(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

// TestChunks guards the fix of the seed's split, which drops the last
// (end-start) % n numbers: the ranges must tile [start, end) exactly.
func TestChunks(t *testing.T) {
	tests := []struct {
		name          string
		start, end, n int
	}{
		{"seed", 1_000_000_000, 1_000_010_000, 72},
		{"even", 0, 10, 2},
		{"fewer numbers than chunks", 5, 8, 4},
		{"one chunk", 3, 9, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := chunks(tt.start, tt.end, tt.n)
			if len(cs) != tt.n {
				t.Fatalf("got %d chunks, want %d", len(cs), tt.n)
			}
			next := tt.start
			minSize, maxSize := tt.end, 0
			for _, c := range cs {
				if c.V1 != next || c.V2 < c.V1 {
					t.Fatalf("chunks %v: %v does not start at %d", cs, c, next)
				}
				next = c.V2
				minSize, maxSize = min(minSize, c.V2-c.V1), max(maxSize, c.V2-c.V1)
			}
			if next != tt.end {
				t.Errorf("chunks end at %d, want %d", next, tt.end)
			}
			if maxSize-minSize > 1 {
				t.Errorf("chunk sizes range from %d to %d, want them to differ by at most 1", minSize, maxSize)
			}
		})
	}
}
