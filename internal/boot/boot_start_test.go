package boot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// stallEnv makes this test binary's children stall before Main (see
// TestMain), like a child whose package initialisation takes forever.
const stallEnv = "BOOT_TEST_STALL"

const (
	kindDigest byte = 0x21
	kindFDStat byte = 0x22
	kindSend   byte = 0x23
)

func init() {
	// digest answers with its payload's length, its SHA-256 and the
	// message size limit it was given.
	Handle("digest", func(s *Session) int {
		sum := sha256.Sum256(s.Start.Payload)
		out := binary.AppendUvarint(nil, uint64(len(s.Start.Payload)))
		out = append(out, sum[:]...)
		out = binary.AppendUvarint(out, uint64(s.Start.MaxMessageSize))
		if _, err := s.Conn.Write(wire.AppendFrame(nil, kindDigest, out)); err != nil {
			return 1
		}
		return 0
	})
	// fdstat reports, for each fd number in its payload (uvarints),
	// whether it is open and the device and inode it refers to.
	Handle("fdstat", func(s *Session) int {
		d := wire.NewBuf(s.Start.Payload)
		var out []byte
		for len(d.Rest()) > 0 {
			fd := int(d.Uvarint())
			var st syscall.Stat_t
			if syscall.Fstat(fd, &st) != nil {
				out = append(out, 0)
				continue
			}
			out = append(out, 1)
			out = binary.AppendUvarint(out, uint64(st.Dev))
			out = binary.AppendUvarint(out, uint64(st.Ino))
		}
		if _, err := s.Conn.Write(wire.AppendFrame(nil, kindFDStat, out)); err != nil {
			return 1
		}
		return 0
	})
	// send writes one frame with as many bytes as its payload's uvarint
	// says, then reports on a second frame whether its own Reader rejects
	// a frame of that size from the parent.
	Handle("send", func(s *Session) int {
		n, _ := binary.Uvarint(s.Start.Payload)
		if _, err := s.Conn.Write(wire.AppendFrame(nil, kindSend, make([]byte, n))); err != nil {
			return 1
		}
		_, _, err := s.Reader.Next()
		verdict := []byte("accepted")
		if errors.Is(err, wire.ErrFrameTooLarge) {
			verdict = []byte("too large")
		}
		s.Conn.Write(wire.AppendFrame(nil, kindSend, verdict))
		return 0
	})
}

// procDeadline bounds the waits of these tests; it is only spent when one
// fails.
const procDeadline = 60 * time.Second

// spawnWithin runs Spawn and fails the test if it has not returned within
// the test's deadline: the bugs these tests guard are hangs.
func spawnWithin(t *testing.T, ctx context.Context, cfg Config) (*Child, error) {
	t.Helper()
	type result struct {
		c   *Child
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := Spawn(ctx, cfg)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		return r.c, r.err
	case <-time.After(procDeadline + 30*time.Second):
		t.Fatalf("Spawn with a %d-byte payload did not return within %v", len(cfg.Payload), procDeadline+30*time.Second)
		return nil, nil
	}
}

// finish closes the parent's end and reaps the child, which must exit 0.
func finish(t *testing.T, c *Child) {
	t.Helper()
	c.Conn.Close()
	if err := c.Cmd.Wait(); err != nil {
		t.Errorf("child: %v", err)
	}
}

// pattern returns n bytes that differ from one offset to the next, so that
// a misplaced or repeated block changes the digest.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i) ^ byte(i>>8)*31 ^ byte(i>>16)*101 ^ byte(i>>24)*7
	}
	return b
}

// TestSpawnLargeStart guards the start of a child whose start message does
// not fit the socket buffer: Spawn used to write it all before the child
// existed and hung forever past ~208 KiB. Every size must arrive intact.
func TestSpawnLargeStart(t *testing.T) {
	sizes := []struct {
		name string
		n    int
	}{
		{"empty", 0},
		{"64KiB minus header room", preStartMax - 256},
		{"64KiB", preStartMax},
		{"64KiB plus 1", preStartMax + 1},
		{"208KiB minus 1", 208<<10 - 1},
		{"208KiB plus 1", 208<<10 + 1},
		{"1MiB", 1 << 20},
		{"64MiB", 64 << 20},
	}
	for _, tt := range sizes {
		t.Run(tt.name, func(t *testing.T) {
			payload := pattern(tt.n)
			c, err := spawnWithin(t, spawnCtx(t), Config{Role: "digest", Payload: payload})
			if err != nil {
				t.Fatal(err)
			}
			defer finish(t, c)
			kind, reply, err := c.Reader.Next()
			if err != nil || kind != kindDigest {
				t.Fatalf("digest frame: kind %q, %v", kind, err)
			}
			d := wire.NewBuf(reply)
			n := d.Uvarint()
			sum := d.Rest()[:sha256.Size]
			if want := sha256.Sum256(payload); n != uint64(tt.n) || !bytes.Equal(sum, want[:]) {
				t.Errorf("child got %d bytes with SHA-256 %x, want %d bytes with %x", n, sum, tt.n, want)
			}
		})
	}
}

