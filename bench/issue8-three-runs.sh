#!/bin/sh
# Three full runs of the issue-8 rows (and the other pool bars), one after the other, from the
# repository root of branch hot; build once. Each run prints its start/end uptime.
set -e
go build -o /tmp/mpb-hot ./cmd/mpbench
ROWS='^(apply_latency|apply_latency.loaded|pool_map_trivial|pool_map_trivial.chunk_10000|executor_map|apply_async_throughput|executor_submit_throughput|seed_primes|pool_worker_rss)$'
for run in 1 2 3; do
  echo "### Run $run"
  echo "start $(date -u +%T) $(uptime)"
  /tmp/mpb-hot -only "$ROWS" -reps 5
  echo "end $(date -u +%T) $(uptime)"
done
