package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
)

// Resource marks a value backed by file descriptors or shared memory (a
// file, a pipe, a shared array, a lock): it cannot travel as bytes alone,
// because its descriptors must go beside the bytes (ExtraFiles at process
// start, SCM_RIGHTS to a pool worker). A type is a resource when it, or a
// pointer to it, implements Resource, or when it is one of the standard
// library's descriptor types this package carries itself (*os.File and the
// net package's TCP, UDP and unix connections and listeners).
//
// NeedsDescriptors reports whether this particular value carries
// descriptors right now (a zero or closed resource may not); the type
// check ([Check]) looks only at the type, so the method is never called
// there.
//
// To travel, a resource type implements [Exporter] and, on its pointer,
// [Importer]. The codec of any type that holds resources (see [For])
// recognises them before any other encoding, at any depth, and in
// interface-typed positions by their dynamic type.
type Resource interface {
	NeedsDescriptors() bool
}

// Exporter is a resource that can describe itself to another process.
type Exporter interface {
	Resource
	// ExportResource fills x: its descriptors, a small opaque state that
	// the receiving side's ImportResource understands, and, for an object
	// worth keeping in a receiver (a mapping), its ID. It fails for a
	// closed resource.
	ExportResource(x *Exported) error
}

// Importer is implemented by a pointer to a resource type: ImportResource
// makes the zero value it is called on the receiving side's copy of an
// exported resource. It owns files from the call on, success or failure
// (it keeps them or closes them).
type Importer interface {
	ImportResource(state []byte, files []*os.File) error
}

// Exported is one resource as the transport sees it.
type Exported struct {
	// ID, when non-zero, names this object for its whole life in the
	// exporting process (see [NewID]): a receiver that keeps resources (a
	// pool worker) imports it once and reuses the imported object for
	// every later value that carries the same ID, so its descriptors
	// travel once. Zero means the resource is imported afresh every time
	// and the imported object belongs to the code that receives it (a
	// file, a connection).
	ID uint64
	// Files are the resource's descriptors. The exporter keeps them unless
	// Owned is set, in which case they were made for this export and the
	// transport closes them when it is done.
	Files []*os.File
	Owned bool
	// State is what the importer needs besides the descriptors (sizes,
	// offsets, a type check). It is copied into the encoding.
	State []byte
	// Done, if set, is called exactly once by the transport when it is done
	// with this export (the one hook for an exporter that must know the
	// fate of what it exported): delivered is true if the bytes and
	// descriptors were handed to a receiving process (written to its
	// socket, or inherited at its start) at least once, false if they
	// never were (encoding failed after the export, the task was refused,
	// cancelled or settled before any frame carrying it was written, the
	// write failed). A pool calls it at the task's final outcome, after
	// any retries, not at the write; a process start once the child is
	// started or failed to start. It may run on any goroutine, with the
	// transport's locks held: it must not block nor call back into the
	// transport. It is not called when ExportResource fails (the exporter
	// cleans up then). Entries that share an ID in one message (see
	// [Outgoing]) each get their own call.
	Done func(delivered bool)
}

var lastID atomic.Uint64

// NewID returns a new resource ID, unique within this process.
func NewID() uint64 { return lastID.Add(1) }

// Release tells every transport that keeps resource id in receivers (a
// pool whose workers cache it) that the object is closed in this process,
// so the receivers may drop their copies once the work that uses them is
// done. A resource's Close calls it.
func Release(id uint64) {
	if id == 0 {
		return
	}
	releaseMu.RLock()
	fs := make([]func(uint64), 0, len(releaseFns))
	for _, f := range releaseFns {
		fs = append(fs, f)
	}
	releaseMu.RUnlock()
	for _, f := range fs {
		f(id)
	}
}

var (
	releaseMu  sync.RWMutex
	releaseFns = map[int]func(uint64){}
	releaseSeq int
)

// OnRelease registers f to be called with the ID of every resource this
// process releases, until the returned function is called.
func OnRelease(f func(id uint64)) (stop func()) {
	releaseMu.Lock()
	releaseSeq++
	k := releaseSeq
	releaseFns[k] = f
	releaseMu.Unlock()
	return func() {
		releaseMu.Lock()
		delete(releaseFns, k)
		releaseMu.Unlock()
	}
}

// ErrNoTransport is returned (wrapped in a *ResourceError) when a value
// that holds a resource with descriptors is encoded for a channel that
// cannot carry descriptors.
var ErrNoTransport = errors.New("multiproc: value cannot be transferred by this engine")

// ResourceError reports a resource that could not be encoded or decoded,
// naming where it was in the value ("arg.Jobs[3].Queue").
type ResourceError struct {
	Path string
	Type reflect.Type
	Err  error
}

