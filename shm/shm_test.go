package shm_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/multiproc-go/multiproc/shm"
)

// testName returns a user-chosen segment name for this test, containing
// "multiproc" so that the leak checker watches it.
func testName(t *testing.T) string {
	return fmt.Sprintf("multiproc-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_"))
}

func TestAnonymous(t *testing.T) {
	m, err := shm.Create(10000)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name() != "" || m.Size() != 10000 || len(m.Buf()) != 10000 {
		t.Fatalf("anonymous segment: name %q, size %d, %d-byte buffer; want \"\", 10000, 10000", m.Name(), m.Size(), len(m.Buf()))
	}
	f, off, size := m.File()
	if f == nil || off != 0 || size != 10000 {
		t.Fatalf("File() = %v, %d, %d; want a file, 0, 10000", f, off, size)
	}
	m.Buf()[9999] = 1
	if err := m.Unlink(); err != nil {
		t.Fatalf("Unlink of an anonymous segment = %v, want nil", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	if m.Buf() != nil {
		t.Fatal("Buf after Close is not nil")
	}
}

// TestNamed: a segment created under a name is seen by a second mapping
// opened by name; the opener's Close leaves the name; the creator's Close
// removes it.
func TestNamed(t *testing.T) {
	name := testName(t)
	m, err := shm.Create(100, shm.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Name() != name {
		t.Fatalf("Name() = %q, want %q", m.Name(), name)
	}
	if _, err := shm.Create(100, shm.Name(name)); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create of %q = %v, want an error matching fs.ErrExist", name, err)
	}
	o, err := shm.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if o.Size() != 100 {
		t.Fatalf("opened size %d, want 100", o.Size())
	}
	copy(m.Buf(), "shared")
	if got := string(o.Buf()[:6]); got != "shared" {
		t.Fatalf("opener reads %q, want shared", got)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(segmentPath(name)); err != nil {
		t.Fatalf("the opener's Close removed the name: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := shm.Open(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open after the creator's Close = %v, want an error matching fs.ErrNotExist", err)
	}
}

func TestKeepAndUnlink(t *testing.T) {
	name := testName(t)
	m, err := shm.Create(100, shm.Name(name), shm.Keep())
	if err != nil {
		t.Fatal(err)
	}
	m.Buf()[0] = 42
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	o, err := shm.Open(name)
	if err != nil {
		t.Fatalf("a kept segment is gone after its creator's Close: %v", err)
	}
	defer o.Close()
	if o.Buf()[0] != 42 {
		t.Fatalf("kept segment lost its contents: %d, want 42", o.Buf()[0])
	}
	if err := o.Unlink(); err != nil {
		t.Fatal(err)
	}
	if _, err := shm.Open(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open after Unlink = %v, want fs.ErrNotExist", err)
	}
	if o.Buf()[0] != 42 {
		t.Fatal("an unlinked segment must stay usable by those who map it")
	}
	if err := o.Unlink(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second Unlink = %v, want fs.ErrNotExist", err)
	}
}

// TestCloseLeavesAnotherSegment guards the creator's Close against a name
// that was unlinked and made again by someone else meanwhile: that segment
// is not the creator's to remove.
func TestCloseLeavesAnotherSegment(t *testing.T) {
	name := testName(t)
	m, err := shm.Create(100, shm.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Unlink(); err != nil {
		t.Fatal(err)
	}
	other, err := shm.Create(200, shm.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Unlink(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Unlink of a name that now names another segment = %v, want fs.ErrNotExist", err)
	}
	o, err := shm.Open(name)
	if err != nil {
		t.Fatalf("the other segment was removed: %v", err)
	}
	o.Close()
}

func TestGeneratedName(t *testing.T) {
	m, err := shm.Create(100, shm.GeneratedName())
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("multiproc-%d-", os.Getpid())
	if !strings.HasPrefix(m.Name(), prefix) {
		t.Fatalf("generated name %q does not start with %q", m.Name(), prefix)
	}
	// This process is alive: a sweep must leave its segment alone.
	if _, err := shm.Sweep(); err != nil {
		t.Fatal(err)
	}
	o, err := shm.Open(m.Name())
	if err != nil {
		t.Fatalf("Sweep removed a live process's segment: %v", err)
	}
	o.Close()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(segmentPath(m.Name())); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("generated segment still there after Close: %v", err)
	}
}

func TestCreateErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		opts []shm.Option
	}{
		{"zero size", 0, nil},
		{"negative size", -1, nil},
		{"Name and GeneratedName", 10, []shm.Option{shm.Name("multiproc-x"), shm.GeneratedName()}},
		{"Keep without a name", 10, []shm.Option{shm.Keep()}},
		{"empty name", 10, []shm.Option{shm.Name("")}},
		{"name with a slash", 10, []shm.Option{shm.Name("/multiproc-x")}},
		{"dot-dot", 10, []shm.Option{shm.Name("..")}},
		{"too long", 10, []shm.Option{shm.Name(strings.Repeat("m", 256))}},
		{"generated form", 10, []shm.Option{shm.Name("multiproc-1-2-0123456789abcdef")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := shm.Create(tc.size, tc.opts...)
			if err == nil {
				m.Close()
				t.Fatal("got nil error, want one")
			}
			if !strings.HasPrefix(err.Error(), "shm: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
	if _, err := shm.Open("multiproc-no-such-segment"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing segment = %v, want fs.ErrNotExist", err)
	}
}

// TestCreateNoSpace guards the reservation of the backing store: a named
// segment larger than the whole of /dev/shm must fail with ENOSPC at
// Create (tmpfs refuses it before allocating anything, so nothing else
// sharing /dev/shm notices), not kill the process with SIGBUS later, and
// must leave no name behind.
func TestCreateNoSpace(t *testing.T) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(segmentPath("x")), &st); err != nil || st.Blocks == 0 || filepath.Dir(segmentPath("x")) != "/dev/shm" {
		t.Skip("no size-limited /dev/shm")
	}
	name := testName(t)
	size := int(st.Blocks)*int(st.Bsize) + 1<<20
	m, err := shm.Create(size, shm.Name(name))
	if err == nil {
		m.Close()
		t.Fatalf("Create(%d) on a %d-byte /dev/shm succeeded", size, int(st.Blocks)*int(st.Bsize))
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Create(%d) = %v, want an error matching ENOSPC", size, err)
	}
	if _, err := os.Stat(segmentPath(name)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed Create left %s behind", segmentPath(name))
	}
}

// segmentPath is where a named segment lives on this system.
func segmentPath(name string) string {
	if _, err := os.Stat("/dev/shm"); err == nil {
		return "/dev/shm/" + name
	}
	return filepath.Join(os.TempDir(), name)
}
