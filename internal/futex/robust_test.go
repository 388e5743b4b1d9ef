package futex_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/multiproc-go/multiproc/internal/futex"
	"github.com/multiproc-go/multiproc/internal/memfd"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

// robustOff is the word's file offset in the tests' memfd: not at the
// start of a page, so that the alias arithmetic is exercised.
const robustOff = 4096 + 64

// TestRobustHolderChild is the child of the robust tests: it locks the
// word of the memfd it gets as descriptor 3, says so, and sleeps.
func TestRobustHolderChild(t *testing.T) {
	if os.Getenv("FUTEX_ROBUST_CHILD") != "1" {
		t.Skip("a helper process")
	}
	f := os.NewFile(3, "memfd")
	mem, err := memfd.Map(f, 0, 8192)
	if err != nil {
		t.Fatal(err)
	}
	m := futex.NewMutex(unsafe.Pointer(&mem[robustOff]), f, robustOff)
	if err := m.Lock(context.Background()); err != nil && !errors.Is(err, futex.ErrOwnerDead) {
		t.Fatal(err)
	}
	os.Stdout.WriteString("locked\n")
	time.Sleep(time.Hour)
}

type robustWord struct {
	f   *os.File
	mem []byte
	m   *futex.Mutex
}

func newRobustWord(t *testing.T) *robustWord {
	f, err := memfd.New("multiproc-futex-test", 8192)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := memfd.Map(f, 0, 8192)
	if err != nil {
		t.Fatal(err)
	}
	w := &robustWord{f: f, mem: mem, m: futex.NewMutex(unsafe.Pointer(&mem[robustOff]), f, robustOff)}
	t.Cleanup(func() { w.m.Release(); memfd.Unmap(mem); f.Close() })
	return w
}

func (w *robustWord) raw() uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&w.mem[robustOff])))
}

// startHolder starts a child that locks w and waits until it has.
func startHolder(t *testing.T, w *robustWord) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestRobustHolderChild$")
	cmd.Env = append(os.Environ(), "FUTEX_ROBUST_CHILD=1")
	cmd.ExtraFiles = []*os.File{w.f}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	return cmd
}

// TestRobustKernelMarksDeadHolder: with nobody waiting, the kernel's walk of
// the dead child's robust list marks the word (holder id cleared, owner-died
// bit set) by the time the child is reaped, and Lock then returns
// ErrOwnerDead at once.
func TestRobustKernelMarksDeadHolder(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	w := newRobustWord(t)
	cmd := startHolder(t, w)
	if held := w.raw(); uint32(held)&(1<<30-1) == 0 {
		t.Fatalf("word %#x: not held", held)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if v := uint32(w.raw()); v&(1<<30-1) != 0 || v&(1<<30) == 0 {
		t.Fatalf("the kernel did not mark the word: low half %#x (the word is not in the dead thread's robust list)", v)
	}
	ok, err := w.m.TryLock()
	if !ok || !errors.Is(err, futex.ErrOwnerDead) {
		t.Fatalf("TryLock = %v, %v; want true, ErrOwnerDead", ok, err)
	}
	if err := w.m.MarkConsistent(); err != nil {
		t.Fatal(err)
	}
	if err := w.m.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestRobustDeathLatency: a waiter asleep on the word when the holder is
// SIGKILLed; the kernel's wake, not the pidfd, ends the wait. It logs the
// median (a measurement, not a bar: see cmd/mpbench's lock_death_detect).
func TestRobustDeathLatency(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	w := newRobustWord(t)
	var took []time.Duration
	for range 5 {
		cmd := startHolder(t, w)
		got := make(chan error, 1)
		go func() { got <- w.m.Lock(context.Background()) }()
		testutil.WaitFor(t, time.Minute, func() bool { return w.m.Contended() }, "the waiter never slept")
		start := time.Now()
		cmd.Process.Kill()
		select {
		case err := <-got:
			took = append(took, time.Since(start))
			if !errors.Is(err, futex.ErrOwnerDead) {
				t.Fatalf("Lock = %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("the waiter never learnt of the death")
		}
		cmd.Wait()
		w.m.MarkConsistent()
		w.m.Unlock()
	}
	slices.Sort(took)
	t.Logf("SIGKILL to ErrOwnerDead: median %v, max %v", took[len(took)/2], took[len(took)-1])
}

// TestRobustRegistration: handles on one word share its alias and its list
// entry; a plain MutexAt handle on the same word agrees on who holds it.
func TestRobustRegistration(t *testing.T) {
	w := newRobustWord(t)
	m2 := futex.NewMutex(unsafe.Pointer(&w.mem[robustOff]), w.f, robustOff)
	plain := futex.MutexAt(unsafe.Pointer(&w.mem[robustOff]))
	defer plain.Close()
	ctx := context.Background()
	if err := w.m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if !m2.Held() || !plain.Held() {
		t.Fatal("another handle of this process does not see the lock held")
	}
	if ok, _ := plain.TryLock(); ok {
		t.Fatal("a second handle took a held lock")
	}
	if err := plain.Unlock(); err != nil { // any handle of the holding process may unlock
		t.Fatal(err)
	}
	m2.Release()
	if err := w.m.Lock(ctx); err != nil { // the first handle still works
		t.Fatal(err)
	}
	w.m.Unlock()
	if w.raw() != 0 {
		t.Fatalf("word %#x after Unlock", w.raw())
	}
}
