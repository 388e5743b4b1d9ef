package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/multiproc-go/multiproc/internal/registry"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// The parent's parsing of what a worker sends (result frames on the
// socket, and the frames a dead worker left in the shared area) is fuzzed
// here; the seed corpora are in testdata/fuzz/<FuzzName>/. Run one with
//
//	go test -run='^$' -fuzz=FuzzResultFrame -fuzztime=20s ./internal/core/

// resultPayload builds a result frame's payload the way a worker does.
func resultPayload(ord uint64, status byte, dur time.Duration, data []byte) []byte {
	b := binary.AppendUvarint(nil, ord)
	b = append(b, status)
	b = binary.LittleEndian.AppendUint64(b, uint64(dur))
	return append(b, data...)
}

func seedResults() [][]byte {
	env := registry.AppendFailure(nil, "core.fn", errors.New("boom"))
	partial := binary.AppendUvarint(nil, 2)
	partial = wire.AppendBytes(partial, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	partial = append(partial, env...)
	return [][]byte{
		resultPayload(1, statusOK, time.Millisecond, []byte{42, 0, 0, 0, 0, 0, 0, 0}),
		resultPayload(2, statusError, 0, env),
		resultPayload(3, statusPartial, 5, partial),
		resultPayload(4, statusCancelled, 0, nil),
		resultPayload(1<<40, 9, 1, nil),
		{0x80},
	}
}

func FuzzResultFrame(f *testing.F) {
	for _, s := range seedResults() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ord, status, dur, data, err := parseResult(payload)
		if err != nil {
			return
		}
		if ord == 0 || status >= numStatuses || dur < 0 {
			t.Fatalf("accepted ordinal %d, status %d, run time %v", ord, status, dur)
		}
		// What parses describes the payload: the same fields again.
		o2, s2, d2, data2, err := parseResult(resultPayload(ord, status, dur, data))
		if err != nil || o2 != ord || s2 != status || d2 != dur || !bytes.Equal(data2, data) {
			t.Fatalf("re-encoded result parses as %d %d %v %v, want %d %d %v", o2, s2, d2, err, ord, status, dur)
		}
		r := decodeResult(1, status, data)
		switch {
		case status == statusOK && (r.Err != nil || !bytes.Equal(r.Data, data)):
			t.Fatalf("ok result decoded as %v", r.Err)
		case status != statusOK && r.Err == nil:
			t.Fatalf("status %d decoded without an error", status)
		case r.Partial && (r.N < 0 || len(r.Data) > len(data)):
			t.Fatalf("partial result of %d items, %d bytes from %d", r.N, len(r.Data), len(data))
		}
	})
}

func FuzzRecoveredArea(f *testing.F) {
	var area []byte
	for _, s := range seedResults() {
		area = wire.AppendFrame(area, kindResult, s)
	}
	f.Add(area)
	f.Add(area[:len(area)-3])
	f.Add(wire.AppendFrame(nil, kindTask, nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, kindResult})
	f.Fuzz(func(t *testing.T, area []byte) {
		const max = 256 << 10
		frames := 0
		for rest := area; len(rest) > 0; {
			payload, next, ok := nextAreaFrame(rest, max)
			if !ok {
				break
			}
			if len(next) >= len(rest) || len(payload) > max {
				t.Fatalf("no progress: %d bytes left of %d", len(next), len(rest))
			}
			frames++
			rest = next
			if _, status, _, data, err := parseResult(payload); err == nil {
				decodeResult(1, status, data)
			}
		}
		if frames > len(area)/wire.HeaderSize {
			t.Fatalf("%d frames in %d bytes", frames, len(area))
		}
	})
}
