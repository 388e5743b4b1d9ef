package core

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"

	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// Resources travel to workers beside task frames (see wire.Outgoing). The
// parent's side keeps two things, both under p.mu:
//
//   - held: one duplicate of each resource with an ID, shared by every task
//     that uses it, counted from Submit to the task's final outcome (across
//     retries), so that the caller may close its resource while tasks are
//     queued, at no system call per task. An initializer's resources are
//     held for the pool's life.
//   - per worker, a mirror of the worker's cache: the IDs whose objects the
//     worker holds. A task frame sends a resource's descriptors only if its
//     worker does not hold it yet; otherwise just the ID. The mirror is
//     updated as frames are built, in the order they are written, and the
//     worker applies the same changes in the same order (it runs tasks one
//     after another), so the two always agree.
//
// A worker holds at most cacheLimit resources besides its initializer's:
// beyond that the least recently used go (an evict frame, ahead of the
// tasks of the write that made room). When the parent closes a resource
// (wire.Release), every worker holding it is told to drop it, so shared
// memory is unmapped everywhere once the parent is done with it. A worker
// that finds a resource missing (its descriptors were lost in transit)
// answers the task with statusResend: the task runs again, its resources
// sent afresh.

// Each entry's hook (wire.Sent.Done) is settled once, at the task's final
// outcome (after any retries), with delivered true if a frame carrying the
// task was written to a worker at least once (Sched.Delivered). A write
// under way at the outcome holds the hooks back until it ends (a frame is
// being written with duplicates of the descriptors: it may yet deliver
// them); Sched.Writing counts such writes. Hooks run outside p.mu where
// the outcome allows (finish), since an exporter may act on them (an ipc
// Conn sends its deferred close message).
//
// An initializer's hooks are settled when the pool releases its resources,
// delivered if any worker was started with them.

// cacheLimit bounds the resources a worker keeps besides its initializer's.
const cacheLimit = 256

type held struct {
	files  []*os.File
	refs   int  // tasks using it
	pinned bool // an initializer's: kept for the pool's life
}

type cached struct {
	seq    uint64 // last write that used it, for LRU eviction
	pinned bool
}

// adoptLocked takes the resources of t: an entry with an ID shares the
// pool's duplicate (made on first use), one without keeps its own. On
// failure t's entries are released and the error says why (a full
// descriptor table matches ErrFDLimit).
func (p *Pool) adoptLocked(t *Task) error {
	for i := range t.Res {
		s := &t.Res[i]
		if s.ID != 0 {
			if h := p.held[s.ID]; h != nil {
				if s.Owned {
					closeFiles(s.Files)
				}
				h.refs++
				s.Files, s.Owned = h.files, false
				continue
			}
		}
		files := s.Files
		if !s.Owned {
			var err error
			if files, err = dupFiles(s.Files); err != nil {
				for j := range t.Res[i:] {
					t.Res[i+j].Settle(false)
					if t.Res[i+j].Owned {
						closeFiles(t.Res[i+j].Files)
					}
				}
				t.Res = t.Res[:i]
				p.releaseLocked(t).run()
				return fmt.Errorf("multiproc: task %q: taking its resources' descriptors: %w", t.Fn.Name, err)
			}
		}
		if s.ID != 0 {
			if p.held == nil {
				p.held = map[uint64]*held{}
			}
			p.held[s.ID] = &held{files: files, refs: 1}
			s.Files, s.Owned = files, false
		} else {
			s.Files, s.Owned = files, true
		}
	}
	return nil
}

// hooks are resource hooks to settle with delivered, once p.mu is released.
type hooks struct {
	fns       []func(bool)
	delivered bool
}

func (h hooks) run() {
	for _, f := range h.fns {
		f(h.delivered)
	}
}

// resWrite is a task whose frame in the write being built carries its
// resources; carried is cleared if the frame went out as a stub after all.
type resWrite struct {
	t       *Task
	carried bool
}

// notCarried records that t's frame in this write does not carry its
// resources after all (it went out as a stub). w.writeMu is held.
func (w *worker) notCarried(t *Task) {
	for i := range w.wres {
		if w.wres[i].t == t {
			w.wres[i].carried = false
		}
	}
}