// Error names the path, the type and the cause.
func (e *ResourceError) Error() string {
	if e.Path == "" || e.Type != nil && e.Path == e.Type.String() {
		// The resource is the whole value: its path is its type's name.
		return fmt.Sprintf("resource %v: %v", e.Type, e.Err)
	}
	return fmt.Sprintf("resource %s (%v): %v", e.Path, e.Type, e.Err)
}

// Unwrap returns the cause.
func (e *ResourceError) Unwrap() error { return e.Err }

// Outgoing collects the resources of values being encoded for one message:
// the encoding refers to them by index, and the transport sends their
// descriptors beside the bytes. The zero Outgoing is ready to use; one
// Outgoing may collect several values (a Map chunk), which share entries
// for resources with the same ID.
type Outgoing struct {
	Res []Sent
	// NoDescriptors makes encoding fail with ErrNoTransport at the first
	// resource that needs descriptors (a channel that cannot carry them).
	NoDescriptors bool

	one [1]Sent  // Res's first backing, so one resource costs no allocation
	x   Exported // the exporter's scratch
}

// Sent is one resource of an outgoing message.
type Sent struct {
	ID    uint64
	Files []*os.File
	Owned bool // Files belong to the message: Close closes them
	// Done is the exporter's hook (see [Exported]), nil if it has none:
	// the transport calls it once, through Settle, when done with the
	// entry.
	Done func(delivered bool)
}

// Settle calls s.Done, if any, with delivered, and forgets it, so that a
// second Settle does nothing. It does not touch the descriptors.
func (s *Sent) Settle(delivered bool) {
	if d := s.Done; d != nil {
		s.Done = nil
		d(delivered)
	}
}

// Settle settles every entry of res (see [Sent.Settle]).
func Settle(res []Sent, delivered bool) {
	for i := range res {
		res[i].Settle(delivered)
	}
}

// Files counts the descriptors of all entries.
func (o *Outgoing) Files() int {
	n := 0
	for i := range o.Res {
		n += len(o.Res[i].Files)
	}
	return n
}

// Close is Finish(false): the message was not sent, or its entries' hooks
// were settled already (a transport that handed the entries on settles
// them itself).
func (o *Outgoing) Close() { o.Finish(false) }

// Finish settles every entry's hook not settled yet with delivered (see
// [Exported.Done]), closes the descriptors the entries own and empties o.
// Call it when the message will not be sent (false), or once it was
// written to its receiver (true): the kernel holds its own references to
// descriptors in flight.
func (o *Outgoing) Finish(delivered bool) {
	for i := range o.Res {
		o.Res[i].Settle(delivered)
		if o.Res[i].Owned {
			for _, f := range o.Res[i].Files {
				f.Close()
			}
		}
	}
	clear(o.Res)
	o.Res = o.Res[:0]
}

func (o *Outgoing) add(x *Exported) int {
	if x.ID != 0 {
		for i := range o.Res {
			if o.Res[i].ID == x.ID {
				if x.Owned {
					for _, f := range x.Files {
						f.Close()
					}
				}
				if x.Done != nil {
					// One entry carries both: each export still hears
					// its fate once.
					if prev := o.Res[i].Done; prev != nil {
						next := x.Done
						o.Res[i].Done = func(delivered bool) { prev(delivered); next(delivered) }
					} else {
						o.Res[i].Done = x.Done
					}
				}
				return i
			}
		}
	}
	if o.Res == nil {
		o.Res = o.one[:0]
	}
	o.Res = append(o.Res, Sent{ID: x.ID, Files: x.Files, Owned: x.Owned, Done: x.Done})
	return len(o.Res) - 1
}

// Incoming gives a decoder the resources that arrived with a message, by
// the index the encoding refers to.
type Incoming interface {
	// Resource returns entry i: the object a receiver kept for its ID, if
	// any (then files is nil), or else its descriptors, which the caller
	// takes over. It fails for an index the message did not carry or whose
	// descriptors did not arrive.
	Resource(i int) (kept any, files []*os.File, err error)
	// Keep records obj, a pointer to the object imported for entry i, so
	// that a receiver that keeps resources reuses it for the same ID.
	Keep(i int, obj any)
}

// Files is an [Incoming] over plain descriptor lists (a process's start
// message): nothing is kept, each entry is handed out once, and Close
// closes what was not taken.
type Files struct{ Entries [][]*os.File }

