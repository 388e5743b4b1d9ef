package cluster_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/cluster"
)

// netns is a network namespace with one veth pair to a bridge.
type netns struct{ name, addr string }

// TestNetworkNamespaces runs the server and two worker hosts in network
// namespaces of their own, joined by veth pairs and a bridge, and a pool
// in the test's namespace that reaches the server through the bridge: the
// cluster talks over a network, not loopback.
func TestNetworkNamespaces(t *testing.T) {
	t.Parallel() // mostly waiting (AckWait, host expiry): overlap with the rest
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2)")
	}
	tag := fmt.Sprintf("%d", os.Getpid()%100000)
	bridge := "mpbr" + tag
	run := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("link", "add", bridge, "type", "bridge"); err != nil {
		t.Skipf("cannot create a bridge here: %v", err)
	}
	t.Cleanup(func() { run("link", "del", bridge) })
	must := func(args ...string) {
		t.Helper()
		if err := run(args...); err != nil {
			t.Fatal(err)
		}
	}
	must("addr", "add", "10.213.7.1/24", "dev", bridge)
	must("link", "set", bridge, "up")
	var nss []netns
	for i, role := range []string{"s", "a", "b"} {
		ns := netns{name: "mpcl-" + role + tag, addr: fmt.Sprintf("10.213.7.%d", 10+i)}
		if err := run("netns", "add", ns.name); err != nil {
			t.Skipf("cannot create network namespaces here: %v", err)
		}
		t.Cleanup(func() { run("netns", "del", ns.name) })
		veth, peer := fmt.Sprintf("mpv%s%s", role, tag), fmt.Sprintf("mpp%s%s", role, tag)
		must("link", "add", veth, "type", "veth", "peer", "name", peer)
		must("link", "set", veth, "master", bridge)
		must("link", "set", veth, "up")
		must("link", "set", peer, "netns", ns.name)
		must("-n", ns.name, "addr", "add", ns.addr+"/24", "dev", peer)
		must("-n", ns.name, "link", "set", peer, "up")
		must("-n", ns.name, "link", "set", "lo", "up")
		nss = append(nss, ns)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	start := func(ns netns, env ...string) (*exec.Cmd, *bufio.Reader) {
		t.Helper()
		cmd := exec.Command("ip", "netns", "exec", ns.name, exe)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = os.Stderr
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			stdin.Close()
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(deadline):
				cmd.Process.Kill()
				<-done
			}
		})
		return cmd, bufio.NewReader(stdout)
	}
	_, out := start(nss[0], envTestServer+"="+nss[0].addr+":4222")
	urlc := make(chan string, 1)
	go func() { l, _ := out.ReadString('\n'); urlc <- strings.TrimSpace(l) }()
	var url string
	select {
	case url = <-urlc:
	case <-time.After(deadline):
		t.Fatal("the server in its namespace did not start")
	}
	if url != "nats://"+nss[0].addr+":4222" {
		t.Fatalf("server URL %q, want nats://%s:4222", url, nss[0].addr)
	}
	for _, ns := range nss[1:] {
		start(ns, "MULTIPROC_CLUSTER="+url, "MULTIPROC_CLUSTER_WORKERS=1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	p, err := multiproc.NewPool(ctx, 2, cluster.Backend(cluster.URL(url)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for p.Stats().Workers < 2 {
		select {
		case <-ctx.Done():
			t.Fatalf("hosts did not join: %+v", p.Stats())
		case <-time.After(10 * time.Millisecond):
		}
	}
	items := make([]int, 8)
	for i := range items {
		items[i] = 100
	}
	got, err := multiproc.Map(ctx, p, spin, items, multiproc.Chunksize(1))
	if err != nil {
		t.Fatal(err)
	}
	hostPids := map[int]bool{}
	for _, pid := range got {
		hostPids[pid] = true
	}
	s := p.Stats()
	if len(hostPids) != 2 || len(s.PerHost) != 2 {
		t.Errorf("tasks ran under %d host processes, Stats shows %d hosts; want 2 and 2 (%+v)", len(hostPids), len(s.PerHost), s.PerHost)
	}
	if err := p.Close(); err != nil {
		t.Error(err)
	}
}
