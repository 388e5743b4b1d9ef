package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

func TestMain(m *testing.M) {
	multiproc.Main() // the example's hosts are this test binary, run again
	testutil.Run(m)
}

func isPrime(n int) bool {
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return n >= 2
}

// TestOutput runs the example on a small range with its embedded server
// and two local hosts, and checks the count against its own.
func TestOutput(t *testing.T) {
	const start, n = 1_000_000_000, 200
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, &out, "", start, start+n); err != nil {
		t.Fatal(err)
	}
	primes := 0
	for i := start; i < start+n; i++ {
		if isPrime(i) {
			primes++
		}
	}
	want := []string{
		fmt.Sprintf(`factoring \[%d, %d\) on 2 worker processes`, start, start+n),
		fmt.Sprintf(`%d primes, running time: \d+\.\d{6} seconds`, primes),
		`host \S+:\d+: \d tasks`,
		`host \S+:\d+: \d tasks`,
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, l := range lines {
		if !regexp.MustCompile(`^` + want[i] + `$`).MatchString(l) {
			t.Errorf("line %d:\n got %q\nwant %s", i+1, l, want[i])
		}
	}
}
