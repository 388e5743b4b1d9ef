package wire_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/multiproc-go/multiproc/internal/wire"
)

type pathRes struct{}

func (pathRes) NeedsDescriptors() bool { return true }

// TestResourcePaths guards the paths a refusal of resources names.
func TestResourcePaths(t *testing.T) {
	type inner struct{ R *pathRes }
	type outer struct {
		Name  string
		A     pathRes
		List  []inner
		Table map[string]pathRes
	}
	got := wire.ResourcePaths(reflect.TypeFor[outer](), "argument")
	want := []string{
		"argument.A (wire_test.pathRes)",
		"argument.List[].R (*wire_test.pathRes)",
		"argument.Table[] (wire_test.pathRes)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ResourcePaths = %q, want %q", got, want)
	}
	if got := wire.ResourcePaths(reflect.TypeFor[int](), "argument"); got != nil {
		t.Errorf("ResourcePaths(int) = %q, want none", got)
	}
}

// TestResourceErrorMessage: a resource that is the whole value is named
// once (it read "resource *T (*T)"), a nested one by its path and type.
func TestResourceErrorMessage(t *testing.T) {
	typ := reflect.TypeFor[*pathRes]()
	whole := &wire.ResourceError{Path: typ.String(), Type: typ, Err: wire.ErrNoTransport}
	if got, want := whole.Error(), "resource *wire_test.pathRes: "+wire.ErrNoTransport.Error(); got != want {
		t.Errorf("whole value: %q, want %q", got, want)
	}
	nested := &wire.ResourceError{Path: "job.R", Type: typ, Err: wire.ErrNoTransport}
	if got, want := nested.Error(), "resource job.R (*wire_test.pathRes): "+wire.ErrNoTransport.Error(); got != want {
		t.Errorf("nested: %q, want %q", got, want)
	}
}
