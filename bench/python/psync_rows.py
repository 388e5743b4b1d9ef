#!/usr/bin/env python3
"""CPython side of cmd/mpbench's psync rows (rows_psync.go): multiprocessing's Lock,
Value.get_lock() and Event, measured the way the Go rows are. Same command line and output
as mpbench.py, whose harness it reuses:

    psync_rows.py ROW [--reps N] [--start-method spawn|fork|forkserver]
"""

import sys

import mpbench
from mpbench import perf, row, size


@row("lock_uncontended", "ops/s", True)
def lock_uncontended(ctx, scale):
    n = size(5_000_000, scale)
    lock = ctx.Lock()
    acquire, release = lock.acquire, lock.release
    t0 = perf()
    for _ in range(n):
        acquire()
        release()
    return n / (perf() - t0)


def _incr(v, start, n):
    start.wait()
    for _ in range(n):
        with v.get_lock():
            v.value += 1


@row("lock_contended", "incr/s", True)
def lock_contended(ctx, scale):
    n = size(1_000_000, scale)
    v = ctx.Value("i", 0)
    start = ctx.Barrier(3)
    ps = [ctx.Process(target=_incr, args=(v, start, n)) for _ in range(2)]
    for p in ps:
        p.start()
    start.wait()
    t0 = perf()
    for p in ps:
        p.join()
    dt = perf() - t0
    if v.value != 2 * n:
        raise RuntimeError(f"counter {v.value}, want {2 * n}")
    return 2 * n / dt


def _pong(ping, pong, n):
    for _ in range(n):
        ping.wait()
        ping.clear()
        pong.set()


@row("event_pingpong", "rt/s", True)
def event_pingpong(ctx, scale):
    n = size(20000, scale)
    ping, pong = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_pong, args=(ping, pong, n + 1))
    p.start()

    def one():
        ping.set()
        pong.wait()
        pong.clear()

    one()  # the child is running
    t0 = perf()
    for _ in range(n):
        one()
    dt = perf() - t0
    p.join()
    return n / dt


if __name__ == "__main__":
    sys.exit(mpbench.main())
