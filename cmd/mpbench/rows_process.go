package main

import (
	"context"
	"fmt"
	"time"

	"github.com/multiproc-go/multiproc"
)

// processStarts is the number of sequential processes in one sample at scale 1.
const processStarts = 10

// noop is the target of the process rows: the cost measured is the library's alone.
var noop = multiproc.Register("mpbench.noop", func(context.Context, struct{}) (struct{}, error) {
	return struct{}{}, nil
})

func init() {
	register(
		Row{
			Name: "process_start", Unit: "ms/proc",
			Doc:    "Process(noop): Start + Join, 10 in sequence, mean per process",
			Go:     processStart,
			Python: PyRow{Name: "process_start"},
			Limit:  "limit.reexec_handshake_and_wait",
		},
		Row{
			Name: "process_start_handshake", Unit: "ms/proc",
			Doc:    "Process(noop): Start alone (returns after the child's handshake); Join untimed",
			Go:     processStartHandshake,
			Python: PyRow{Name: "process_start_handshake"},
			Limit:  "limit.reexec_handshake_first_byte",
			Note: "CPython's start() returns as soon as the child exists, without waiting for it to " +
				"be ready to run the target, so its figure is a lower bound for what the Go row measures.",
		},
	)
}

// processStart measures Start+Join of a no-op process, mean per process in ms.
func processStart(ctx context.Context, env *Env) (float64, error) {
	n := env.N(processStarts)
	start := time.Now()
	for range n {
		p := multiproc.NewProcess(noop, struct{}{})
		if err := p.Start(ctx); err != nil {
			return 0, fmt.Errorf("mpbench: start: %w", err)
		}
		if err := p.Join(ctx); err != nil {
			return 0, fmt.Errorf("mpbench: join: %w", err)
		}
	}
	return time.Since(start).Seconds() * 1e3 / float64(n), nil
}

// processStartHandshake measures Start alone, mean per process in ms; each process is
// joined outside the timed region before the next one starts.
func processStartHandshake(ctx context.Context, env *Env) (float64, error) {
	n := env.N(processStarts)
	var total time.Duration
	for range n {
		p := multiproc.NewProcess(noop, struct{}{})
		start := time.Now()
		err := p.Start(ctx)
		total += time.Since(start)
		if err != nil {
			return 0, fmt.Errorf("mpbench: start: %w", err)
		}
		if err := p.Join(ctx); err != nil {
			return 0, fmt.Errorf("mpbench: join: %w", err)
		}
	}
	return total.Seconds() * 1e3 / float64(n), nil
}
