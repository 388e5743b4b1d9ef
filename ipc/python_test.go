package ipc_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/ipc"
)

type python struct {
	path  string
	minor int // 3.minor
	ver   string
}

// pythons finds every CPython >= 3.11 on PATH (python3, python3.N) and
// under pyenv ($PYENV_ROOT or ~/.pyenv), one per distinct interpreter.
func pythons(t *testing.T) []python {
	t.Helper()
	found := findPythons()
	if len(found) == 0 {
		t.Skip("no CPython >= 3.11 on PATH or under pyenv: the Go<->Python interop test needs one")
	}
	return found
}

var findPythons = sync.OnceValue(func() []python {
	var cands []string
	for _, n := range []string{"python3", "python"} {
		if p, err := exec.LookPath(n); err == nil {
			cands = append(cands, p)
		}
	}
	for m := 11; m <= 20; m++ {
		if p, err := exec.LookPath(fmt.Sprintf("python3.%d", m)); err == nil {
			cands = append(cands, p)
		}
	}
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		if h, err := os.UserHomeDir(); err == nil {
			root = filepath.Join(h, ".pyenv")
		}
	}
	if ms, _ := filepath.Glob(filepath.Join(root, "versions", "*", "bin", "python3")); len(ms) > 0 {
		cands = append(cands, ms...)
	}
	seen := map[string]bool{}
	var out []python
	probed := map[string]bool{}
	for _, c := range cands {
		// pyenv's shims are slow scripts for the versions found directly.
		if strings.Contains(c, string(filepath.Separator)+"shims"+string(filepath.Separator)) {
			continue
		}
		if r, err := filepath.EvalSymlinks(c); err == nil {
			if probed[r] {
				continue
			}
			probed[r] = true
		}
		cmd := exec.Command(c, "-c", "import sys, os; print(sys.version_info[0], sys.version_info[1], os.path.realpath(sys.executable), sys.version.split()[0])")
		cmd.Env = append(os.Environ(), "PYENV_VERSION=")
		b, err := cmd.Output()
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) != 4 || f[0] != "3" {
			continue
		}
		minor, _ := strconv.Atoi(f[1])
		if minor < 11 || seen[f[2]+f[3]] {
			continue
		}
		seen[f[2]+f[3]] = true
		out = append(out, python{path: f[2], minor: minor, ver: f[3]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ver < out[j].ver })
	return out
})

func pyOpts(py python) []ipc.Option {
	if py.minor <= 11 {
		return []ipc.Option{ipc.Python(), ipc.LegacyMD5()}
	}
	return []ipc.Option{ipc.Python()}
}

// goExchange is the Go side of testdata/pyconn.py's exchange.
func goExchange(ctx context.Context, c *ipc.Conn) error {
	m, err := c.RecvBytes(ctx)
	if err != nil || string(m) != "hello from python" {
		return fmt.Errorf("first message %q, %v", m, err)
	}
	if err := c.SendBytes(ctx, []byte("hello from go")); err != nil {
		return err
	}
	if m, err = c.RecvBytes(ctx); err != nil || string(m) != "HELLO FROM GO" {
		return fmt.Errorf("echo %q, %v", m, err)
	}
	big := make([]byte, 3<<20+17)
	rand.Read(big)
	if err := c.SendBytes(ctx, big); err != nil {
		return err
	}
	sum := sha256.Sum256(big)
	if m, err = c.RecvBytes(ctx); err != nil || !bytes.Equal(m, sum[:]) {
		return fmt.Errorf("digest of the large message %x, %v", m, err)
	}
	if err := c.SendBytes(ctx, []byte("0123456789")); err != nil {
		return err
	}
	if m, err = c.RecvBytes(ctx); err != nil || string(m) != "10" {
		return fmt.Errorf("BufferTooShort answer %q, %v", m, err)
	}
	return c.Close()
}

