#!/usr/bin/env python3
"""CPython side of cmd/mpbench: multiprocessing measured the way the Go rows are.

Usage:
    mpbench.py ROW [--reps N] [--start-method spawn|fork|forkserver]
    mpbench.py --list      # one JSON line per row: name, unit, higher_is_better
    mpbench.py --probe     # interpreter, version and the start method that would be used

A row run prints one JSON line last on stdout:
    {"name": ROW, "unit": ..., "value": median, "samples": [...], ...}
after one warm-up sample at a tenth of the work size (so a slow row stays well inside the
Go harness's per-row time limit) and N measured samples (default 5).

Work sizes are multiplied by $MPBENCH_SCALE (default 1; `mpbench -quick` passes 0.1), so a
smoke run is quick. The start method defaults to the platform's (fork on Linux with 3.11).
Standard library only. Units: MB and GB are 1e6 and 1e9 bytes.

Pool and executor setup is excluded from the throughput and latency rows: the pool is
created and every worker has answered before the clock starts. Only pool_startup and
seed_primes include it.
"""

import argparse
import gc
import json
import multiprocessing
import os
import signal
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

SCALE = float(os.environ.get("MPBENCH_SCALE", "1"))
WARMUP_FRACTION = 0.1
WORKERS = 2

perf = time.perf_counter

# ---- functions run in the children (module level, so spawn can import them) ----


def noop():
    pass


def sq(x):
    return x * x


def ident(x):
    return x


def pid_after(delay):
    time.sleep(delay)
    return os.getpid()


def prime_factors(n):
    """Trial division up to the square root of what is left of n.

    The seed program bounds the loop by the square root of the original n instead, which
    is 4x slower here for the same result; this form is the one ANCHORS.md's seed.* rows
    (and the Go counterpart of seed_primes) use, so their figures compare.
    """
    factors = []
    i = 2
    while i * i <= n:
        while n % i == 0:
            factors.append(i)
            n //= i
        i += 1
    if n > 1:
        factors.append(n)
    return factors


def process_range(start, end):
    for i in range(start, end):
        prime_factors(i)


# ---- helpers ----


def size(base, scale):
    """base scaled, at least 1."""
    return max(1, round(base * scale))


def wait_ready(submit, workers=WORKERS, timeout=60.0):
    """Returns once `workers` distinct worker processes have each run a task.

    submit(fn, arg) must run fn(arg) in a worker and return an object with .get() or
    .result(). Each round asks every
    worker at once for its pid after a short sleep, so an idle worker has to take a task.
    """
    seen = set()
    deadline = perf() + timeout
    while len(seen) < workers:
        if perf() > deadline:
            raise RuntimeError(f"only {len(seen)} of {workers} workers answered in {timeout}s")
        futures = [submit(pid_after, 0.02) for _ in range(workers)]
        for f in futures:
            seen.add(f.get() if hasattr(f, "get") else f.result())


def ready_pool(ctx):
    pool = ctx.Pool(WORKERS)
    wait_ready(lambda fn, arg: pool.apply_async(fn, (arg,)))
    return pool


def ready_executor(ctx):
    ex = ProcessPoolExecutor(WORKERS, mp_context=ctx)
    wait_ready(ex.submit)
    return ex


def closing(pool):
    """Graceful teardown, outside any timed region."""
    pool.close()
    pool.join()


def vm_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6  # kB (KiB) -> MB
    raise RuntimeError(f"no VmRSS for pid {pid}")


def private_mb(pid):
    # Private_Clean + Private_Dirty of /proc/PID/smaps_rollup: the pages only this process
    # maps (its unique set), which RSS mixes with pages shared with the parent and siblings.
    total = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total * 1024 / 1e6


# ---- rows: name -> (unit, higher_is_better, fn(ctx, scale) -> one sample) ----

ROWS = {}


def row(name, unit, higher_is_better=False):
    def register(fn):
        ROWS[name] = (unit, higher_is_better, fn)
        return fn

    return register


@row("process_start", "ms/proc")
def process_start(ctx, scale):
    n = size(10, scale)
    t0 = perf()
    for _ in range(n):
        p = ctx.Process(target=noop)
        p.start()
        p.join()
    return (perf() - t0) * 1e3 / n


@row("process_start_handshake", "ms/proc")
def process_start_handshake(ctx, scale):
    # Process.start() returns once the child exists; it does not wait for the child to be
    # ready to run the target, so this is a lower bound for what the Go row measures.
    n = size(10, scale)
    total = 0.0
    for _ in range(n):
        p = ctx.Process(target=noop)
        t0 = perf()
        p.start()
        total += perf() - t0
        p.join()
    return total * 1e3 / n


@row("pool_startup", "ms")
def pool_startup(ctx, scale):
    t0 = perf()
    pool = ctx.Pool(WORKERS)
    pool.apply(sq, (1,))
    dt = perf() - t0
    closing(pool)
    return dt * 1e3


def _pool_map(ctx, scale, chunksize):
    n = size(1_000_000, scale)
    pool = ready_pool(ctx)
    try:
        t0 = perf()
        pool.map(sq, range(n), chunksize)
        dt = perf() - t0
    finally:
        closing(pool)
    return n / dt


@row("pool_map_trivial", "items/s", True)
def pool_map_trivial(ctx, scale):
    return _pool_map(ctx, scale, None)


