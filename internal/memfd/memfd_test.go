package memfd_test

import (
	"bytes"
	"testing"

	"github.com/multiproc-go/multiproc/internal/memfd"
)

// TestSharedMappings maps one segment twice, as two processes would, and
// checks that a store through one mapping is seen through the other, that
// the memory starts zeroed, and that a mapping outlives the file.
func TestSharedMappings(t *testing.T) {
	size := 3*memfd.PageSize + 17
	f, err := memfd.New("multiproc-test", int64(size))
	if err != nil {
		t.Fatal(err)
	}
	a, err := memfd.Map(f, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	defer memfd.Unmap(a)
	b, err := memfd.Map(f, int64(memfd.PageSize), size-memfd.PageSize)
	if err != nil {
		t.Fatal(err)
	}
	defer memfd.Unmap(b)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, make([]byte, size)) {
		t.Fatal("a new segment is not zero-filled")
	}
	copy(a[memfd.PageSize:], "hello")
	a[size-1] = 7
	if got := string(b[:5]); got != "hello" {
		t.Fatalf("second mapping reads %q, want hello", got)
	}
	if got := b[len(b)-1]; got != 7 {
		t.Fatalf("last byte through the second mapping = %d, want 7", got)
	}
}

func TestMisuse(t *testing.T) {
	f, err := memfd.New("multiproc-test", int64(memfd.PageSize))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"New size 0", func() error { _, err := memfd.New("x", 0); return err }},
		{"New negative size", func() error { _, err := memfd.New("x", -1); return err }},
		{"Allocate size 0", func() error { return memfd.Allocate(f, 0) }},
		{"Map size 0", func() error { _, err := memfd.Map(f, 0, 0); return err }},
		{"Map unaligned offset", func() error { _, err := memfd.Map(f, 1, 10); return err }},
		{"Map negative offset", func() error { _, err := memfd.Map(f, -int64(memfd.PageSize), 10); return err }},
		// Touching a mapping beyond the end of its file is a SIGBUS, so a
		// short file (a descriptor from a confused peer) must be refused.
		{"Map beyond the end of the file", func() error { _, err := memfd.Map(f, 0, memfd.PageSize+1); return err }},
		{"Map from beyond the end", func() error { _, err := memfd.Map(f, int64(memfd.PageSize), 1); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); err == nil {
				t.Fatal("got nil error, want one")
			}
		})
	}
	if err := memfd.Unmap(nil); err != nil {
		t.Fatalf("Unmap(nil) = %v, want nil", err)
	}
}
