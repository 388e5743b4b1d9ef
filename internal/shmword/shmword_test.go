package shmword_test

import (
	"testing"

	"github.com/multiproc-go/multiproc/internal/shmword"
)

// TestSharedMapping maps the same file twice, as parent and child do, and
// checks that words and the area written through one mapping are seen
// through the other.
func TestSharedMapping(t *testing.T) {
	a, f, err := shmword.New()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defer a.Close()
	b, err := shmword.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a.Store(3, 42)
	copy(a.Area(), "hello")
	if got := b.Load(3); got != 42 {
		t.Fatalf("word 3 through the second mapping = %d, want 42", got)
	}
	if got := string(b.Area()[:5]); got != "hello" {
		t.Fatalf("area through the second mapping = %q, want hello", got)
	}
	if len(a.Area()) != shmword.AreaSize {
		t.Fatalf("area size %d, want %d", len(a.Area()), shmword.AreaSize)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Load out of range did not panic")
		}
	}()
	a.Load(shmword.Count)
}