// TestSpawnCancelDuringWrite starts a child that never reads, with a start
// message far larger than the socket buffer: Spawn must give up when ctx
// ends, while it writes, with an error wrapping ctx.Err(), and kill and reap
// the child (the leak check at the end of the run sees any survivor).
func TestSpawnCancelDuringWrite(t *testing.T) {
	t.Setenv(stallEnv, "1")
	payload := make([]byte, 8<<20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel once the child exists: from then on Spawn writes (the child
	// never reads, and the message is far over the socket buffer).
	go func() {
		defer cancel()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		deadline := time.After(procDeadline)
		for {
			if kids, _ := testutil.Children(os.Getpid()); len(kids) > 0 {
				return
			}
			select {
			case <-tick.C:
			case <-deadline:
				return
			}
		}
	}()
	start := time.Now()
	c, err := spawnWithin(t, ctx, Config{Role: "digest", Payload: payload})
	if err == nil {
		finish(t, c)
		t.Fatal("Spawn to a child that never reads succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Spawn = %v, want an error wrapping context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "writing the start message") {
		t.Errorf("Spawn = %q, want it to say it was writing the start message", err)
	}
	t.Logf("returned %v after Spawn began: %v", time.Since(start).Round(time.Millisecond), err)
}

// TestSpawnCancelledBeforeStart checks the first phase: a ctx that has
// already ended starts nothing, and the error carries the ctx's cause.
func TestSpawnCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	why := errors.New("caller gave up")
	cancel(why)
	_, err := Spawn(ctx, Config{Role: "digest"})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, why) {
		t.Errorf("Spawn with a cancelled context = %v, want it to wrap context.Canceled and the cause", err)
	}
}

// TestSpawnChildDiesDuringWrite guards the other way a large write can
// hang: the child exits while the parent writes. With the parent holding a
// copy of the child's end the write would wait forever; Spawn must report
// the child's exit.
func TestSpawnChildDiesDuringWrite(t *testing.T) {
	t.Setenv(stallEnv, "1")
	ctx := spawnCtx(t)
	payload := make([]byte, 8<<20)
	errc := make(chan error, 1)
	go func() {
		_, err := Spawn(ctx, Config{Role: "digest", Payload: payload})
		errc <- err
	}()
	// The child stalls before Main; kill it from outside once it runs.
	var pid int
	testutil.WaitFor(t, procDeadline, func() bool {
		kids, _ := testutil.Children(os.Getpid())
		if len(kids) == 1 {
			pid = kids[0]
		}
		return pid != 0
	}, "no child appeared")
	syscall.Kill(pid, syscall.SIGKILL)
	select {
	case err := <-errc:
		if !errors.Is(err, errs.ErrHandshake) || !strings.Contains(err.Error(), "signal: killed") {
			t.Errorf("Spawn = %v, want ErrHandshake saying the child was killed", err)
		}
	case <-time.After(procDeadline):
		t.Fatalf("Spawn still running %v after its child died", procDeadline)
	}
}

// fdState is what the fdstat role says about one descriptor.
type fdState struct {
	open     bool
	dev, ino uint64
}

func statFD(t *testing.T, fd int) fdState {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		t.Fatalf("fstat %d: %v", fd, err)
	}
	return fdState{true, uint64(st.Dev), uint64(st.Ino)}
}

