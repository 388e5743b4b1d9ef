package core

import (
	"fmt"
	"io"
	"os"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// The worker's side of resources (see resources.go for the parent's). A
// worker keeps, per resource ID, the object its first task imported (a
// mapping, a lock) and hands the same object to every later task that
// refers to the ID, until the parent says to drop it (an evict frame) or
// the worker exits. An initializer's resources are kept for good.

// childRes is one entry of a task's resource table.
type childRes struct {
	id    uint64
	files []*os.File // arrived with this frame; nil for a resource the worker holds
	obj   any        // for an entry without an ID: the object imported from it
}

// keptRes is a resource the worker holds.
type keptRes struct {
	obj    any        // the imported object (a pointer), nil until imported
	files  []*os.File // descriptors not yet handed to an importer
	pinned bool       // an initializer's
}

// parseResTable reads a task's resource table and deals the frame's
// descriptors to its entries.
func parseResTable(d *wire.Buf, files []*os.File) ([]childRes, error) {
	ids, entries, err := wire.ParseTable(d, files)
	if err != nil {
		return nil, err
	}
	res := make([]childRes, len(ids))
	for i := range ids {
		res[i] = childRes{id: ids[i], files: entries[i]}
	}
	return res, nil
}

// install puts the resources that arrived with a task into the cache
// (replacing what it held under the same ID) and reports the first one
// the task refers to that the worker does not hold: the parent must send
// it again.
func (w *childWorker) install(res []childRes, pinned bool) (missing uint64) {
	for i := range res {
		r := &res[i]
		if r.id == 0 {
			continue
		}
		if len(r.files) > 0 {
			if old := w.cache[r.id]; old != nil {
				dropKept(old)
			}
			w.cache[r.id] = &keptRes{files: r.files, pinned: pinned}
			r.files = nil
		} else if k := w.cache[r.id]; k == nil || closedKept(k) {
			// Not held, or held but closed by a task (misuse, but one
			// task's mistake must not fail every later one): the parent
			// sends it again.
			if k != nil {
				dropKept(k)
				delete(w.cache, r.id)
			}
			if missing == 0 {
				missing = r.id
			}
		}
	}
	return missing
}

// applyEvicts applies the evict frames that came after no task later than
// ordinal done.
func (w *childWorker) applyEvicts(done uint64) {
	w.mu.Lock()
	if len(w.evicts) == 0 || w.evicts[0].after > done {
		w.mu.Unlock()
		return
	}
	var due []pendingEvict
	for len(w.evicts) > 0 && w.evicts[0].after <= done {
		due = append(due, w.evicts[0])
		w.evicts = w.evicts[1:]
	}
	w.mu.Unlock()
	for _, e := range due {
		w.evict(e.ids)
	}
}

// evict drops resources the parent no longer needs this worker to hold.
func (w *childWorker) evict(ids []uint64) {
	for _, id := range ids {
		if k := w.cache[id]; k != nil && !k.pinned {
			dropKept(k)
			delete(w.cache, id)
		}
	}
}

// closedKept reports whether a kept object was closed (a resource that no
// longer needs descriptors has given them up).
func closedKept(k *keptRes) bool {
	r, ok := k.obj.(wire.Resource)
	return ok && !r.NeedsDescriptors()
}

// keptDropper is a kept object whose Close reaches beyond this process
// (an ipc queue's Close closes the queue for every process that has it):
// the worker drops its copy with DropKept instead.
type keptDropper interface{ DropKept() }

func dropKept(k *keptRes) {
	if d, ok := k.obj.(keptDropper); ok {
		d.DropKept()
	} else if c, ok := k.obj.(io.Closer); ok {
		c.Close()
	}
	closeFiles(k.files)
	k.obj, k.files = nil, nil
}

// taskIn is the wire.Incoming of one task (or the initializer): entries
// with an ID come from the worker's cache, the others from the frame.
type taskIn struct {
	w   *childWorker
	res []childRes
}

func (in *taskIn) Resource(i int) (any, []*os.File, error) {
	if i < 0 || i >= len(in.res) {
		return nil, nil, fmt.Errorf("%w: resource %d of %d", wire.ErrCorrupt, i, len(in.res))
	}
	r := &in.res[i]
	if r.id == 0 {
		if r.files == nil {
			return nil, nil, fmt.Errorf("%w: resource %d taken twice", wire.ErrCorrupt, i)
		}
		fs := r.files
		r.files = nil
		return nil, fs, nil
	}
	k := in.w.cache[r.id]
	switch {
	case k == nil:
		return nil, nil, fmt.Errorf("%w: resource %d is not held by this worker", wire.ErrCorrupt, r.id)
	case k.obj != nil:
		return k.obj, nil, nil
	case k.files != nil:
		fs := k.files
		k.files = nil
		return nil, fs, nil
	}
	return nil, nil, fmt.Errorf("resource %d could not be imported by an earlier task", r.id)
}

// Kept returns the object the worker holds for entry i, or nil: the
// decoder's fast path for an argument that is itself a kept resource.
func (in *taskIn) Kept(i int) any {
	if i >= 0 && i < len(in.res) && in.res[i].id != 0 {
		if k := in.w.cache[in.res[i].id]; k != nil {
			return k.obj
		}
	}
	return nil
}

func (in *taskIn) Keep(i int, obj any) {
	if i >= 0 && i < len(in.res) && in.res[i].id == 0 {
		in.res[i].obj = obj // the task's own: closed after it (closeOwn)
		return
	}
	if i >= 0 && i < len(in.res) && in.res[i].id != 0 {
		if k := in.w.cache[in.res[i].id]; k != nil {
			k.obj = obj
			if m, ok := obj.(keptMarker); ok {
				m.MarkKept()
			}
		}
	}
}

// closeOwn closes, once a task's result has been sent, every object
// imported for it from an entry without an ID (a file, a network
// connection, an ipc Conn): the task's own resources, which CPython's
// reference counting would close when the task drops them. Without this a
// worker kept one descriptor per such task for its whole life, and the
// peer of a Conn never saw its end. A task that closed it itself costs a
// second, harmless Close; one that returned it in its result encoded it
// (duplicating its descriptors) before this runs. An initializer's are
// not closed: it keeps them for the worker's life.
func (in *taskIn) closeOwn() {
	for i := range in.res {
		if c, ok := in.res[i].obj.(io.Closer); ok {
			c.Close()
		}
		in.res[i].obj = nil
	}
}

// keptMarker is a kept object that must know it is kept: a psync
// primitive's Close releases the receiving process's copy, except the copy
// a worker keeps for its tasks, which only DropKept releases (a task that
// closes what it was given must not cost the next task a fresh import).
type keptMarker interface{ MarkKept() }

// close closes the frame's descriptors no decoder took.
func (in *taskIn) close() {
	for i := range in.res {
		closeFiles(in.res[i].files)
		in.res[i].files = nil
	}
}
