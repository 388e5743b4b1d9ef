// Command primes ports the seed article's prime factorisation demo: factor
// every number in [1e9, 1e9+10000) with a Pool(72) and Pool.starmap over
// (start, end) ranges, and print how long it took.
//
//	def prime_factors(n):
//	    factors = []
//	    for i in range(2, int(n**0.5) + 1):
//	        while n % i == 0:
//	            factors.append(i)
//	            n //= i
//	    if n > 2:
//	        factors.append(n)
//	    return factors
//
//	def process_range(start, end):
//	    for i in range(start, end):
//	        prime_factors(i)
//
//	chunks = [(start_num + i * step, start_num + (i + 1) * step) for i in range(num_processes)]
//	with Pool(processes=num_processes) as pool:
//	    pool.starmap(process_range, chunks)
//	print(f"running time: {end_time - start_time:.6f} seconds")
//
// It runs the same work with Pool(2), with the seed's Pool(72), and with
// two goroutines in this process as the baseline: on a machine with few
// cores, 72 processes only add start-up time and contention. The pool
// timings include starting the pool, as the seed's do.
//
// Two deliberate differences from the seed: trial division stops at the
// square root of what remains of n, not of the original n (same factors,
// far less work for numbers with small factors), and the ranges cover the
// whole interval (the seed's integer step drops the last 10000 % 72
// numbers). process_range returns how many primes it found, so that the
// three runs can be checked against each other.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/multiproc-go/multiproc"
)

// primeFactors returns the prime factors of n > 1, smallest first.
func primeFactors(n int) []int {
	var factors []int
	for i := 2; i*i <= n; i++ {
		for n%i == 0 {
			factors = append(factors, i)
			n /= i
		}
	}
	if n > 1 {
		factors = append(factors, n)
	}
	return factors
}

// countPrimes factors every number in [start, end) and returns how many of
// them are prime (have a single factor).
func countPrimes(start, end int) int {
	primes := 0
	for i := start; i < end; i++ {
		if len(primeFactors(i)) == 1 {
			primes++
		}
	}
	return primes
}

// processRange is the seed's process_range, registered so that pool workers
// can run it; Register2 makes it take (start, end) pairs for Starmap.
var processRange = multiproc.Register2("primes.process_range",
	func(_ context.Context, start, end int) (int, error) {
		return countPrimes(start, end), nil
	})

// chunks splits [start, end) into n ranges whose sizes differ by at most one.
func chunks(start, end, n int) []multiproc.Args2[int, int] {
	out := make([]multiproc.Args2[int, int], 0, n)
	size, extra := (end-start)/n, (end-start)%n
	lo := start
	for i := range n {
		hi := lo + size
		if i < extra {
			hi++
		}
		out = append(out, multiproc.Pack2(lo, hi))
		lo = hi
	}
	return out
}

func main() {
	multiproc.Main() // Go's `if __name__ == "__main__":`; must come first
	start := flag.Int("start", 1_000_000_000, "first number to factor")
	count := flag.Int("n", 10_000, "how many numbers to factor")
	flag.Parse()
	if err := run(context.Background(), *start, *start+*count); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, start, end int) error {
	fmt.Printf("factoring [%d, %d)\n", start, end)
	for _, processes := range []int{2, 72} {
		t0 := time.Now()
		primes, err := withPool(ctx, processes, start, end)
		if err != nil {
			return err
		}
		fmt.Printf("Pool(%d): %d primes, running time: %.6f seconds\n", processes, primes, time.Since(t0).Seconds())
	}
	t0 := time.Now()
	primes := withGoroutines(2, start, end)
	fmt.Printf("2 goroutines: %d primes, running time: %.6f seconds\n", primes, time.Since(t0).Seconds())
	return nil
}

// withPool is the seed's main: a Pool(processes) runs process_range over
// one range per process with Starmap.
func withPool(ctx context.Context, processes, start, end int) (int, error) {
	pool, err := multiproc.NewPool(ctx, processes)
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	// Chunksize(1): one range per task, as the seed's one range per process.
	counts, err := multiproc.Starmap(ctx, pool, processRange, chunks(start, end, processes), multiproc.Chunksize(1))
	if err != nil {
		return 0, err
	}
	if err := pool.Close(); err != nil {
		return 0, err
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	return total, nil
}

// withGoroutines does the same work in this process with n goroutines.
func withGoroutines(n, start, end int) int {
	counts := make([]int, n)
	var wg sync.WaitGroup
	for i, c := range chunks(start, end, n) {
		wg.Go(func() { counts[i] = countPrimes(c.V1, c.V2) })
	}
	wg.Wait()
	total := 0
	for _, c := range counts {
		total += c
	}
	return total
}