// wroteLocked ends a write for the tasks whose frames carried resources:
// ok says it succeeded. It returns the hooks of those settled meanwhile,
// whose last write this was.
func (w *worker) wroteLocked(ok bool) []hooks {
	p := w.p
	var late []hooks
	for _, r := range w.wres {
		t := r.t
		t.Sched.Writing--
		if ok && r.carried {
			t.Sched.Delivered = true
		}
		if fns := p.lateHooks[t]; fns != nil && t.Sched.Writing == 0 {
			delete(p.lateHooks, t)
			late = append(late, hooks{fns, t.Sched.Delivered})
		}
	}
	clear(w.wres)
	w.wres = w.wres[:0]
	return late
}

func settleLate(late []hooks) {
	for _, h := range late {
		h.run()
	}
}

// releaseLocked drops t's claim on its resources, at its final outcome,
// and returns its hooks, for the caller to run once p.mu is released
// (none while a write carrying t is under way: wroteLocked returns them).
func (p *Pool) releaseLocked(t *Task) hooks {
	var h hooks
	for i := range t.Res {
		s := &t.Res[i]
		if s.Done != nil {
			h.fns = append(h.fns, s.Done)
			s.Done = nil
		}
		if s.ID == 0 {
			if s.Owned {
				closeFiles(s.Files)
			}
		} else if h := p.held[s.ID]; h != nil && !h.pinned {
			if h.refs--; h.refs == 0 {
				closeFiles(h.files)
				delete(p.held, s.ID)
			}
		}
		s.Files = nil
	}
	t.Res = nil
	h.delivered = t.Sched.Delivered
	if h.fns != nil && t.Sched.Writing > 0 {
		if p.lateHooks == nil {
			p.lateHooks = map[*Task][]func(bool){}
		}
		p.lateHooks[t] = h.fns
		return hooks{}
	}
	return h
}

// dropRes closes the owned descriptors of a task that was never adopted
// and settles its hooks as not delivered.
func dropRes(t *Task) {
	for j := range t.Res {
		t.Res[j].Settle(false)
		if t.Res[j].Owned {
			closeFiles(t.Res[j].Files)
		}
	}
	t.Res = nil
}

// adoptInit takes the initializer's resources for the pool's life.
func (p *Pool) adoptInit() error {
	res := p.cfg.InitRes
	for i := range res {
		s := &res[i]
		files := s.Files
		if !s.Owned {
			var err error
			if files, err = dupFiles(s.Files); err != nil {
				for j := range res[i:] {
					res[i+j].Settle(false)
					if res[i+j].Owned {
						closeFiles(res[i+j].Files)
					}
				}
				p.cfg.InitRes = res[:i]
				return fmt.Errorf("multiproc: taking the initializer's resources: %w", err)
			}
		}
		s.Files, s.Owned = files, true
		if s.ID != 0 {
			if p.held == nil {
				p.held = map[uint64]*held{}
			}
			p.held[s.ID] = &held{files: files, pinned: true}
		}
	}
	return nil
}

// releaseInit closes the initializer's resources once the pool is done.
func (p *Pool) releaseInitLocked() {
	for i := range p.cfg.InitRes {
		s := &p.cfg.InitRes[i]
		s.Settle(p.initDelivered.Load())
		closeFiles(s.Files)
		if s.ID != 0 {
			delete(p.held, s.ID)
		}
		s.Files = nil
	}
	p.cfg.InitRes = nil
}

// initFiles lists the initializer's descriptors for a new worker, and
// appends the shape of their table to the start payload.
func (p *Pool) initFiles() []*os.File { return wire.AllFiles(p.cfg.InitRes) }

// pinInitLocked records in a new worker's mirror what its initializer
// received: those objects it keeps for its whole life.
func (w *worker) pinInitLocked(res []wire.Sent) {
	for _, s := range res {
		if s.ID != 0 {
			if w.cache == nil {
				w.cache = map[uint64]*cached{}
			}
			w.cache[s.ID] = &cached{pinned: true}
		}
	}
}