// Resource hands out entry i's descriptors.
func (fs *Files) Resource(i int) (any, []*os.File, error) {
	if i < 0 || i >= len(fs.Entries) || fs.Entries[i] == nil {
		return nil, nil, fmt.Errorf("%w: resource %d was not sent, or was taken already", ErrCorrupt, i)
	}
	f := fs.Entries[i]
	fs.Entries[i] = nil
	return nil, f, nil
}

// Keep does nothing: a Files table keeps nothing.
func (fs *Files) Keep(int, any) {}

// Close closes the descriptors nobody took.
func (fs *Files) Close() {
	for _, e := range fs.Entries {
		for _, f := range e {
			f.Close()
		}
	}
	fs.Entries = nil
}

var (
	resourceType = reflect.TypeFor[Resource]()
	exporterType = reflect.TypeFor[Exporter]()
	importerType = reflect.TypeFor[Importer]()
)

// isResource reports whether t or *t implements Resource, or t is one of
// the standard library's descriptor types.
func isResource(t reflect.Type) bool {
	if builtinFor(t) != nil || t.Implements(resourceType) {
		return true
	}
	return t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && reflect.PointerTo(t).Implements(resourceType)
}

// builtin is a standard library type that this package carries as a
// resource: it cannot implement Exporter and Importer itself.
type builtin struct {
	name   string
	typ    reflect.Type
	export func(v any, x *Exported) error
	// imp makes the object from the state and the descriptors, which it
	// owns from the call on.
	imp func(state []byte, files []*os.File) (any, error)
}

// builtins is filled by the platform files; its order is the interface
// tag of each kind on the wire, so it only ever grows at the end.
var builtins []*builtin

func builtinFor(t reflect.Type) *builtin {
	for _, b := range builtins {
		if b.typ == t {
			return b
		}
	}
	return nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// AppendOut appends v's encoding to dst with codec c, collecting its
// resources in out when c carries resources (a [ResourceValue]); other
// codecs ignore out.
func AppendOut[T any](c Value[T], dst []byte, v T, out *Outgoing) ([]byte, error) {
	if rc, ok := c.(ResourceValue[T]); ok && out != nil {
		return rc.AppendOut(dst, v, out)
	}
	return c.Append(dst, v)
}

// AppendSliceOut is AppendOut for a slice of values (one payload).
func AppendSliceOut[T any](c Value[T], dst []byte, vs []T, out *Outgoing) ([]byte, error) {
	if rc, ok := c.(ResourceValue[T]); ok && out != nil {
		return rc.AppendSliceOut(dst, vs, out)
	}
	return c.AppendSlice(dst, vs)
}

// DecodeIn decodes src with codec c, taking resources from in when c
// carries resources.
func DecodeIn[T any](c Value[T], src []byte, in Incoming) (T, error) {
	if rc, ok := c.(ResourceValue[T]); ok {
		return rc.DecodeIn(src, in)
	}
	return c.Decode(src)
}

// DecodeSliceIn is DecodeIn for a slice encoding, appending to dst.
func DecodeSliceIn[T any](c Value[T], dst []T, src []byte, in Incoming) ([]T, error) {
	if rc, ok := c.(ResourceValue[T]); ok {
		return rc.DecodeSliceIn(dst, src, in)
	}
	return c.DecodeSlice(dst, src)
}

type ctxKey int

// IncomingKey and OutgoingKey are the context keys under which a receiver
// (a pool worker's task context, a child process) offers the resources
// that came with a message and collects those of its reply. Contexts of
// their own implement Value for them; others use [WithResources].
const (
	IncomingKey ctxKey = iota
	OutgoingKey
)

// WithResources returns a context that carries in and out for the
// registered function it is given to.
func WithResources(ctx context.Context, in Incoming, out *Outgoing) context.Context {
	return resCtx{ctx, in, out}
}

type resCtx struct {
	context.Context
	in  Incoming
	out *Outgoing
}

func (c resCtx) Value(key any) any {
	switch key {
	case IncomingKey:
		return c.in
	case OutgoingKey:
		return c.out
	}
	return c.Context.Value(key)
}

// IncomingFrom returns the resources offered by ctx, or nil.
func IncomingFrom(ctx context.Context) Incoming {
	in, _ := ctx.Value(IncomingKey).(Incoming)
	return in
}

// OutgoingFrom returns the table collecting a reply's resources, or nil.
func OutgoingFrom(ctx context.Context) *Outgoing {
	out, _ := ctx.Value(OutgoingKey).(*Outgoing)
	return out
}

// AppendTable appends the shape of out's resource table: the number of
// entries, then each entry's ID and descriptor count. SplitFiles reads it.
func AppendTable(dst []byte, res []Sent) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(res)))
	for _, s := range res {
		dst = binary.AppendUvarint(dst, s.ID)
		dst = binary.AppendUvarint(dst, uint64(len(s.Files)))
	}
	return dst
}