// TestInheritedFDsClosed guards the child's descriptor table: a file the
// parent opened without close-on-exec used to leak into every child. The
// child must hold only 0-2, its control socket and the files passed to it.
func TestInheritedFDsClosed(t *testing.T) {
	dir := t.TempDir()
	leakFD, err := syscall.Open(dir, syscall.O_RDONLY, 0) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(leakFD)
	passed, err := os.CreateTemp(dir, "passed")
	if err != nil {
		t.Fatal(err)
	}
	defer passed.Close()
	leak, want := statFD(t, leakFD), statFD(t, int(passed.Fd()))

	payload := binary.AppendUvarint(nil, uint64(leakFD))
	payload = binary.AppendUvarint(payload, firstFile)
	c, err := Spawn(spawnCtx(t), Config{Role: "fdstat", Payload: payload, Files: []*os.File{passed}})
	if err != nil {
		t.Fatal(err)
	}
	defer finish(t, c)
	kind, reply, err := c.Reader.Next()
	if err != nil || kind != kindFDStat {
		t.Fatalf("fdstat frame: kind %q, %v", kind, err)
	}
	d := wire.NewBuf(reply)
	var got [2]fdState
	for i := range got {
		if got[i].open = d.Byte() == 1; got[i].open {
			got[i].dev, got[i].ino = d.Uvarint(), d.Uvarint()
		}
	}
	if d.Err() != nil {
		t.Fatal(d.Err())
	}
	if got[0] == leak {
		t.Errorf("fd %d, opened by the parent without O_CLOEXEC, is open in the child", leakFD)
	}
	if got[1] != want {
		t.Errorf("passed file at fd %d in the child: %+v, want %+v", firstFile, got[1], want)
	}
}

// TestMessageLimit checks that both ends' readers are built with the
// configured limit, and that invalid limits start nothing.
func TestMessageLimit(t *testing.T) {
	const limit = 1000
	c, err := Spawn(spawnCtx(t), Config{Role: "send", Payload: binary.AppendUvarint(nil, limit+1), MaxMessageSize: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer finish(t, c)
	if _, _, err := c.Reader.Next(); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Errorf("parent reading a %d-byte frame with limit %d: %v, want ErrFrameTooLarge", limit+1, limit, err)
	}
	// The parent's reader gave up inside the frame; read the verdict raw.
	if _, err := c.Conn.Write(wire.AppendFrame(nil, kindSend, make([]byte, limit+1))); err != nil {
		t.Fatal(err)
	}
	all, _ := io.ReadAll(c.Conn)
	if !bytes.HasSuffix(all, []byte("too large")) {
		t.Errorf("child's reader with limit %d accepted a %d-byte frame (got %q at the end)", limit, limit+1, all[max(0, len(all)-16):])
	}

	c2, err := Spawn(spawnCtx(t), Config{Role: "digest"})
	if err != nil {
		t.Fatal(err)
	}
	defer finish(t, c2)
	_, reply, err := c2.Reader.Next()
	if err != nil {
		t.Fatal(err)
	}
	d := wire.NewBuf(reply)
	d.Uvarint()
	d = wire.NewBuf(d.Rest()[sha256.Size:])
	if got := d.Uvarint(); got != wire.DefaultMaxFrame {
		t.Errorf("child's limit with MaxMessageSize 0 = %d, want %d", got, wire.DefaultMaxFrame)
	}

	bads := []int{-1}
	if strconv.IntSize == 64 { // a 32-bit int cannot exceed MaxLimit
		limit := int64(MaxLimit)
		bads = append(bads, int(limit+1))
	}
	for _, bad := range bads {
		if _, err := Spawn(spawnCtx(t), Config{Role: "digest", MaxMessageSize: bad}); err == nil || !strings.Contains(err.Error(), "MaxMessageSize") {
			t.Errorf("Spawn with MaxMessageSize %d = %v, want an error naming MaxMessageSize", bad, err)
		}
	}
}

// BenchmarkInheritedFDs measures what closing inherited descriptors adds to
// every child's start when there is nothing to close: listing the
// descriptor table and one fcntl per entry.
func BenchmarkInheritedFDs(b *testing.B) {
	for b.Loop() {
		inheritedFDs(-1, 0)
	}
}

// BenchmarkSpawn measures a child's start and exit with a small start
// message (the Process.Start path), for comparison across changes.
func BenchmarkSpawn(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		c, err := Spawn(ctx, Config{Role: "echo", Payload: []byte("ping")})
		if err != nil {
			b.Fatal(err)
		}
		c.Reader.Next()
		c.Conn.Close()
		c.Cmd.Wait()
	}
}
