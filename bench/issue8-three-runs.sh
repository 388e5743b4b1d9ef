#!/bin/sh
# Three full runs of the issue-8 rows (and the other pool bars), one after the other, from the
# repository root; build once. Each run prints its start/end uptime. A run whose mpbench exits
# non-zero (one side of a row failed: mpbench still prints the table) is reported and the next
# run goes on, so one failing side does not lose the other runs.
go build -o /tmp/mpb-hot ./cmd/mpbench || exit 1
ROWS='^(apply_latency|apply_latency.loaded|pool_map_trivial|pool_map_trivial.chunk_10000|executor_map|apply_async_throughput|executor_submit_throughput|seed_primes|pool_worker_rss|pool_worker_private|limit.socketpair_pingpong)$'
status=0
for run in 1 2 3; do
  echo "### Run $run"
  echo "start $(date -u +%T) $(uptime)"
  /tmp/mpb-hot -only "$ROWS" -reps 5
  rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "run $run: mpbench exited with status $rc (see the error rows and stderr above)"
    status=1
  fi
  echo "end $(date -u +%T) $(uptime)"
done
exit $status
