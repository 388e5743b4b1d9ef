#!/usr/bin/env python3
"""CPython side of cmd/mpbench's connection rows (rows_ipc_conn.go): multiprocessing's Pipe,
measured the way the Go rows are (a child started outside the timing says b"ready"; the
timed part ends with its b"done"). Same command line and output as mpbench.py, whose harness
it reuses:

    ipc_conn_rows.py ROW [--reps N] [--start-method spawn|fork|forkserver]
"""

import sys

import mpbench
from mpbench import perf, row, size


def _peer(c, mode, n, sz):
    buf = bytearray(b"\x01") * sz  # written, so faulted in before the ready
    if mode == "bytes":
        # One untimed message into buf first, as the Go row does (the
        # first socket copy over a new process's buffers is the slow one).
        if c.recv_bytes_into(buf) != sz:
            raise RuntimeError("short warm-up message")
    c.send_bytes(b"ready")
    if mode == "sink":
        for i in range(n):
            v = c.recv()
            if v[0] != i:
                raise RuntimeError(f"item {i} arrived as {v[0]}")
    elif mode == "echo":
        for _ in range(n):
            c.send(c.recv())
    elif mode == "bytes":
        for _ in range(n):
            if c.recv_bytes_into(buf) != sz:
                raise RuntimeError("short message")
    c.send_bytes(b"done")
    c.close()


def _start(ctx, mode, n, sz=0, warm=None):
    a, b = ctx.Pipe()
    p = ctx.Process(target=_peer, args=(b, mode, n, sz))
    p.start()
    b.close()
    if warm is not None:
        a.send_bytes(warm)
    if a.recv_bytes() != b"ready":
        raise RuntimeError("peer not ready")
    return a, p


def _finish(a, p):
    """Waits for the peer's done and returns when it came, then closes and joins."""
    if a.recv_bytes() != b"done":
        raise RuntimeError("peer not done")
    t = perf()
    a.close()
    p.join()
    if p.exitcode != 0:
        raise RuntimeError(f"peer exit code {p.exitcode}")
    return t


@row("pipe_small_oneway", "msgs/s", True)
def pipe_small_oneway(ctx, scale):
    n = size(100_000, scale)
    a, p = _start(ctx, "sink", n)
    send = a.send
    t0 = perf()
    for i in range(n):
        send((i, "hello", 3.14))
    return n / (_finish(a, p) - t0)


@row("pipe_roundtrip", "rt/s", True)
def pipe_roundtrip(ctx, scale):
    n = size(20_000, scale)
    a, p = _start(ctx, "echo", n)
    send, recv = a.send, a.recv
    t0 = perf()
    for i in range(n):
        send((i, "hello", 3.14))
        if recv()[0] != i:
            raise RuntimeError("wrong answer")
    dt = perf() - t0
    _finish(a, p)
    return n / dt


def _bandwidth(ctx, scale, sz):
    n = max(1, size((256 << 20) // sz, scale))
    msg = bytes(range(256)) * (sz // 256)
    a, p = _start(ctx, "bytes", n, sz, msg)
    t0 = perf()
    for _ in range(n):
        a.send_bytes(msg)
    return n * sz / (_finish(a, p) - t0) / 1e9


@row("pipe_bandwidth.1MiB", "GB/s", True)
def pipe_bandwidth_1mib(ctx, scale):
    return _bandwidth(ctx, scale, 1 << 20)


@row("pipe_bandwidth.64MiB", "GB/s", True)
def pipe_bandwidth_64mib(ctx, scale):
    return _bandwidth(ctx, scale, 64 << 20)


if __name__ == "__main__":
    sys.exit(mpbench.main())
