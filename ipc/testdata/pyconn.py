"""The Python side of ipc's interop tests (python_test.go) and of examples/pyconn.

usage: pyconn.py client|server|idle FAMILY ADDRESS KEYHEX

client: connect with multiprocessing.connection.Client and run the exchange;
server: listen with multiprocessing.connection.Listener, accept one, run it;
idle:   connect, then only read until the Go side closes (a peer that never
        sends a build-id hello).

The exchange: send b"hello from python", receive a message and send it back
upper-cased, receive a large message and send its sha256, receive into a
buffer that is too short (BufferTooShort carries it) and send its length,
then close. Every step prints one line, so a failure says where it stopped.
"""
import hashlib
import sys
from multiprocessing import connection


def exchange(c):
    c.send_bytes(b"hello from python")
    m = c.recv_bytes()
    c.send_bytes(m.upper())
    big = c.recv_bytes()
    c.send_bytes(hashlib.sha256(big).digest())
    buf = bytearray(4)
    try:
        c.recv_bytes_into(buf)
        c.send_bytes(b"no BufferTooShort")
    except connection.BufferTooShort as e:
        c.send_bytes(str(len(e.args[0])).encode())
    try:
        c.recv_bytes()
        print("no EOF after the Go side closed", flush=True)
        sys.exit(1)
    except EOFError:
        pass
    c.close()


def main():
    role, family, address, key = sys.argv[1], sys.argv[2], sys.argv[3], bytes.fromhex(sys.argv[4])
    if family == "AF_INET":
        host, port = address.rsplit(":", 1)
        address = (host, int(port))
    if role == "server":
        with connection.Listener(address, family=family, authkey=key) as l:
            a = l.address
            if isinstance(a, tuple):
                a = "%s:%d" % a
            print("listening", a, flush=True)
            c = l.accept()
            exchange(c)
    elif role == "client":
        exchange(connection.Client(address, family=family, authkey=key))
    elif role == "idle":
        c = connection.Client(address, family=family, authkey=key)
        try:
            while True:
                c.recv_bytes()
        except (EOFError, OSError):
            pass
    print("done", flush=True)


if __name__ == "__main__":
    main()
