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
