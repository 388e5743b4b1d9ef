//go:build unix

package wire

import (
	"os"
	"slices"
	"testing"
)

// hookRes is a fakeRes whose exports carry a Done hook recording each
// call's delivered flag.
type hookRes struct {
	fakeRes
	calls *[]bool
	owned bool // export a duplicate the transport owns
}

func (r *hookRes) ExportResource(x *Exported) error {
	if err := r.fakeRes.ExportResource(x); err != nil {
		return err
	}
	if r.owned {
		d, err := dupFile(x.Files[0], "dup")
		if err != nil {
			return err
		}
		x.Files, x.Owned = []*os.File{d}, true
	}
	calls := r.calls
	x.Done = func(delivered bool) { *calls = append(*calls, delivered) }
	return nil
}

func (r *hookRes) ImportResource(state []byte, files []*os.File) error {
	return r.fakeRes.ImportResource(state, files)
}

func newHook(t *testing.T, calls *[]bool) *hookRes {
	return &hookRes{fakeRes: *newFake(t, "h"), calls: calls}
}

// TestExportDoneHook: every successful export's Done is called exactly
// once, with true only when the transport says the message was delivered,
// and with false on every path that drops it.
func TestExportDoneHook(t *testing.T) {
	type pair struct{ A, B *hookRes }
	t.Run("delivered", func(t *testing.T) {
		var calls []bool
		var out Outgoing
		if _, err := For[pair]().(ResourceValue[pair]).AppendOut(nil, pair{newHook(t, &calls), newHook(t, &calls)}, &out); err != nil {
			t.Fatal(err)
		}
		if len(calls) != 0 {
			t.Fatalf("hook called at encoding: %v", calls)
		}
		out.Finish(true)
		out.Close() // settled already: nothing more
		if !slices.Equal(calls, []bool{true, true}) {
			t.Fatalf("calls %v, want [true true]", calls)
		}
	})
	t.Run("not sent", func(t *testing.T) {
		var calls []bool
		var out Outgoing
		h := newHook(t, &calls)
		h.owned = true
		if _, err := For[*hookRes]().(ResourceValue[*hookRes]).AppendOut(nil, h, &out); err != nil {
			t.Fatal(err)
		}
		out.Close()
		if !slices.Equal(calls, []bool{false}) {
			t.Fatalf("calls %v, want [false]", calls)
		}
	})
	t.Run("encoding fails after the export", func(t *testing.T) {
		var calls []bool
		var out Outgoing
		b := newHook(t, &calls)
		b.f = nil // closed: its export fails
		if _, err := For[pair]().(ResourceValue[pair]).AppendOut(nil, pair{newHook(t, &calls), b}, &out); err == nil {
			t.Fatal("encoding a closed resource succeeded")
		}
		if !slices.Equal(calls, []bool{false}) || len(out.Res) != 0 {
			t.Fatalf("calls %v, table %d, want [false] and an empty table", calls, len(out.Res))
		}
		out.Finish(true)
		if len(calls) != 1 {
			t.Fatalf("a dropped entry was settled again: %v", calls)
		}
	})
	t.Run("shared ID", func(t *testing.T) {
		var calls []bool
		var out Outgoing
		h := newHook(t, &calls)
		if _, err := For[pair]().(ResourceValue[pair]).AppendOut(nil, pair{h, h}, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Res) != 1 {
			t.Fatalf("%d entries for one ID", len(out.Res))
		}
		out.Finish(true)
		if !slices.Equal(calls, []bool{true, true}) {
			t.Fatalf("calls %v, want one per export", calls)
		}
	})
	t.Run("Own keeps the hook", func(t *testing.T) {
		var calls []bool
		out := Outgoing{}
		if _, err := For[*hookRes]().(ResourceValue[*hookRes]).AppendOut(nil, newHook(t, &calls), &out); err != nil {
			t.Fatal(err)
		}
		if err := out.Own(); err != nil {
			t.Fatal(err)
		}
		Settle(out.Res, true)
		out.Close()
		if !slices.Equal(calls, []bool{true}) {
			t.Fatalf("calls %v, want [true]", calls)
		}
	})
}
