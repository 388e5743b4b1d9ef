#!/usr/bin/env python3
"""CPython side of cmd/mpbench's queue rows (rows_ipc_queue.go): multiprocessing.Queue
measured the way the Go rows are. Same command line and output as mpbench.py, whose
harness it reuses:

    queue_rows.py ROW [--reps N] [--start-method spawn|fork|forkserver]

Items of queue_small are (i, 'hello', 3.14); consumers stop after their share, so no
sentinel is needed; the clock runs from a Barrier that every process (and the parent)
waits on to the last process joined (queue_small.*) or the last item received
(queue_small.1to1, queue_bandwidth, where the parent is the consumer).
"""

import sys

import mpbench
from mpbench import perf, row, size

ITEM_BYTES = 1 << 20


def _produce(q, start, lo, hi):
    start.wait()
    put = q.put
    for i in range(lo, hi):
        put((i, "hello", 3.14))


def _consume(q, start, n):
    start.wait()
    get = q.get
    for _ in range(n):
        get()


@row("queue_small.1to1", "items/s", True)
def queue_small_1to1(ctx, scale):
    n = size(200_000, scale)
    q = ctx.Queue()
    start = ctx.Barrier(2)
    p = ctx.Process(target=_produce, args=(q, start, 0, n))
    p.start()
    start.wait()
    t0 = perf()
    get = q.get
    for _ in range(n):
        get()
    dt = perf() - t0
    p.join()
    return n / dt


@row("queue_small.4to4", "items/s", True)
def queue_small_4to4(ctx, scale):
    n = size(200_000, scale) // 4 * 4
    q = ctx.Queue()
    start = ctx.Barrier(9)
    per = n // 4
    ps = [ctx.Process(target=_produce, args=(q, start, k * per, (k + 1) * per)) for k in range(4)]
    ps += [ctx.Process(target=_consume, args=(q, start, per)) for _ in range(4)]
    for p in ps:
        p.start()
    start.wait()
    t0 = perf()
    for p in ps:
        p.join()
    return n / (perf() - t0)


def _produce_bytes(q, start, n):
    b = bytes(ITEM_BYTES)
    start.wait()
    for _ in range(n):
        q.put(b)


@row("queue_bandwidth", "GB/s", True)
def queue_bandwidth(ctx, scale):
    n = size(1000, scale)
    q = ctx.Queue()
    start = ctx.Barrier(2)
    p = ctx.Process(target=_produce_bytes, args=(q, start, n))
    p.start()
    start.wait()
    t0 = perf()
    for _ in range(n):
        if len(q.get()) != ITEM_BYTES:
            raise RuntimeError("short item")
    dt = perf() - t0
    p.join()
    return n * ITEM_BYTES / dt / 1e9


if __name__ == "__main__":
    sys.exit(mpbench.main())
