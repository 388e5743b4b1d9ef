package wire_test

import (
	"bytes"
	"encoding/gob"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/multiproc-go/multiproc/internal/wire"
)

type job struct {
	ID   int
	Done chan int
}

type jobs struct {
	Name string
	Jobs []job
}

type hiddenChan struct {
	N int
	_ chan int // unexported: gob ignores it, so it is allowed
}

type funcField struct{ Then func() }

type withUnsafe struct{ P unsafe.Pointer }

type node struct {
	Value    int
	Next     *node
	Children []node
	ByName   map[string]*node
}

type badNode struct {
	Next *badNode
	F    func()
}

// fakeFile stands in for a resource (an *os.File wrapper) defined by a
// later package; its pointer implements the marker.
type fakeFile struct {
	_ int
	_ chan struct{} // never walked: the type is a resource
}

func (*fakeFile) NeedsDescriptors() bool { return true }

type withResource struct {
	Name string
	File *fakeFile
}

type resourceInSlice struct{ Files []fakeFile }

type withAny struct{ V any }

type selfEncoded struct{ _ func() }

func (selfEncoded) GobEncode() ([]byte, error) { return nil, nil }

type embeds struct {
	job
	Job job
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		t        reflect.Type
		resource bool
		err      string // "" when the type is accepted
	}{
		{"int", reflect.TypeFor[int](), false, ""},
		{"string", reflect.TypeFor[string](), false, ""},
		{"struct of slices and maps", reflect.TypeFor[record](), false, ""},
		{"time", reflect.TypeFor[time.Time](), false, ""},
		{"interface", reflect.TypeFor[withAny](), false, ""},
		{"unexported chan field", reflect.TypeFor[hiddenChan](), false, ""},
		{"self-encoding type", reflect.TypeFor[selfEncoded](), false, ""},
		{"recursive", reflect.TypeFor[node](), false, ""},
		{"chan", reflect.TypeFor[chan int](), false, "In: chan int cannot cross a process boundary"},
		{"func", reflect.TypeFor[func(int) int](), false, "In: func(int) int cannot cross a process boundary"},
		{"unsafe.Pointer", reflect.TypeFor[unsafe.Pointer](), false, "In: unsafe.Pointer cannot cross a process boundary"},
		{"slice of chans", reflect.TypeFor[[]chan string](), false, "In[]: chan string cannot cross a process boundary"},
		{"array of funcs", reflect.TypeFor[[2]func()](), false, "In[]: func() cannot cross a process boundary"},
		{"pointer to chan", reflect.TypeFor[*chan int](), false, "In: chan int cannot cross a process boundary"},
		{"map key", reflect.TypeFor[map[chan int]bool](), false, "In[key]: chan int cannot cross a process boundary"},
		{"map value", reflect.TypeFor[map[string]func()](), false, "In[]: func() cannot cross a process boundary"},
		{"field of slice elements", reflect.TypeFor[jobs](), false, "In.Jobs[].Done: chan int cannot cross a process boundary"},
		{"func field", reflect.TypeFor[*funcField](), false, "In.Then: func() cannot cross a process boundary"},
		{"unsafe field", reflect.TypeFor[withUnsafe](), false, "In.P: unsafe.Pointer cannot cross a process boundary"},
		{"embedded struct", reflect.TypeFor[embeds](), false, "In.Job.Done: chan int cannot cross a process boundary"},
		{"recursive with a func", reflect.TypeFor[badNode](), false, "In.F: func() cannot cross a process boundary"},
		{"resource field", reflect.TypeFor[withResource](), true, ""},
		{"resource elements", reflect.TypeFor[resourceInSlice](), true, ""},
		{"resource itself", reflect.TypeFor[*fakeFile](), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := wire.Check(tt.t, "In")
			if res != tt.resource {
				t.Errorf("hasResource = %v, want %v", res, tt.resource)
			}
			if tt.err == "" {
				if err != nil {
					t.Errorf("Check(%v) = %v, want nil", tt.t, err)
				}
				return
			}
			var te *wire.TypeError
			if !errors.As(err, &te) || err.Error() != tt.err {
				t.Errorf("Check(%v) = %v, want a *TypeError %q", tt.t, err, tt.err)
			}
		})
	}
}

type holder struct {
	Name    string
	Payload any
}

type unregisteredPayload struct{ X int }

// TestInterfaceErrorNamesTypes checks that an interface value of a type
// gob does not know fails naming the interface field and the concrete
// type, and tells the user to call gob.Register before Main.
func TestInterfaceErrorNamesTypes(t *testing.T) {
	c := wire.For[holder]()
	_, err := c.Append(nil, holder{Payload: unregisteredPayload{1}})
	var ie *wire.InterfaceError
	if !errors.As(err, &ie) {
		t.Fatalf("Append = %v, want an *InterfaceError", err)
	}
	for _, want := range []string{"wire_test.holder.Payload (interface {})", "wire_test.unregisteredPayload", "gob.Register", "before multiproc.Main"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	var ee *wire.EncodeError
	if !errors.As(err, &ee) || ee.Type != "wire_test.holder" {
		t.Errorf("error %v is not an *EncodeError naming wire_test.holder", err)
	}
}

type onlyHere struct{ X int }

func init() { gob.RegisterName("wire_test.onlyHereA", onlyHere{}) }

// TestInterfaceDecodeErrorNamesTypes: bytes from a process that registered
// a concrete type this one did not (simulated by renaming it in the
// encoding) fail naming the interface field and the missing type.
func TestInterfaceDecodeErrorNamesTypes(t *testing.T) {
	c := wire.For[holder]()
	b, err := c.Append(nil, holder{Payload: onlyHere{7}})
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.ReplaceAll(b, []byte("wire_test.onlyHereA"), []byte("wire_test.onlyHereB"))
	_, err = c.Decode(b)
	var ie *wire.InterfaceError
	if !errors.As(err, &ie) || ie.Concrete != "wire_test.onlyHereB" {
		t.Fatalf("Decode = %v, want an *InterfaceError naming wire_test.onlyHereB", err)
	}
	for _, want := range []string{"wire_test.holder.Payload (interface {})", "gob.Register"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
