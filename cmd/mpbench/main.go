// Command mpbench runs the multiproc benchmarks side by side with their CPython
// counterparts and with this machine's limits, all measured in the same run, and prints a
// table of medians with the ratios that matter: Go against CPython, Go against the limit.
//
// Usage:
//
//	go run ./cmd/mpbench                         # every row, 5 samples each
//	go run ./cmd/mpbench -only 'process_start'   # some rows (plus the limits they need)
//	go run ./cmd/mpbench -quick -reps 1          # smoke run at a tenth of the work
//	go run ./cmd/mpbench -json                   # one JSON object per row
//	go run ./cmd/mpbench -list                   # what each row measures
//
// The CPython side runs bench/python/mpbench.py with python3 from PATH (or -python), one
// interpreter per row, in the platform's default start method (or -py-start). Without an
// interpreter that side is skipped with a notice.
//
// Rows live in per-topic files (rows_limits.go, rows_process.go, …), each registering
// [Row] values with register from an init function; see rows.go. The limit rows re-execute
// mpbench itself as a bare child selected by $MPBENCH_LIMIT_CHILD, which main checks
// before anything else, so they measure what the kernel and the Go runtime allow without
// the library.
//
// mpbench does not judge: it prints numbers and ratios, and exits non-zero only when a
// measurement failed.
package main

import (
	"os"

	"github.com/multiproc-go/multiproc"
)

func main() {
	limitChildMain() // a bare limit child: serves fd 3 and exits, before the library runs
	multiproc.Main()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
