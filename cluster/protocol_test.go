package cluster

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/multiproc-go/multiproc/internal/engine"
	"github.com/multiproc-go/multiproc/internal/errs"
)

// TestResultRoundTrip guards the result record's encoding, and the
// rebuilding of a worker's death as an ExitError naming the host.
func TestResultRoundTrip(t *testing.T) {
	r := &result{Outcome: engine.Died, N: 3, Data: []byte("abc"), Host: "h:1"}
	r.setErr("f", &errs.ExitError{Pid: 42, Code: -9, Signal: 9, Worker: true, Reason: "oom"})
	got, err := decodeResult(r.append(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got.Outcome != r.Outcome || got.N != 3 || !bytes.Equal(got.Data, r.Data) || got.Host != "h:1" || got.Pid != 42 || got.Signal != 9 {
		t.Fatalf("decoded %+v, want %+v", got, r)
	}
	ferr := got.failure("f", 0)
	var ee *errs.ExitError
	if !errors.As(ferr, &ee) || !errors.Is(ferr, errs.ErrWorkerDied) || ee.Reason != "on host h:1: oom" {
		t.Errorf("failure = %v; want an ExitError matching ErrWorkerDied, Reason naming the host", ferr)
	}
}

// FuzzDecodeResult feeds result records as a host (or anyone who can
// publish on the results subjects) could send them: decoding fails with
// an error or succeeds, never panics, and what decodes re-encodes the same.
func FuzzDecodeResult(f *testing.F) {
	ok := &result{Outcome: engine.Done, N: 1, Data: []byte{1, 2, 3}, Host: "h"}
	f.Add(ok.append(nil))
	bad := &result{Outcome: engine.Failed, Host: "h"}
	bad.setErr("f", errors.New("boom"))
	f.Add(bad.append(nil))
	f.Add([]byte{})
	f.Add([]byte{resultVersion, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeResult(b)
		if err != nil {
			return
		}
		again, err := decodeResult(r.append(nil))
		if err != nil {
			t.Fatalf("re-encoding of a decoded record fails: %v", err)
		}
		if again.Outcome != r.Outcome || !bytes.Equal(again.Data, r.Data) || again.Host != r.Host {
			t.Fatalf("round trip changed the record: %+v, then %+v", r, again)
		}
		r.failure("f", 0) // must not panic
	})
}

// TestServerStorage guards the embedded server's storage: memory by
// default (nothing is left behind by a killed program), and with StoreDir
// file storage written synchronously (sync_always: JetStream's default
// fsyncs every two minutes and acknowledges writes before then).
func TestServerStorage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := StartServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if jc := s.srv.JetStreamConfig(); jc == nil || jc.SyncAlways || s.file {
		t.Errorf("default server: JetStream %+v, file %v; want memory storage without sync_always", jc, s.file)
	}
	var c config
	c.server = s
	if c.storage() != jetstream.MemoryStorage {
		t.Errorf("pools on the default server create %v streams; want memory", c.storage())
	}
	s.Close()
	s, err = StartServer(ctx, StoreDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if jc := s.srv.JetStreamConfig(); jc == nil || !jc.SyncAlways {
		t.Errorf("StoreDir server: JetStream %+v; want sync_always", jc)
	}
	c.server = s
	if c.storage() != jetstream.FileStorage {
		t.Errorf("pools on a StoreDir server create %v streams; want file", c.storage())
	}
}
