package boot

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/testutil"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// TestMain makes the test binary its own child, as multiproc.Main does.
func TestMain(m *testing.M) {
	if IsChild() {
		if os.Getenv(stallEnv) != "" {
			// A child whose start-up never reaches Main (slow package
			// initialisation): it reads nothing until its parent kills it.
			time.Sleep(10 * time.Minute)
		}
		Serve() // never returns
	}
	SetMainCalled()
	testutil.Run(m)
}

const kindEcho byte = 0x20

func init() {
	// echo sends its start payload back in one frame and exits 0.
	Handle("echo", func(s *Session) int {
		if _, err := s.Conn.Write(wire.AppendFrame(nil, kindEcho, s.Start.Payload)); err != nil {
			return 1
		}
		return 0
	})
}

func spawnCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSpawnEcho(t *testing.T) {
	c, err := Spawn(spawnCtx(t), Config{Role: "echo", Name: "echoer", Payload: []byte("ping")})
	if err != nil {
		t.Fatal(err)
	}
	kind, payload, err := c.Reader.Next()
	if err != nil || kind != kindEcho || string(payload) != "ping" {
		t.Errorf("echo frame = %q %q, %v; want %q \"ping\"", kind, payload, err, kindEcho)
	}
	if _, _, err := c.Reader.Next(); err == nil {
		t.Errorf("second frame from echo, want end of stream")
	}
	c.Conn.Close()
	if err := c.Cmd.Wait(); err != nil {
		t.Errorf("echo child: %v", err)
	}
}

// TestBuildMismatch makes the parent claim another build: the child must
// refuse, and Spawn must say so with ErrBuildMismatch and both build ids.
func TestBuildMismatch(t *testing.T) {
	buildIDOverride = "0123456789abcdef-not-this-build"
	defer func() { buildIDOverride = "" }()
	c, err := Spawn(spawnCtx(t), Config{Role: "echo"})
	if err == nil {
		c.Cmd.Process.Kill()
		c.Cmd.Wait()
		t.Fatal("Spawn with a foreign build id succeeded")
	}
	if !errors.Is(err, errs.ErrBuildMismatch) {
		t.Fatalf("Spawn = %v, want ErrBuildMismatch", err)
	}
	own, _ := BuildID()
	for _, want := range []string{"different build", "parent build", "0123456789abcdef", "child build", short(own)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestUnknownRole(t *testing.T) {
	_, err := Spawn(spawnCtx(t), Config{Role: "no-such-role"})
	if !errors.Is(err, errs.ErrHandshake) || !strings.Contains(err.Error(), `unknown role "no-such-role"`) {
		t.Errorf("Spawn = %v, want ErrHandshake naming the role", err)
	}
}

func TestSpawnContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Spawn(ctx, Config{Role: "echo"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Spawn with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestCanSpawn covers the fork-bomb guard without starting anything.
func TestCanSpawn(t *testing.T) {
	savedChild, savedMain, savedSelf := isChild, mainCalled.Load(), Self()
	t.Cleanup(func() {
		isChild = savedChild
		mainCalled.Store(savedMain)
		selfMu.Lock()
		self = savedSelf
		selfMu.Unlock()
	})
	set := func(child, main, daemon bool) {
		isChild = child
		mainCalled.Store(main)
		selfMu.Lock()
		self.Daemon = daemon
		selfMu.Unlock()
	}
	tests := []struct {
		name                string
		child, main, daemon bool
		want                error
		wantText            string
	}{
		{"parent after Main", false, true, false, nil, ""},
		{"parent before Main", false, false, false, errs.ErrNoMain, "as the first line of main()"},
		{"child before Main", true, false, false, errs.ErrNoMain, "would recurse"},
		{"child serving its role", true, true, false, nil, ""},
		{"daemon", true, true, true, errs.ErrDaemonChildren, "daemonic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set(tt.child, tt.main, tt.daemon)
			err := CanSpawn()
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("CanSpawn() = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("CanSpawn() = %q, want it to contain %q", err, tt.wantText)
			}
		})
	}
	set(false, false, false)
	if _, err := Spawn(context.Background(), Config{Role: "echo"}); !errors.Is(err, errs.ErrNoMain) {
		t.Errorf("Spawn before Main = %v, want ErrNoMain", err)
	}
}

func TestStartMsgRoundTrip(t *testing.T) {
	m := StartMsg{BuildID: "abc", Role: "process", Name: "Process-1", Daemon: true, ParentPid: os.Getpid(), ParentName: "MainProcess",
		MaxMessageSize: int(min(int64(MaxLimit), math.MaxInt)), Files: 2, Payload: []byte{1, 2, 3}}
	got, err := decodeStart(m.append(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got.BuildID != m.BuildID || got.Role != m.Role || got.Name != m.Name || got.Daemon != m.Daemon ||
		got.ParentPid != m.ParentPid || got.ParentName != m.ParentName || got.MaxMessageSize != m.MaxMessageSize ||
		got.Files != m.Files || !bytes.Equal(got.Payload, m.Payload) {
		t.Errorf("decodeStart(append(m)) = %+v, want %+v", got, m)
	}
	limits := []int{0}
	if over := int64(MaxLimit) + 1; strconv.IntSize == 64 {
		limits = append(limits, int(over))
	}
	for _, limit := range limits {
		bad := m
		bad.MaxMessageSize = limit
		if _, err := decodeStart(bad.append(nil)); !errors.Is(err, wire.ErrCorrupt) {
			t.Errorf("decodeStart with limit %d = %v, want ErrCorrupt", limit, err)
		}
	}
	enc := m.append(nil)
	for n := range len(enc) - 1 {
		if _, err := decodeStart(enc[:n]); err == nil {
			t.Errorf("decodeStart of the first %d of %d bytes succeeded", n, len(enc))
		}
	}
	bad := append([]byte{startVersion + 1}, enc[1:]...)
	if _, err := decodeStart(bad); !errors.Is(err, wire.ErrCorrupt) {
		t.Errorf("decodeStart of another version = %v, want ErrCorrupt", err)
	}
}

// FuzzDecodeStart feeds the child's first decoder arbitrary bytes: it must
// return an error or a message, never panic.
func FuzzDecodeStart(f *testing.F) {
	m := StartMsg{BuildID: "abc", Role: "process", Name: "n", ParentPid: 1, ParentName: "MainProcess", MaxMessageSize: 1 << 20, Files: 1, Payload: []byte("x")}
	f.Add(m.append(nil))
	f.Add([]byte{})
	f.Add([]byte{startVersion, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeStart(b)
		if err != nil {
			return
		}
		again, err := decodeStart(got.append(nil))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("re-encoding %+v decodes as %+v, %v", got, again, err)
		}
	})
}

// TestEmptyRefusal guards the parent against a refusal frame with no
// reason byte: a peer's bytes must give an error, never a panic.
func TestEmptyRefusal(t *testing.T) {
	parentEnd, childEnd, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer childEnd.Close()
	conn, err := fileConn(parentEnd)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := childEnd.Write(wire.AppendFrame(nil, KindRefuse, nil)); err != nil {
		t.Fatal(err)
	}
	c := &Child{Cmd: cmd, Conn: conn, Reader: wire.NewReader(conn, 0)}
	if err := c.handshake(spawnCtx(t), nil); !errors.Is(err, errs.ErrHandshake) {
		t.Fatalf("awaitReady = %v, want ErrHandshake", err)
	}
}
