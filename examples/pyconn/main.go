// Command pyconn exchanges authenticated messages between a Go program and
// a Python program: Go listens with ipc.Listen and the Python option,
// Python connects with multiprocessing.connection.Client and the same
// authkey, and they speak CPython's protocol (its HMAC challenge in both
// directions, its framing; byte messages).
//
// The Python side (started by this program):
//
//	from multiprocessing.connection import Client
//	with Client(address, family="AF_UNIX", authkey=key) as c:
//	    c.send_bytes(b"hello from python")
//	    c.send_bytes(c.recv_bytes().upper())
//
// Run it with
//
//	go run ./examples/pyconn [-python python3.12]
//
// Python 3.12 and later answer with HMAC-SHA256 ("{sha256}"); 3.11 and
// older only know HMAC-MD5, which ipc accepts only with the explicit
// LegacyMD5 option: this program adds it when the interpreter is older
// than 3.12. A wrong key fails on both sides with an authentication error,
// before either decodes a byte of the other's messages.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/multiproc-go/multiproc/ipc"
)

const script = `
import sys
from multiprocessing.connection import Client
with Client(sys.argv[1], family="AF_UNIX", authkey=bytes.fromhex(sys.argv[2])) as c:
    c.send_bytes(b"hello from python")
    c.send_bytes(c.recv_bytes().upper())
`

func main() {
	python := flag.String("python", "python3", "the Python interpreter")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	opts := []ipc.Option{ipc.Python()}
	if legacy, err := olderThan312(*python); err != nil {
		log.Fatal(err)
	} else if legacy {
		opts = append(opts, ipc.LegacyMD5())
	}

	key := make([]byte, 32)
	rand.Read(key)
	dir, err := os.MkdirTemp("", "pyconn")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l, err := ipc.Listen("unix", filepath.Join(dir, "socket"), key, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	cmd := exec.CommandContext(ctx, *python, "-c", script, l.Addr().String(), hex.EncodeToString(key))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	c, err := l.Accept(ctx)
	if err != nil {
		log.Fatal(err)
	}
	m, err := c.RecvBytes(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("go received: %s\n", m)
	if err := c.SendBytes(ctx, []byte("hello from go")); err != nil {
		log.Fatal(err)
	}
	if m, err = c.RecvBytes(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("go received: %s\n", m)
	if _, err := c.RecvBytes(ctx); err != nil {
		fmt.Println("then:", err) // EOF: Python closed its end
	}
	c.Close()
	if err := cmd.Wait(); err != nil {
		log.Fatal(err)
	}
}

// olderThan312 reports whether python is a CPython older than 3.12 (which
// authenticates with HMAC-MD5 only).
func olderThan312(python string) (bool, error) {
	out, err := exec.Command(python, "-c", "import sys; print(sys.version_info >= (3, 12))").Output()
	if err != nil {
		return false, fmt.Errorf("running %s: %w", python, err)
	}
	return strings.TrimSpace(string(out)) == "False", nil
}
