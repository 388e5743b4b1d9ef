package manager

import (
	"math"
	"testing"
)

// TestIncrWraps: Incr of narrow integers wraps as Go's + does, in both
// encodings (gob is what TCP clients of another build use), and the
// stored value stays readable.
func TestIncrWraps(t *testing.T) {
	modes(t, func(t *testing.T, m *Manager) {
		ctx := testCtx(t)
		d, err := NewDict[int8, int8](ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Incr(ctx, -3, 127); err != nil {
			t.Fatal(err)
		}
		if v, err := d.Incr(ctx, -3, 1); err != nil || v != math.MinInt8 {
			t.Fatalf("Incr(127+1) = %d, %v; want -128", v, err)
		}
		if v, err := d.Get(ctx, -3); err != nil || v != math.MinInt8 {
			t.Fatalf("Get after the wrap = %d, %v", v, err)
		}
		if ks, err := d.Keys(ctx); err != nil || len(ks) != 1 || ks[0] != -3 {
			t.Fatalf("Keys = %v, %v", ks, err)
		}
		if v, err := d.Incr(ctx, -3, -1); err != nil || v != math.MaxInt8 {
			t.Fatalf("Incr(-128-1) = %d, %v; want 127", v, err)
		}
		u, err := NewValue[uint8](ctx, m, 250)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := u.Incr(ctx, 10); err != nil || v != 4 {
			t.Fatalf("uint8 Incr(250+10) = %d, %v; want 4", v, err)
		}
		if v, err := u.Get(ctx); err != nil || v != 4 {
			t.Fatalf("uint8 Get = %d, %v", v, err)
		}
		s, err := NewValue[int16](ctx, m, math.MaxInt16)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := s.Incr(ctx, 2); err != nil || v != math.MinInt16+1 {
			t.Fatalf("int16 Incr = %d, %v", v, err)
		}
		f, err := NewValue[float32](ctx, m, 1)
		if err != nil {
			t.Fatal(err)
		}
		tiny := float32(1e-8) // lost at float32 precision
		if v, err := f.Incr(ctx, tiny); err != nil || v != 1 {
			t.Fatalf("float32 Incr = %v, %v; want 1", v, err)
		}
	})
}