// ParseTable reads a table written by AppendTable (or a transport's
// table of the same shape) and deals files, in order, to its entries: each
// entry's ID and descriptors (nil for an entry that has none). It fails,
// closing nothing, when the counts do not add up.
func ParseTable(d *Buf, files []*os.File) (ids []uint64, entries [][]*os.File, err error) {
	n := d.Uvarint()
	if d.Err() == nil && n > uint64(len(d.Rest())) {
		d.fail("resource table")
	}
	rest := files
	for i := uint64(0); i < n && d.Err() == nil; i++ {
		id, k := d.Uvarint(), d.Uvarint()
		if k > uint64(len(rest)) {
			return nil, nil, fmt.Errorf("%w: resource table claims %d descriptors, %d arrived", ErrCorrupt, k, len(rest))
		}
		var e []*os.File
		if k > 0 {
			e, rest = rest[:k:k], rest[k:]
		}
		ids, entries = append(ids, id), append(entries, e)
	}
	if err := d.Err(); err != nil {
		return nil, nil, err
	}
	if len(rest) != 0 {
		return nil, nil, fmt.Errorf("%w: %d descriptors beyond the resource table", ErrCorrupt, len(rest))
	}
	return ids, entries, nil
}

// SplitFiles reads a table written by AppendTable into a [Files]. It
// fails, closing every file, when the counts do not add up.
func SplitFiles(d *Buf, files []*os.File) (*Files, error) {
	_, entries, err := ParseTable(d, files)
	if err != nil {
		closeAll(files)
		return nil, err
	}
	for i, e := range entries {
		if e == nil {
			entries[i] = []*os.File{} // present, with no descriptors (nil means taken)
		}
	}
	return &Files{Entries: entries}, nil
}

// AllFiles lists the descriptors of every entry, in table order.
func AllFiles(res []Sent) []*os.File {
	var fs []*os.File
	for _, s := range res {
		fs = append(fs, s.Files...)
	}
	return fs
}

// Own makes every entry of out own its descriptors, duplicating those it
// borrows, so that the sender's objects may be closed while the message
// waits to be sent. On error out is closed.
func (o *Outgoing) Own() error {
	for i := range o.Res {
		if o.Res[i].Owned {
			continue
		}
		own := make([]*os.File, 0, len(o.Res[i].Files))
		for _, f := range o.Res[i].Files {
			d, err := DupFD(f)
			if err != nil {
				closeAll(own)
				o.Close()
				return err
			}
			own = append(own, os.NewFile(uintptr(d), f.Name()))
		}
		o.Res[i].Files, o.Res[i].Owned = own, true
	}
	return nil
}

// AppendTrailer appends res's table (see AppendTable) and the table's
// length as 4 bytes: a trailer, so that a value encoded in place before it
// is never copied. SplitTrailer reads it.
func AppendTrailer(dst []byte, res []Sent) []byte {
	n := len(dst)
	dst = AppendTable(dst, res)
	return binary.LittleEndian.AppendUint32(dst, uint32(len(dst)-n))
}

// SplitTrailer separates a payload written with AppendTrailer into the
// value's bytes and the resources, dealing files to the table's entries.
// On error it closes files.
func SplitTrailer(payload []byte, files []*os.File) ([]byte, *Files, error) {
	if len(payload) < 4 {
		closeAll(files)
		return nil, nil, fmt.Errorf("%w: payload without its resource table", ErrCorrupt)
	}
	n := int(binary.LittleEndian.Uint32(payload[len(payload)-4:]))
	if n > len(payload)-4 {
		closeAll(files)
		return nil, nil, fmt.Errorf("%w: resource table of %d bytes in a payload of %d", ErrCorrupt, n, len(payload))
	}
	at := len(payload) - 4 - n
	d := NewBuf(payload[at : len(payload)-4])
	in, err := SplitFiles(d, files)
	if err == nil && len(d.Rest()) != 0 {
		in.Close()
		err = fmt.Errorf("%w: bytes after the resource table", ErrCorrupt)
	}
	if err != nil {
		return nil, nil, err
	}
	return payload[:at], in, nil
}

// Descriptors returns the descriptor numbers of every entry, in table
// order, for a sendmsg. They stay owned by the entries' files.
func Descriptors(res []Sent) ([]int, error) {
	var fds []int
	for _, s := range res {
		for _, f := range s.Files {
			rc, err := f.SyscallConn()
			if err != nil {
				return nil, err
			}
			if err := rc.Control(func(fd uintptr) { fds = append(fds, int(fd)) }); err != nil {
				return nil, err
			}
		}
	}
	return fds, nil
}
