#!/usr/bin/env python3
"""CPython side of cmd/mpbench's manager rows (rows_manager.go): multiprocessing.Manager()
start-up and DictProxy set/get round trips from client processes, measured the way the Go
rows are. Same command line and output as mpbench.py, whose harness it reuses:

    manager_rows.py ROW [--reps N] [--start-method spawn|fork|forkserver]
"""

import sys
import time

import mpbench
from mpbench import perf, row, size

DICT_PAIRS = 5000  # set+get pairs per client at scale 1 (rows_manager.go: dictPairs)


@row("manager_start", "ms")
def manager_start(ctx, scale):
    t0 = perf()
    m = ctx.Manager()
    dt = perf() - t0
    m.shutdown()
    return dt * 1e3


def _client(d, k, n, start, out):
    start.wait()
    t0 = time.time()
    for i in range(n):
        d[k] = i
        if d[k] != i:
            raise RuntimeError("wrong value")
    out.put((t0, time.time()))


def _dict_ops(ctx, scale, clients):
    n = size(DICT_PAIRS, scale)
    with ctx.Manager() as m:
        d = m.dict()
        start = ctx.Barrier(clients)
        out = ctx.Queue()
        ps = [ctx.Process(target=_client, args=(d, "k%d" % i, n, start, out)) for i in range(clients)]
        for p in ps:
            p.start()
        spans = [out.get() for _ in ps]
        for p in ps:
            p.join()
    t0 = min(s for s, _ in spans)
    t1 = max(e for _, e in spans)
    return 2 * n * clients / (t1 - t0)


@row("manager_dict_ops", "ops/s", True)
def manager_dict_ops(ctx, scale):
    return _dict_ops(ctx, scale, 1)


@row("manager_dict_ops.latency", "us/op")
def manager_dict_ops_latency(ctx, scale):
    return 1e6 / _dict_ops(ctx, scale, 1)


@row("manager_dict_ops_4clients", "ops/s", True)
def manager_dict_ops_4clients(ctx, scale):
    return _dict_ops(ctx, scale, 4)


if __name__ == "__main__":
    sys.exit(mpbench.main())
