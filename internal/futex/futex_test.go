package futex_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/multiproc-go/multiproc/internal/futex"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Run(m) }

func TestWaitWake(t *testing.T) {
	var w uint32
	start := time.Now()
	futex.Wait(&w, 1, time.Second) // *addr != val: returns at once
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("Wait on a changed word took %v", d)
	}
	done := make(chan struct{})
	go func() {
		for atomic.LoadUint32(&w) == 0 {
			futex.Wait(&w, 0, 0)
		}
		close(done)
	}()
	atomic.StoreUint32(&w, 1)
	for {
		futex.Wake(&w, 1)
		select {
		case <-done:
			return
		case <-time.After(time.Millisecond): // re-wake: the waiter may not have slept yet
		}
	}
}

func word(t *testing.T) *futex.Mutex {
	b := make([]uint64, 1) // private memory works the same within a process
	return futex.MutexAt(unsafe.Pointer(&b[0]))
}

func TestMutex(t *testing.T) {
	m := word(t)
	defer m.Close()
	ctx := context.Background()
	if err := m.Unlock(); !errors.Is(err, futex.ErrNotHeld) {
		t.Fatalf("Unlock of a free mutex = %v", err)
	}
	n := 0
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5000 {
				if err := m.Lock(ctx); err != nil {
					t.Error(err)
					return
				}
				n++
				m.Unlock()
			}
		})
	}
	wg.Wait()
	if n != 20000 {
		t.Fatalf("n = %d", n)
	}
	if !(m.Holder() == 0 && !m.Held()) {
		t.Fatal("held after the last Unlock")
	}
}

func TestAlive(t *testing.T) {
	pid, tag := futex.Self()
	if int(pid) != os.Getpid() || !futex.Alive(pid, tag) {
		t.Fatalf("Self = %d, %d: not alive", pid, tag)
	}
	if futex.Alive(pid, tag+1) {
		t.Fatal("a stranger with our pid is taken for us")
	}
}

func TestWatch(t *testing.T) {
	cmd := exec.Command("sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	pid := uint32(cmd.Process.Pid)
	tag, ok := futex.Ident(pid)
	if !ok {
		t.Fatal("child not found")
	}
	fired := make(chan struct{})
	w, err := futex.NewWatch(pid, tag, func() { close(fired) })
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Skip(err)
	}
	defer w.Close()
	if w.Dead() {
		t.Fatal("a live child reported dead")
	}
	cmd.Process.Kill()
	select {
	case <-fired:
	case <-time.After(time.Minute):
		t.Fatal("the watch never fired")
	}
	cmd.Wait()
	if !w.Dead() || futex.Alive(pid, tag) {
		t.Fatal("a killed child is alive")
	}
}
