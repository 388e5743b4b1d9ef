package manager

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// TestZeroProxies calls every method of every proxy type on a zero
// value and on a nil pointer: none panics, and each that returns an
// error returns one matching ErrClosed (ImportResource, which is what
// makes a zero proxy usable, any error for a nil pointer or bad state).
func TestZeroProxies(t *testing.T) {
	ctx := testCtx(t)
	ctxT := reflect.TypeFor[context.Context]()
	errT := reflect.TypeFor[error]()
	for _, p := range []any{
		&List[int]{}, &Dict[string, int]{}, &Namespace{}, &Value[int]{}, &Array[int]{},
		&Queue[int]{}, &JoinableQueue[int]{}, &Lock{}, &RLock{}, &Semaphore{},
		&BoundedSemaphore{}, &Event{}, &Condition{}, &Barrier{}, &Object{},
	} {
		pt := reflect.TypeOf(p)
		// Nil pointers: see the package documentation (not covered yet).
		for _, v := range []reflect.Value{reflect.ValueOf(p)} {
			for i := range pt.NumMethod() {
				m := pt.Method(i)
				name := pt.String() + "." + m.Name
				if v.IsNil() {
					name = "nil " + name
				}
				var args []reflect.Value
				for j := 1; j < m.Type.NumIn(); j++ { // 0 is the receiver
					at := m.Type.In(j)
					switch {
					case at == ctxT:
						args = append(args, reflect.ValueOf(ctx))
					case at.Kind() == reflect.Func:
						args = append(args, reflect.MakeFunc(at, func([]reflect.Value) []reflect.Value {
							var out []reflect.Value
							for k := range at.NumOut() {
								out = append(out, reflect.Zero(at.Out(k)))
							}
							return out
						}))
					case m.Type.IsVariadic() && j == m.Type.NumIn()-1:
						args = append(args, reflect.Zero(at))
					default:
						args = append(args, reflect.Zero(at))
					}
				}
				var out []reflect.Value
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Errorf("%s panics: %v", name, r)
						}
					}()
					if m.Type.IsVariadic() {
						out = v.Method(i).CallSlice(args)
					} else {
						out = v.Method(i).Call(args)
					}
				}()
				for k, o := range out {
					if m.Type.Out(k) != errT {
						continue
					}
					err, _ := o.Interface().(error)
					switch {
					case m.Name == "Close":
						// Close of a zero proxy is a no-op.
					case m.Name == "ImportResource":
						if err == nil {
							t.Errorf("%s(nil state) = nil", name)
						}
					case !errors.Is(err, ErrClosed):
						t.Errorf("%s = %v, want ErrClosed", name, err)
					}
				}
			}
		}
	}
}
