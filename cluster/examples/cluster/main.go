// Command cluster runs the seed's prime factorisation (see examples/primes)
// on a cluster pool: the same Starmap call, its tasks carried by NATS
// JetStream to worker hosts.
//
// With no flags it needs no set-up: the pool starts an embedded NATS server
// and two worker hosts of its own on this machine (this same program, run
// again with MULTIPROC_CLUSTER set), each with one worker process.
//
//	go run ./examples/cluster
//
// On a real cluster, start worker hosts on the other machines (the same
// binary; the variable makes Main serve as a host until SIGTERM), then the
// program pointing at the same server:
//
//	MULTIPROC_CLUSTER=nats://nats.example:4222 ./cluster    # on each worker machine
//	./cluster -url nats://nats.example:4222                  # the submitting program
//
// Anyone who can publish on the task subjects can run the program's
// registered functions: give the server authentication and TLS (see the
// cluster package's documentation) and pass the credentials to both sides
// with NATSOptions and HostNATSOptions.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/cluster"
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

// processRange is the seed's process_range: it factors every number in
// [start, end) and returns how many are prime.
var processRange = multiproc.Register2("cluster-example.process_range",
	func(_ context.Context, start, end int) (int, error) {
		primes := 0
		for i := start; i < end; i++ {
			if len(primeFactors(i)) == 1 {
				primes++
			}
		}
		return primes, nil
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
	multiproc.Main() // a worker host (MULTIPROC_CLUSTER set) never returns from here
	url := flag.String("url", "", "NATS URL of an existing cluster (default: an embedded server with two local hosts)")
	start := flag.Int("start", 1_000_000_000, "first number to factor")
	count := flag.Int("n", 10_000, "how many numbers to factor")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, *url, *start, *start+*count); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, w io.Writer, url string, start, end int) error {
	opt := cluster.Backend(cluster.LocalHosts(2, 1))
	if url != "" {
		opt = cluster.Backend(cluster.URL(url))
	}
	pool, err := multiproc.NewPool(ctx, 2, opt)
	if err != nil {
		return err
	}
	defer pool.Close()
	fmt.Fprintf(w, "factoring [%d, %d) on %d worker processes\n", start, end, pool.Stats().Workers)
	t0 := time.Now()
	// Eight ranges, one per task: each host takes one while it has a free
	// worker, so both hosts stay busy.
	counts, err := multiproc.Starmap(ctx, pool, processRange, chunks(start, end, 8), multiproc.Chunksize(1))
	if err != nil {
		return err
	}
	elapsed := time.Since(t0)
	total := 0
	for _, c := range counts {
		total += c
	}
	fmt.Fprintf(w, "%d primes, running time: %.6f seconds\n", total, elapsed.Seconds())
	for _, h := range pool.Stats().PerHost {
		fmt.Fprintf(w, "host %s: %d tasks\n", h.Host, h.Done)
	}
	return pool.Close()
}