@row("pool_map_trivial.chunk_10000", "items/s", True)
def pool_map_trivial_chunk(ctx, scale):
    return _pool_map(ctx, scale, 10000)


@row("apply_latency", "us/call")
def apply_latency(ctx, scale):
    n = size(2000, scale)
    pool = ready_pool(ctx)
    try:
        t0 = perf()
        for i in range(n):
            pool.apply(ident, (i,))
        dt = perf() - t0
    finally:
        closing(pool)
    return dt * 1e6 / n


@row("apply_async_throughput", "tasks/s", True)
def apply_async_throughput(ctx, scale):
    n = size(100_000, scale)
    pool = ready_pool(ctx)
    try:
        t0 = perf()
        results = [pool.apply_async(ident, (i,)) for i in range(n)]
        for r in results:
            r.get()
        dt = perf() - t0
    finally:
        closing(pool)
    return n / dt


@row("executor_submit_throughput", "tasks/s", True)
def executor_submit_throughput(ctx, scale):
    n = size(100_000, scale)
    ex = ready_executor(ctx)
    try:
        t0 = perf()
        futures = [ex.submit(ident, i) for i in range(n)]
        for f in futures:
            f.result()
        dt = perf() - t0
    finally:
        ex.shutdown(wait=True)
    return n / dt


@row("executor_map", "items/s", True)
def executor_map(ctx, scale):
    n = size(1_000_000, scale)
    ex = ready_executor(ctx)
    try:
        t0 = perf()
        for _ in ex.map(sq, range(n), chunksize=1000):
            pass
        dt = perf() - t0
    finally:
        ex.shutdown(wait=True)
    return n / dt


@row("seed_primes", "s")
def seed_primes(ctx, scale):
    # The seed program: factor every n in [1e9, 1e9+10000), split into WORKERS ranges
    # with starmap, end to end including the pool's creation and close/join.
    start = 1_000_000_000
    end = start + size(10_000, scale)
    step = (end - start) // WORKERS
    chunks = [(start + i * step, start + (i + 1) * step if i < WORKERS - 1 else end) for i in range(WORKERS)]
    t0 = perf()
    pool = ctx.Pool(WORKERS)
    pool.starmap(process_range, chunks)
    pool.close()
    pool.join()
    return perf() - t0


def mean_over_workers(ctx, measure):
    # measure(pid) of each idle worker of a ready pool (each has run a task), mean. Pool
    # keeps its workers in the private _pool list; there is no public accessor.
    pool = ready_pool(ctx)
    try:
        values = [measure(p.pid) for p in pool._pool]
    finally:
        closing(pool)
    return sum(values) / len(values)


@row("pool_worker_rss", "MB")
def pool_worker_rss(ctx, scale):
    # Resident memory of an idle worker.
    return mean_over_workers(ctx, vm_rss_mb)


@row("pool_worker_private", "MB")
def pool_worker_private(ctx, scale):
    # The same workers' private memory (Private_Clean + Private_Dirty, smaps_rollup).
    return mean_over_workers(ctx, private_mb)


def suicide(_):
    os.kill(os.getpid(), signal.SIGKILL)


KILLED_TIMEOUT = 2.0


@row("pool_worker_killed", "ms")
def pool_worker_killed(ctx, scale):
    # Time from apply_async of a task whose worker is SIGKILLed to its outcome. CPython's
    # Pool never answers such a task (the result stays pending forever), so this waits
    # KILLED_TIMEOUT seconds and reports that: a lower bound for "never".
    pool = ready_pool(ctx)
    try:
        t0 = perf()
        try:
            pool.apply_async(suicide, (0,)).get(KILLED_TIMEOUT)
        except Exception:
            pass
        return (perf() - t0) * 1e3
    finally:
        pool.terminate()
        pool.join()


# ---- command line ----


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("row", nargs="?", help="row to run (see --list)")
    ap.add_argument("--reps", type=int, default=5, help="measured samples after the warm-up")
    ap.add_argument("--start-method", choices=["spawn", "fork", "forkserver"], default=None)
    ap.add_argument("--list", action="store_true", help="list the rows as JSON lines")
    ap.add_argument("--probe", action="store_true", help="describe the interpreter as JSON")
    args = ap.parse_args()

    ctx = multiprocessing.get_context(args.start_method)
    if args.list:
        for name, (unit, higher, _) in ROWS.items():
            print(json.dumps({"name": name, "unit": unit, "higher_is_better": higher}))
        return 0
    if args.probe:
        print(json.dumps({
            "executable": sys.executable,
            "python": sys.version.split()[0],
            "start_method": ctx.get_start_method(),
        }))
        return 0
    if args.row not in ROWS:
        ap.error(f"unknown row {args.row!r}; rows: {', '.join(ROWS)}")
    if args.reps < 1:
        ap.error("--reps must be at least 1")

    unit, higher, fn = ROWS[args.row]
    fn(ctx, SCALE * WARMUP_FRACTION)
    samples = []
    for _ in range(args.reps):
        # Each sample starts after a full collection, as the Go side's start after
        # runtime.GC(): neither side's samples inherit the last one's garbage.
        gc.collect()
        samples.append(fn(ctx, SCALE))
    print(json.dumps({
        "name": args.row,
        "unit": unit,
        "value": statistics.median(samples),
        "samples": samples,
        "higher_is_better": higher,
        "start_method": ctx.get_start_method(),
        "python": sys.version.split()[0],
        "scale": SCALE,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
