package wire_test

import (
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc/internal/wire"
)

type cycNode struct {
	V    int
	Next *cycNode
	Kids []cycNode
	Any  any
}

// TestReviewCycles: values holding cycles fail to encode with an error
// naming the path, instead of overflowing gob's stack; shared but acyclic
// pointers still encode.
func TestReviewCycles(t *testing.T) {
	c := wire.For[cycNode]()
	self := &cycNode{V: 1}
	self.Next = self
	viaAny := &cycNode{V: 2}
	viaAny.Any = viaAny
	viaSlice := cycNode{Kids: make([]cycNode, 1)}
	viaSlice.Kids[0].Kids = viaSlice.Kids
	for name, v := range map[string]cycNode{"pointer": *self, "interface": *viaAny, "slice": viaSlice} {
		if _, err := c.Append(nil, v); err == nil || !strings.Contains(err.Error(), "cycle") {
			t.Errorf("%s: Append = %v, want a cycle error", name, err)
		}
	}
	shared := &cycNode{V: 3}
	dag := cycNode{Next: &cycNode{Next: shared}, Kids: []cycNode{{Next: shared}, {Next: shared}}}
	b, err := c.Append(nil, dag)
	if err != nil {
		t.Fatalf("shared acyclic pointers: %v", err)
	}
	got, err := c.Decode(b)
	if err != nil || got.Next.Next.V != 3 || got.Kids[1].Next.V != 3 {
		t.Errorf("Decode = %+v, %v", got, err)
	}
	if _, err := c.Append(nil, *self); err != nil {
		t.Log(err)
	}
}
