package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"github.com/multiproc-go/multiproc/internal/boot"
)

// Environment of a host started by [StartHost] (and read by Main's hook
// along with MULTIPROC_CLUSTER, the URL).
const (
	envWorkers = "MULTIPROC_CLUSTER_WORKERS" // worker processes; default CPUCount
	envFile    = "MULTIPROC_CLUSTER_FILE"    // "1": file storage for what it creates
	envWatch   = "MULTIPROC_CLUSTER_WATCH"   // "1": fd 3 is the parent's pipe, fd 4 the ready pipe
)

func init() { boot.SetClusterHost(serveFromEnv) }

// serveFromEnv is what Main runs when MULTIPROC_CLUSTER is set: a host
// until SIGINT or SIGTERM (or, when started by StartHost, until its parent
// is gone).
func serveFromEnv(url string) int {
	var opts []HostOption
	if s, ok := os.LookupEnv(envWorkers); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "multiproc/cluster: %s=%q: want a positive number of worker processes\n", envWorkers, s)
			return 2
		}
		opts = append(opts, Workers(n))
	}
	if os.Getenv(envFile) == "1" {
		opts = append(opts, HostFileStorage())
	}
	watch := os.Getenv(envWatch) == "1"
	for _, v := range []string{envWorkers, envFile, envWatch} {
		os.Unsetenv(v)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if watch {
		// Close-on-exec: the host's own workers must not inherit them.
		syscall.CloseOnExec(3)
		syscall.CloseOnExec(4)
		parent, ready := os.NewFile(3, "parent"), os.NewFile(4, "ready")
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			// EOF: the parent is gone (or stopped us by closing it).
			io.Copy(io.Discard, parent)
			cancel()
		}()
		var once sync.Once
		opts = append(opts, func(c *hostConfig) error {
			c.ready = func() { once.Do(func() { ready.Write([]byte{'R'}); ready.Close() }) }
			return nil
		})
	}
	if err := Serve(ctx, url, opts...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// HostProcess is a worker host started by [StartHost]: this same program,
// executed again with MULTIPROC_CLUSTER set.
type HostProcess struct {
	cmd    *exec.Cmd
	parent *os.File // its fd 3: closing it stops the host
	waited chan struct{}
	err    error // Wait's, once waited is closed
	stop   sync.Once
}

// StartHost starts a worker host with workers worker processes that joins
// the cluster at url, and returns once it takes tasks (or fails when ctx
// ends first, or the host exits, with its error). The host stops with this
// program, whatever ends it: it watches a pipe whose other end only this
// program holds, and leaves when it reads end-of-file. With file true the streams it may create are
// file-backed ([HostFileStorage]).
//
// Main must be the first call of the program's main (and TestMain), as for
// every multiproc child.
func StartHost(ctx context.Context, url string, workers int, file bool) (*HostProcess, error) {
	if ctx == nil {
		panic("multiproc/cluster: nil context")
	}
	if workers < 1 {
		return nil, fmt.Errorf("multiproc/cluster: StartHost with %d workers: must be positive", workers)
	}
	if err := boot.CanSpawn(); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("multiproc/cluster: %w", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("multiproc/cluster: %w", err)
	}
	rr, rw, err := os.Pipe()
	if err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("multiproc/cluster: %w", err)
	}
	defer rr.Close()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), boot.EnvCluster+"="+url, envWorkers+"="+strconv.Itoa(workers), envWatch+"=1")
	if file {
		cmd.Env = append(cmd.Env, envFile+"=1")
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{pr, rw}
	err = cmd.Start()
	pr.Close()
	rw.Close()
	if err != nil {
		pw.Close()
		return nil, fmt.Errorf("multiproc/cluster: starting a host: %w", err)
	}
	hp := &HostProcess{cmd: cmd, parent: pw, waited: make(chan struct{})}
	go func() {
		hp.err = cmd.Wait()
		close(hp.waited)
	}()
	readyc := make(chan bool, 1)
	go func() {
		var b [1]byte
		n, _ := rr.Read(b[:])
		readyc <- n == 1
	}()
	select {
	case ok := <-readyc:
		if ok {
			return hp, nil
		}
		<-hp.waited
		return nil, fmt.Errorf("multiproc/cluster: host %d exited before joining: %v", cmd.Process.Pid, hp.err)
	case <-ctx.Done():
		hp.Kill()
		<-readyc // the host's end is closed with it
		return nil, fmt.Errorf("multiproc/cluster: starting a host: %w", ctx.Err())
	}
}

// Pid is the host's process id.
func (hp *HostProcess) Pid() int { return hp.cmd.Process.Pid }

// Stop asks the host to stop (it drains, hands back what it holds and
// stops its workers) and waits for it to exit; if ctx ends first it kills
// it, waits, and returns an error wrapping ctx.Err(). It is safe to call
// more than once.
func (hp *HostProcess) Stop(ctx context.Context) error {
	hp.stop.Do(func() { hp.parent.Close() })
	select {
	case <-hp.waited:
		return nil
	case <-ctx.Done():
		hp.Kill()
		return fmt.Errorf("multiproc/cluster: stopping host %d: %w", hp.Pid(), ctx.Err())
	}
}

// Kill sends the host SIGKILL (its workers follow it) and waits for it to
// exit, as a crashed machine would vanish: its tasks are redelivered after
// AckWait.
func (hp *HostProcess) Kill() {
	hp.cmd.Process.Signal(syscall.SIGKILL)
	<-hp.waited
	hp.stop.Do(func() { hp.parent.Close() })
}

// Exited is closed once the host process has exited and was reaped.
func (hp *HostProcess) Exited() <-chan struct{} { return hp.waited }