// resTableLocked appends t's resource table, as this write to w sends it,
// to w.wtab and returns the duplicates of the descriptors to send with it
// (the write closes them). It updates w's mirror. seq numbers this write.
func (w *worker) resTableLocked(t *Task, seq uint64) (fds []int, err error) {
	w.wtab = binary.AppendUvarint(w.wtab, uint64(len(t.Res)))
	for _, s := range t.Res {
		send := true
		if s.ID != 0 {
			if c := w.cache[s.ID]; c != nil {
				c.seq = max(c.seq, seq)
				send = false
			}
		}
		n := 0
		if send {
			d, err := dupAll(s.Files)
			if err != nil {
				closeAll(fds)
				return nil, err
			}
			fds = append(fds, d...)
			n = len(d)
			if s.ID != 0 {
				if w.cache == nil {
					w.cache = map[uint64]*cached{}
				}
				w.cache[s.ID] = &cached{seq: seq}
			}
		}
		w.wtab = binary.AppendUvarint(w.wtab, s.ID)
		w.wtab = binary.AppendUvarint(w.wtab, uint64(n))
	}
	return fds, nil
}

// unsend takes back from w's mirror the resources that a frame
// which is not going out after all (too large) was to send.
func (w *worker) unsend(tab []byte) {
	d := wire.NewBuf(tab)
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	for n := d.Uvarint(); n > 0 && d.Err() == nil; n-- {
		id, k := d.Uvarint(), d.Uvarint()
		if id != 0 && k > 0 {
			delete(w.cache, id)
		}
	}
}

// evictLocked chooses, when w holds more than cacheLimit resources, the
// least recently used ones that this write (seq) does not use, and queues
// them to be dropped.
func (w *worker) evictLocked(seq uint64) {
	over := len(w.cache) - cacheLimit
	for _, c := range w.cache {
		if c.pinned {
			over++
		}
	}
	if over <= 0 {
		return
	}
	type cand struct {
		id, seq uint64
	}
	var cs []cand
	for id, c := range w.cache {
		if !c.pinned && c.seq < seq {
			cs = append(cs, cand{id, c.seq})
		}
	}
	slices.SortFunc(cs, func(a, b cand) int { return cmp.Compare(a.seq, b.seq) })
	for _, c := range cs[:min(over, len(cs))] {
		delete(w.cache, c.id)
		w.evicts = append(w.evicts, c.id)
	}
}

// released is wire.Release's callback: every worker holding id drops it.
func (p *Pool) released(id uint64) {
	var kick []*worker
	p.mu.Lock()
	for _, w := range p.workers {
		if c := w.cache[id]; c != nil && !c.pinned {
			delete(w.cache, id)
			w.evicts = append(w.evicts, id)
			kick = append(kick, w)
		}
	}
	p.mu.Unlock()
	for _, w := range kick {
		w.kick()
	}
}

// appendEvict appends an evict frame for ids.
func appendEvict(dst []byte, ids []uint64) []byte {
	buf, off := wire.BeginFrame(dst, kindEvict)
	buf = binary.AppendUvarint(buf, uint64(len(ids)))
	for _, id := range ids {
		buf = binary.AppendUvarint(buf, id)
	}
	wire.EndFrame(buf, off, 0)
	return buf
}

func dupFiles(fs []*os.File) ([]*os.File, error) {
	fds, err := dupAll(fs)
	if err != nil {
		return nil, err
	}
	own := make([]*os.File, len(fds))
	for i, fd := range fds {
		own[i] = os.NewFile(uintptr(fd), fs[i].Name())
	}
	return own, nil
}

func dupAll(fs []*os.File) ([]int, error) {
	fds := make([]int, 0, len(fs))
	for _, f := range fs {
		fd, err := wire.DupFD(f)
		if err != nil {
			closeAll(fds)
			if errors.Is(err, syscall.EMFILE) {
				err = fmt.Errorf("%w: %w", errs.ErrFDLimit, err)
			}
			return nil, err
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		wire.CloseFD(fd)
	}
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}