func TestPythonInterop(t *testing.T) {
	script, _ := filepath.Abs("testdata/pyconn.py")
	key := make([]byte, 32)
	rand.Read(key)
	hexKey := hex.EncodeToString(key)
	for _, py := range pythons(t) {
		for _, family := range []string{"AF_UNIX", "AF_INET"} {
			t.Run(fmt.Sprintf("%s/%s/python-client", py.ver, family), func(t *testing.T) {
				ctx := testCtx(t)
				nw, addr := "unix", filepath.Join(t.TempDir(), "s")
				if family == "AF_INET" {
					nw, addr = "tcp", "127.0.0.1:0"
				}
				l, err := ipc.Listen(nw, addr, key, pyOpts(py)...)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				cmd := exec.CommandContext(ctx, py.path, script, "client", family, l.Addr().String(), hexKey)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				c, err := l.Accept(ctx)
				if err == nil {
					err = goExchange(ctx, c)
				}
				werr := cmd.Wait()
				if err != nil || werr != nil {
					t.Fatalf("Go side: %v; Python: %v\n%s", err, werr, out.String())
				}
			})
			t.Run(fmt.Sprintf("%s/%s/python-server", py.ver, family), func(t *testing.T) {
				ctx := testCtx(t)
				addr := filepath.Join(t.TempDir(), "s")
				if family == "AF_INET" {
					addr = "127.0.0.1:0"
				}
				cmd := exec.CommandContext(ctx, py.path, script, "server", family, addr, hexKey)
				stdout, _ := cmd.StdoutPipe()
				var errb bytes.Buffer
				cmd.Stderr = &errb
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				sc := bufio.NewScanner(stdout)
				var err error
				if !sc.Scan() || !strings.HasPrefix(sc.Text(), "listening ") {
					err = fmt.Errorf("python did not listen: %q", sc.Text())
				} else {
					nw := "unix"
					if family == "AF_INET" {
						nw = "tcp"
					}
					var c *ipc.Conn
					c, err = ipc.Dial(ctx, nw, strings.TrimPrefix(sc.Text(), "listening "), key, pyOpts(py)...)
					if err == nil {
						err = goExchange(ctx, c)
					}
				}
				for sc.Scan() {
				}
				werr := cmd.Wait()
				if err != nil || werr != nil {
					t.Fatalf("Go side: %v; Python: %v\n%s", err, werr, errb.String())
				}
			})
		}
	}
}

// TestPythonRefusals: a Python peer with a wrong key, a Python ≤ 3.11 peer
// without LegacyMD5, and a Python peer on a Go-mode listener all fail
// their handshake, and the listener keeps serving.
func TestPythonRefusals(t *testing.T) {
	script, _ := filepath.Abs("testdata/pyconn.py")
	key := []byte("right key")
	pys := pythons(t)
	run := func(t *testing.T, py python, l *ipc.Listener, role, k string) {
		ctx := testCtx(t)
		cmd := exec.CommandContext(ctx, py.path, script, role, "AF_UNIX", l.Addr().String(), hex.EncodeToString([]byte(k)))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		before := l.Rejected()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for l.Rejected() == before && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if l.Rejected() == before {
			t.Errorf("%s: the listener did not refuse the connection", py.ver)
		}
		cmd.Wait() // Python fails one way or another
	}
	for _, py := range pys {
		t.Run(py.ver, func(t *testing.T) {
			l, err := ipc.Listen("unix", filepath.Join(t.TempDir(), "s"), key, pyOpts(py)...)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			run(t, py, l, "client", "wrong key")
			if py.minor <= 11 {
				strict, err := ipc.Listen("unix", filepath.Join(t.TempDir(), "strict"), key, ipc.Python())
				if err != nil {
					t.Fatal(err)
				}
				run(t, py, strict, "client", string(key))
				strict.Close()
			}
			gol, err := ipc.Listen("unix", filepath.Join(t.TempDir(), "go"), key, ipc.HandshakeTimeout(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			run(t, py, gol, "idle", string(key))
			gol.Close()
			// Still serving: a good peer gets through after the refusals.
			ctx := testCtx(t)
			cmd := exec.CommandContext(ctx, py.path, script, "client", "AF_UNIX", l.Addr().String(), hex.EncodeToString(key))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.Start()
			c, err := l.Accept(ctx)
			if err == nil {
				err = goExchange(ctx, c)
			}
			if werr := cmd.Wait(); err != nil || werr != nil {
				t.Fatalf("after refusals: Go %v, Python %v\n%s", err, werr, out.String())
			}
		})
	}
}
