#!/usr/bin/env python3
"""CPython side of cmd/mpbench's shared-memory and codec rows (rows_shm.go).

Same command line and output as mpbench.py, whose helpers it uses:
    shm.py ROW [--reps N] [--start-method spawn|fork|forkserver]
    shm.py --list

Standard library only (no numpy): the loops are the ones a program using
multiprocessing's shared ctypes objects would write.
"""

import os
import pickle
import sys
from array import array
from multiprocessing import shared_memory
from multiprocessing.sharedctypes import RawArray

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpbench  # noqa: E402  (the shared harness: row, size, main)

from mpbench import perf, row, size  # noqa: E402

ARRAY_LEN = 10_000_000  # doubles: 80 MB, as rows_shm.go's shmArrayLen
SUM_PASSES = 1  # Go times 16 warm passes; one sum() here already takes ~1.6 s
PAGE = 4096
RECORDS = 1_000_000


def fill(arr):
    """Runs in a child: arr[i] = i for every i, through the shared memory.

    A memoryview slice assignment rather than a per-element loop, so the
    (untimed) fill stays short; the timed part is the parent's sum.
    """
    n = len(arr)
    memoryview(arr).cast("B").cast("d")[:] = array("d", range(n))


def filled_array(ctx, n):
    # lock=False: Array('d', n, lock=False) is a RawArray. With the default
    # lock, every element read is a call that takes the array's lock.
    arr = RawArray("d", n)
    p = ctx.Process(target=fill, args=(arr,))
    p.start()
    p.join()
    if p.exitcode != 0:
        raise RuntimeError(f"filling child exited {p.exitcode}")
    return arr


def check_sum(got, n):
    want = n * (n - 1) / 2
    if got != want:
        raise RuntimeError(f"sum {got}, want {want}")


@row("shared_array_sum", "GB/s", True)
def shared_array_sum(ctx, scale):
    # sum() over the RawArray a child filled, after one untimed pass.
    n = size(ARRAY_LEN, scale)
    arr = filled_array(ctx, n)
    check_sum(sum(arr), n)
    best = float("inf")
    for _ in range(SUM_PASSES):  # the fastest pass counts, as in Go
        t0 = perf()
        sum(arr)
        best = min(best, perf() - t0)
    return n * 8 / best / 1e9


@row("shared_array_sum.cold", "GB/s", True)
def shared_array_sum_cold(ctx, scale):
    n = size(ARRAY_LEN, scale)
    arr = filled_array(ctx, n)
    t0 = perf()
    s = sum(arr)
    dt = perf() - t0
    check_sum(s, n)
    return n * 8 / dt / 1e9


@row("shared_array_create", "ms")
def shared_array_create(ctx, scale):
    # RawArray zero-fills its memory (a memset over every page); then one
    # write per page, as the Go row does through its second mapping.
    n = size(ARRAY_LEN, scale)
    t0 = perf()
    arr = RawArray("d", n)
    mv = memoryview(arr).cast("B").cast("d")
    for i in range(0, n, PAGE // 8):
        mv[i] = 1.0
    dt = perf() - t0
    mv.release()
    del arr
    return dt * 1e3


@row("shared_array_create.shared_memory", "ms")
def shared_array_create_shared_memory(ctx, scale):
    nbytes = size(ARRAY_LEN, scale) * 8
    t0 = perf()
    a = shared_memory.SharedMemory(create=True, size=nbytes)
    b = shared_memory.SharedMemory(name=a.name)
    buf = b.buf
    for i in range(0, nbytes, PAGE):
        buf[i] = 1
    dt = perf() - t0
    del buf
    b.close()
    a.close()
    a.unlink()
    return dt * 1e3


@row("codec_small_record", "ns/record")
def codec_small_record(ctx, scale):
    # What a multiprocessing queue or pipe does to each item: pickle.dumps
    # and pickle.loads of the tuple (default protocol).
    n = size(RECORDS, scale)
    dumps, loads = pickle.dumps, pickle.loads
    t0 = perf()
    for i in range(n):
        r = loads(dumps((i, "hello", 3.14)))
    dt = perf() - t0
    if r[0] != n - 1:
        raise RuntimeError(f"last record {r}")
    return dt * 1e9 / n


if __name__ == "__main__":
    # Rows register into mpbench's table; its main does the rest. Keep only
    # this script's rows, so --list shows what this script measures.
    mine = {k: v for k, v in mpbench.ROWS.items() if v[2].__module__ == __name__}
    mpbench.ROWS.clear()
    mpbench.ROWS.update(mine)
    sys.exit(mpbench.main())
