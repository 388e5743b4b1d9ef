package wire

import "reflect"

// Resource marks a value backed by file descriptors or shared memory (a
// file, a pipe, a shared array, a lock): it cannot travel as bytes alone,
// because its descriptors must go beside the bytes (ExtraFiles at process
// start, SCM_RIGHTS to a pool worker). A type is a resource when it, or a
// pointer to it, implements Resource.
//
// NeedsDescriptors reports whether this particular value carries
// descriptors right now (a zero or closed resource may not); the type
// check ([Check]) looks only at the type, so the method is never called
// there. The codec and transport that move resources are added by the
// packages that define them; this package only knows the marker, so that
// type checks stop at a resource instead of walking into its internals
// (whose descriptor numbers would mean nothing in another process).
type Resource interface {
	NeedsDescriptors() bool
}

var resourceType = reflect.TypeFor[Resource]()

// isResource reports whether t or *t implements Resource.
func isResource(t reflect.Type) bool {
	if t.Implements(resourceType) {
		return true
	}
	return t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && reflect.PointerTo(t).Implements(resourceType)
}
