package cluster

import (
	"bytes"
	"errors"
	"testing"

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
