package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/examples/internal/extest"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

func TestMain(m *testing.M) {
	multiproc.Main()
	testutil.Run(m)
}

func TestRemoteExampleDemo(t *testing.T) {
	got := extest.RunQuiet(t)
	const want = "consumer got [hello world]\nstatus map[hello:done world:done]\n"
	if got != want {
		t.Fatalf("printed\n%s\nwant\n%s", got, want)
	}
}

// startServer runs "serve" (prefixed by wrap, e.g. ip netns exec) and
// returns the address it printed.
func startServer(t *testing.T, bin, addr string, wrap ...string) string {
	t.Helper()
	args := append(append(wrap, bin), "serve", "-stdin", "-addr", addr)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { io.Copy(io.Discard, stdout); cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line := make(chan string, 1)
	go func() { l, _ := bufio.NewReader(stdout).ReadString('\n'); line <- l }()
	select {
	case l := <-line:
		a, ok := strings.CutPrefix(strings.TrimSpace(l), "serving on ")
		if !ok {
			t.Fatalf("server printed %q", l)
		}
		return a
	case <-time.After(time.Minute):
		t.Fatal("the server did not start")
	}
	return ""
}

func clients(t *testing.T, bin, addr string) {
	extest.Run(t, bin, "put", "-addr", addr, "hello", "world")
	if got := extest.Run(t, bin, "get", "-addr", addr, "-n", "2"); got != "hello\nworld\n" {
		t.Fatalf("get printed %q", got)
	}
}

func TestRemoteExampleLoopback(t *testing.T) {
	bin := extest.Build(t)
	clients(t, bin, startServer(t, bin, "127.0.0.1:0"))
}

// TestRemoteExampleNetworkNamespace runs the server inside a network
// namespace of its own, reached through a veth pair: the clients talk to
// it over a network interface, not loopback.
func TestRemoteExampleNetworkNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2)")
	}
	tag := fmt.Sprintf("%d", os.Getpid()%100000)
	ns, veth, peer := "mpmg"+tag, "mpmgh"+tag, "mpmgn"+tag
	ip := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := ip("netns", "add", ns); err != nil {
		t.Skipf("cannot create network namespaces here: %v", err)
	}
	t.Cleanup(func() { ip("netns", "del", ns) })
	if err := ip("link", "add", veth, "type", "veth", "peer", "name", peer); err != nil {
		t.Skipf("cannot create a veth pair here: %v", err)
	}
	t.Cleanup(func() { ip("link", "del", veth) }) // removes the peer too
	for _, args := range [][]string{
		{"link", "set", peer, "netns", ns},
		{"addr", "add", "10.213.12.1/24", "dev", veth},
		{"link", "set", veth, "up"},
		{"-n", ns, "addr", "add", "10.213.12.2/24", "dev", peer},
		{"-n", ns, "link", "set", peer, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	} {
		if err := ip(args...); err != nil {
			t.Fatal(err)
		}
	}
	bin := extest.Build(t)
	addr := startServer(t, bin, "10.213.12.2:0", "ip", "netns", "exec", ns)
	if !strings.HasPrefix(addr, "10.213.12.2:") {
		t.Fatalf("server address %q", addr)
	}
	clients(t, bin, addr)
}
