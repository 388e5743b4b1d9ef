package ipc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/multiproc-go/multiproc/internal/futex"
	"github.com/multiproc-go/multiproc/internal/memfd"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// The shared ring behind every queue type. One memfd holds a 4 KiB header
// page and a data area of the queue's byte capacity C (a multiple of the
// page size). Items are records in the data area, at monotonically growing
// 64-bit positions (a position's offset is pos % C):
//
//	record: state u32 | len u32 | owner u64 (pid | start-time tag << 32) | payload, padded to 16
//
// Three positions split the ring, all changed only under the header's
// robust mutex: head ≤ rd ≤ tail. [rd, tail) holds items not yet taken
// (WRITING: reserved by a producer that is still copying; READY), and
// pads; [head, rd) holds records taken by consumers (READING: being
// copied out; DONE) that are not yet reclaimed. A producer reserves under
// the lock (a header stamped WRITING with its identity), copies its payload
// with the lock released, and stores READY. A consumer claims the first
// item at rd under the lock (stamped READING with its identity), decodes it
// straight from shared memory with the lock released, and stores DONE.
// Consumers advance head over DONE records as they claim; a producer
// reclaims (and checks a READING record's owner) only when its record does
// not fit. So the lock
// is held for a few stores per item, and large items are copied in by a
// producer and out by a consumer at the same time.
//
// Faults. A process killed holding the lock leaves it to the next taker
// with futex.ErrOwnerDead; the taker repairs (qcore.repair): it walks the
// records, undoes a claim that did not finish, and recounts. A producer
// killed while copying leaves a WRITING record: a consumer blocked on it
// checks the owner (after qStuckAfter, then every futex.Chunk) and skips it
// (DEAD) when it is gone. A consumer killed while copying leaves a READING
// record: a producer that needs the room checks the owner the same way and
// reclaims it. Either way the one item that process was moving is lost and
// nothing else is.
//
// Waiting. Three sequence words (items, space, done) with a sleeper count
// each: a waker bumps the word and calls FUTEX_WAKE only when the count is
// non-zero, so an uncontended Put or Get makes no system call. Sleepers
// go through a futex.Gate per word and handle, so at most one goroutine per
// process and word holds an OS thread in the kernel.

// Header layout (byte offsets). The lock, the positions and the count share
// one cache line (they are touched together under the lock); each sequence
// word has a line of its own.
const (
	qHdrSize = 4096

	qOffMagic    = 0  // u32
	qOffVersion  = 4  // u32
	qOffKind     = 8  // u32: qKind*
	qOffCap      = 16 // u64: data area bytes
	qOffMax      = 24 // u64: MaxItems, 0 = none
	qOffTypeHash = 32 // u64: FNV-1a of the element type's name

	qOffMutex  = 64  // futex.Mutex word
	qOffHead   = 72  // u64
	qOffRd     = 80  // u64
	qOffTail   = 88  // u64
	qOffCount  = 96  // u64: items in [rd, tail) (WRITING or READY)
	qOffClosed = 104 // u32
	qOffAnon   = 112 // u64: JoinableQueue: taken, not done, by a process without a slot

	qOffItemSeq   = 128
	qOffItemWait  = 132
	qOffSpaceSeq  = 192
	qOffSpaceWait = 196
	qOffDoneSeq   = 256
	qOffDoneWait  = 260

	// JoinableQueue's table of consumers: identity u64, pending u64 (taken
	// by Get, not yet TaskDone). A consumer is found here when it dies.
	qOffSlots = 512
	qSlotSize = 16
	qSlots    = (qHdrSize - qOffSlots) / qSlotSize

	qMagic   = 0x7571706d // "mpqu"
	qVersion = 1
	qRecHdr  = 16
	qAlign   = 16

	// qStuckAfter is how long a record must block a waiter before the
	// waiter checks whether its owner still lives (a /proc read); until
	// then a busy peer costs nothing. With the futex.Chunk bound on every
	// sleep, a dead owner's record is skipped or reclaimed within
	// qStuckAfter + Chunk (~250 ms).
	qStuckAfter = 200 * time.Millisecond
)

// Record states.
const (
	qWriting = 1
	qReady   = 2
	qReading = 3
	qDone    = 4
	qPad     = 5
	qDead    = 6 // a WRITING record whose producer died: skipped
)

// Queue kinds, in the header and the exported state.
const (
	qKindQueue     = 1
	qKindJoinable  = 2
	qKindSimple    = 3
	qMaxCapacity   = 1 << 30
	qMinCapacity   = 4096
	qDefaultMaxRec = 0
)

func qKindName(k uint32) string {
	switch k {
	case qKindQueue:
		return "Queue"
	case qKindJoinable:
		return "JoinableQueue"
	case qKindSimple:
		return "SimpleQueue"
	}
	return fmt.Sprintf("queue of unknown kind %d", k)
}

// qres is the outcome of one attempt under the lock.
type qres int

const (
	qOK        qres = iota
	qFullItems      // MaxItems reached
	qFullSpace      // no room for the record
	qEmpty
	qBlocked // the next item is still being written
	qClosedR
	qReleasedR
)

// qmap is one mapping of a queue's memfd in this process. Handles made by
// imports of the same memfd share it (found by device and inode); an
// imported mapping is unmapped, and its memfd closed, when the last
// imported handle on it is released (a pool worker releases the copy it
// keeps when the pool evicts it), so qmaps holds only mappings that some
// live handle uses.
type qmap struct {
	files []*os.File // the memfd, as the one-element slice exports hand out
	mem   []byte
	key   [2]uint64
	hb    futex.HB
	refs  int // imported handles on it, under qmaps' lock (creator: unused)
}

var qmaps struct {
	sync.Mutex
	byKey map[[2]uint64]*qmap
}

// qcore is one process's handle on a queue: the typed queues wrap it.
type qcore struct {
	m        *qmap
	hdr      unsafe.Pointer
	data     []byte
	cap      uint64
	mask     uint64 // cap-1 when cap is a power of two, else 0
	max      uint64
	kind     uint32
	mu       *futex.Mutex
	items    *futex.Gate
	space    *futex.Gate
	done     *futex.Gate
	self     uint64
	id       uint64
	state    []byte
	imported bool

	rw       sync.RWMutex // operations read-hold it; the creator's Release write-holds it to unmap
	released atomic.Bool

	slot int32 // JoinableQueue: this process's slot index (-1: none yet), under the lock

	stuckR qstuck // the record blocking this handle's consumers
	stuckW qstuck // the record blocking this handle's producers
}

// qstuck remembers which record has been blocking a handle since when.
type qstuck struct {
	mu    sync.Mutex
	pos   uint64
	owner uint64
	since time.Time
}

func (c *qcore) u64(off uintptr) *uint64 { return (*uint64)(unsafe.Add(c.hdr, off)) }
func (c *qcore) u32(off uintptr) *uint32 { return (*uint32)(unsafe.Add(c.hdr, off)) }

func qSelf() uint64 {
	pid, tag := futex.Self()
	return uint64(tag)<<32 | uint64(pid)
}

func qAlive(owner uint64) bool {
	pid, tag := uint32(owner), uint32(owner>>32)
	if spid, stag := futex.Self(); pid == spid {
		return tag == stag
	}
	return futex.Alive(pid, tag)
}

func qTypeHash(name string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	return h
}

// qNew makes the shared memory of a new queue.
func qNew(kind uint32, capacity, maxItems uint64, typeName string) (*qcore, error) {
	if !futex.Supported {
		return nil, fmt.Errorf("ipc: queues need futexes (Linux): %w", errors.ErrUnsupported)
	}
	size := qHdrSize + int(capacity)
	f, err := memfd.New("multiproc-queue", int64(size))
	if err != nil {
		return nil, fmt.Errorf("ipc: creating the queue's shared memory: %w", err)
	}
	mem, err := memfd.Map(f, 0, size)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ipc: mapping the queue's shared memory: %w", err)
	}
	binary.LittleEndian.PutUint32(mem[qOffMagic:], qMagic)
	binary.LittleEndian.PutUint32(mem[qOffVersion:], qVersion)
	binary.LittleEndian.PutUint32(mem[qOffKind:], kind)
	binary.LittleEndian.PutUint64(mem[qOffCap:], capacity)
	binary.LittleEndian.PutUint64(mem[qOffMax:], maxItems)
	binary.LittleEndian.PutUint64(mem[qOffTypeHash:], qTypeHash(typeName))
	m := &qmap{files: []*os.File{f}, mem: mem}
	c := qWrap(m, kind, typeName)
	c.id = wire.NewID()
	return c, nil
}

func qWrap(m *qmap, kind uint32, typeName string) *qcore {
	hdr := unsafe.Pointer(&m.mem[0])
	c := &qcore{
		m: m, hdr: hdr, data: m.mem[qHdrSize:],
		kind: kind, self: qSelf(), slot: -1,
		items: futex.NewGate(), space: futex.NewGate(), done: futex.NewGate(),
	}
	c.cap = *c.u64(qOffCap)
	if c.cap&(c.cap-1) == 0 {
		c.mask = c.cap - 1
	}
	c.max = *c.u64(qOffMax)
	c.mu = futex.MutexAt(unsafe.Add(hdr, qOffMutex))
	c.state = qMakeState(kind, c.cap, typeName)
	return c
}

// qMakeState is the exported state: kind, capacity, element type name.
func qMakeState(kind uint32, capacity uint64, typeName string) []byte {
	b := append(make([]byte, 0, 1+binary.MaxVarintLen64+len(typeName)), byte(kind))
	b = binary.AppendUvarint(b, capacity)
	return append(b, typeName...)
}

// qParseState is the inverse of qMakeState; it never panics on any input.
func qParseState(state []byte) (kind uint32, capacity uint64, typeName string, err error) {
	if len(state) < 2 {
		return 0, 0, "", fmt.Errorf("ipc: importing a queue: %d bytes of state", len(state))
	}
	capacity, n := binary.Uvarint(state[1:])
	if n <= 0 {
		return 0, 0, "", errors.New("ipc: importing a queue: malformed state")
	}
	kind = uint32(state[0])
	if kind < qKindQueue || kind > qKindSimple {
		return 0, 0, "", fmt.Errorf("ipc: importing a queue: unknown kind %d", kind)
	}
	if capacity < qMinCapacity || capacity > qMaxCapacity || capacity%qAlign != 0 {
		return 0, 0, "", fmt.Errorf("ipc: importing a queue: capacity %d out of range", capacity)
	}
	return kind, capacity, string(state[1+n:]), nil
}

// qCheckHeader reports whether mem is the segment of a queue of this kind,
// capacity and element type. It never panics on any input.
func qCheckHeader(mem []byte, kind uint32, capacity uint64, typeName string) error {
	if len(mem) < qHdrSize {
		return fmt.Errorf("ipc: received queue memory is %d bytes", len(mem))
	}
	le := binary.LittleEndian
	switch {
	case le.Uint32(mem[qOffMagic:]) != qMagic || le.Uint32(mem[qOffVersion:]) != qVersion:
		return errors.New("ipc: received shared memory is no queue of this version")
	case le.Uint32(mem[qOffKind:]) != kind:
		return fmt.Errorf("ipc: received a %s where a %s is expected", qKindName(le.Uint32(mem[qOffKind:])), qKindName(kind))
	case le.Uint64(mem[qOffCap:]) != capacity || uint64(len(mem)) != qHdrSize+capacity:
		return fmt.Errorf("ipc: received queue's capacity %d does not match its state (%d) or its size (%d)",
			le.Uint64(mem[qOffCap:]), capacity, len(mem))
	case le.Uint64(mem[qOffTypeHash:]) != qTypeHash(typeName):
		return fmt.Errorf("ipc: received queue does not hold %s", typeName)
	}
	return nil
}

// qImport maps (or finds this process's mapping of) a queue's memfd. It
// owns files.
func qImport(state []byte, files []*os.File, wantKind uint32, typeName string) (*qcore, error) {
	if len(files) != 1 {
		for _, f := range files {
			f.Close()
		}
		return nil, fmt.Errorf("ipc: importing a queue: %d descriptors, want 1", len(files))
	}
	f := files[0]
	kind, capacity, name, err := qParseState(state)
	if err != nil {
		f.Close()
		return nil, err
	}
	if kind != wantKind {
		f.Close()
		return nil, fmt.Errorf("ipc: received a %s where a %s is expected", qKindName(kind), qKindName(wantKind))
	}
	if name != typeName {
		f.Close()
		return nil, fmt.Errorf("ipc: received a %s of %s where one of %s is expected", qKindName(kind), name, typeName)
	}
	if !futex.Supported {
		f.Close()
		return nil, fmt.Errorf("ipc: queues need futexes (Linux): %w", errors.ErrUnsupported)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ipc: received queue memory: %w", err)
	}
	key := qStatKey(fi)
	qmaps.Lock()
	defer qmaps.Unlock()
	m := qmaps.byKey[key]
	if m == nil {
		if fi.Size() != int64(qHdrSize+capacity) {
			f.Close()
			return nil, fmt.Errorf("ipc: received queue memory is %d bytes, want %d", fi.Size(), qHdrSize+capacity)
		}
		mem, err := memfd.Map(f, 0, int(fi.Size()))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("ipc: mapping a received queue: %w", err)
		}
		if err := qCheckHeader(mem, kind, capacity, typeName); err != nil {
			memfd.Unmap(mem)
			f.Close()
			return nil, err
		}
		m = &qmap{files: []*os.File{f}, mem: mem, key: key}
		if qmaps.byKey == nil {
			qmaps.byKey = map[[2]uint64]*qmap{}
		}
		qmaps.byKey[key] = m
	} else {
		f.Close()
		if err := qCheckHeader(m.mem, kind, capacity, typeName); err != nil {
			return nil, err
		}
	}
	m.refs++
	c := qWrap(m, kind, typeName)
	c.id, c.imported = wire.NewID(), true
	return c, nil
}

// enter marks an operation in progress (the creator's Release waits for
// it); false means the handle is released.
func (c *qcore) enter() bool {
	if c == nil {
		return false
	}
	c.rw.RLock()
	if c.released.Load() {
		c.rw.RUnlock()
		return false
	}
	return true
}

func (c *qcore) exit() { c.rw.RUnlock() }

// lock takes the queue's mutex, repairing the ring when its last holder
// died holding it.
func (c *qcore) lock(ctx context.Context) error {
	err := c.mu.Lock(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, futex.ErrOwnerDead):
		c.repair()
		c.mu.MarkConsistent()
		return nil
	case errors.Is(err, futex.ErrNotRecoverable):
		// Never made by this package (every taker marks it consistent),
		// but a stranger writing the memory could.
		return fmt.Errorf("ipc: queue lock: %w", err)
	}
	return err
}

func (c *qcore) unlock() { c.mu.Unlock() }

// rec returns the header words of the record at pos.
func (c *qcore) rec(pos uint64) (state *uint32, ln *uint32, owner *uint64) {
	p := unsafe.Pointer(&c.data[c.off(pos)])
	return (*uint32)(p), (*uint32)(unsafe.Add(p, 4)), (*uint64)(unsafe.Add(p, 8))
}

// off returns the offset in the data area of position pos. A capacity that
// is a power of two (the default) takes a mask, not a division: a Put and
// a Get compute some ten offsets, and a 64-bit division costs tens of
// cycles.
func (c *qcore) off(pos uint64) uint64 {
	if c.mask != 0 {
		return pos & c.mask
	}
	return pos % c.cap
}

func qRecSize(n uint32) uint64 { return qRecHdr + (uint64(n)+qAlign-1)&^(qAlign-1) }

// size returns the size of the record at pos, or 0 when its header is not
// a record that fits (corrupt memory: never written by this package).
func (c *qcore) size(pos uint64) uint64 {
	_, ln, _ := c.rec(pos)
	s := qRecSize(atomic.LoadUint32(ln))
	if s > c.cap-c.off(pos) {
		return 0
	}
	return s
}

// stuck reports whether the record at pos, owned by owner, has blocked
// this handle for qStuckAfter and its owner is dead. The /proc check runs
// only after that delay, so a live peer costs no system call.
func (k *qstuck) stuck(pos, owner uint64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	if k.pos != pos || k.owner != owner || k.since.IsZero() {
		k.pos, k.owner, k.since = pos, owner, now
		return false
	}
	if now.Sub(k.since) < qStuckAfter {
		return false
	}
	return !qAlive(owner)
}

// reserve makes room for a record of payload n at tail, stamped WRITING by
// this process (lock held).
func (c *qcore) reserve(n int) (uint64, qres) {
	if atomic.LoadUint32(c.u32(qOffClosed)) != 0 {
		return 0, qClosedR
	}
	count := atomic.LoadUint64(c.u64(qOffCount))
	if c.max > 0 && count >= c.max {
		return 0, qFullItems
	}
	need := qRecSize(uint32(n))
	rd, tail := atomic.LoadUint64(c.u64(qOffRd)), atomic.LoadUint64(c.u64(qOffTail))
	off := c.off(tail)
	var pad uint64
	if off+need > c.cap {
		pad = c.cap - off
	}
	// Consumers advance head as they claim (claim), over records whose
	// lines are in their caches; a producer reclaims only when the record
	// does not fit, since reading the state of a record that a consumer
	// on the other CPU has just written costs a cache miss under the lock.
	// First without asking whether a READING record's consumer lives (a
	// lock and a clock read; in a stream the consumer is usually still
	// decoding the record just behind), then with.
	head := atomic.LoadUint64(c.u64(qOffHead))
	if head != tail && tail+pad+need-head > c.cap {
		head = c.reclaim(false)
	}
	if head != tail && tail+pad+need-head > c.cap {
		head = c.reclaim(true)
	}
	if head == tail {
		// Empty: a pad to the end is reclaimed at once, so any record up
		// to the capacity fits.
		if pad > 0 {
			c.writePad(tail, pad)
			tail += pad
			atomic.StoreUint64(c.u64(qOffTail), tail)
			atomic.StoreUint64(c.u64(qOffRd), tail)
			atomic.StoreUint64(c.u64(qOffHead), tail)
			head, rd = tail, tail
		}
	} else if tail+pad+need-head > c.cap {
		return 0, qFullSpace
	} else if pad > 0 {
		c.writePad(tail, pad)
		old := tail
		tail += pad
		atomic.StoreUint64(c.u64(qOffTail), tail)
		if rd == old {
			atomic.StoreUint64(c.u64(qOffRd), tail)
		}
	}
	st, ln, ow := c.rec(tail)
	atomic.StoreUint64(ow, c.self)
	atomic.StoreUint32(ln, uint32(n))
	atomic.StoreUint32(st, qWriting)
	atomic.StoreUint64(c.u64(qOffTail), tail+need)
	atomic.StoreUint64(c.u64(qOffCount), count+1)
	return tail, qOK
}

func (c *qcore) writePad(pos, size uint64) {
	st, ln, ow := c.rec(pos)
	atomic.StoreUint64(ow, 0)
	atomic.StoreUint32(ln, uint32(size-qRecHdr))
	atomic.StoreUint32(st, qPad)
}

// reclaim advances head over finished records and returns it (lock held).
// With probe, a READING record whose consumer died is reclaimed (its item
// is lost); without, reclaim stops at any READING record.
func (c *qcore) reclaim(probe bool) uint64 {
	head, rd := atomic.LoadUint64(c.u64(qOffHead)), atomic.LoadUint64(c.u64(qOffRd))
	start := head
	for head < rd {
		st, _, ow := c.rec(head)
		s := c.size(head)
		if s == 0 || head+s > rd {
			break
		}
		switch atomic.LoadUint32(st) {
		case qDone, qPad, qDead:
			head += s
			continue
		case qReading:
			if probe && c.stuckW.stuck(head, atomic.LoadUint64(ow)) {
				atomic.StoreUint32(st, qDone)
				head += s
				continue
			}
		}
		break
	}
	if head != start {
		atomic.StoreUint64(c.u64(qOffHead), head)
	}
	return head
}

// claim takes the item at rd for this process (lock held): it returns the
// record's position, stamped READING. With probe, a WRITING record that
// has blocked this handle for qStuckAfter and whose producer died is
// skipped; without, claim reports qBlocked at once (a Get's first tries,
// made before it waits: a live producer is usually copying that record
// in, and the check costs a lock and a clock read).
func (c *qcore) claim(probe bool) (uint64, qres) {
	// Advance head over finished records here rather than in Put: this
	// consumer has usually just finished the record at head itself, so
	// its state is in this CPU's cache (see reserve).
	c.reclaim(false)
	start, tail := atomic.LoadUint64(c.u64(qOffRd)), atomic.LoadUint64(c.u64(qOffTail))
	rd := start
	r := qEmpty
walk:
	for rd < tail {
		st, _, ow := c.rec(rd)
		s := c.size(rd)
		if s == 0 || rd+s > tail {
			r = qBlocked // not a record: corrupt memory
			break
		}
		switch atomic.LoadUint32(st) {
		case qPad, qDead:
			rd += s
		case qReady, qReading: // READING here: a claim cut short, undone by repair
			if c.kind == qKindJoinable {
				// Counted as this process's before the claim: a death
				// between the two leaves the item READY (still consumed by
				// someone) and one count on the dead slot, which makes Join
				// report ErrPeerDied once; the other order could lose the
				// count and let Join return while the item is unfinished.
				c.addPending(1)
			}
			pos := rd
			atomic.StoreUint64(ow, c.self)
			atomic.StoreUint32(st, qReading)
			atomic.StoreUint64(c.u64(qOffRd), rd+s)
			atomic.AddUint64(c.u64(qOffCount), ^uint64(0))
			return pos, qOK
		case qWriting:
			if !probe || !c.stuckR.stuck(rd, atomic.LoadUint64(ow)) {
				r = qBlocked
				break walk
			}
			atomic.StoreUint32(st, qDead)
			atomic.AddUint64(c.u64(qOffCount), ^uint64(0))
			rd += s
			c.wakeDone()
		default:
			r = qBlocked // not a record: corrupt memory; repair cannot help
			break walk
		}
	}
	if rd != start {
		atomic.StoreUint64(c.u64(qOffRd), rd)
	}
	if r == qEmpty && atomic.LoadUint32(c.u32(qOffClosed)) != 0 {
		return 0, qClosedR
	}
	return 0, r
}

// repair restores the ring's invariants after a process died holding the
// lock (lock held): a claim that did not finish is undone (its record at or
// after rd is READY again) and the count is recounted. Every store under
// the lock is ordered so that each prefix of a critical section leaves
// records this walk can read.
func (c *qcore) repair() {
	head, rd, tail := atomic.LoadUint64(c.u64(qOffHead)), atomic.LoadUint64(c.u64(qOffRd)), atomic.LoadUint64(c.u64(qOffTail))
	if !(head <= rd && rd <= tail && tail-head <= c.cap) {
		c.reset(tail)
		return
	}
	for p := head; p < rd; {
		s := c.size(p)
		if s == 0 || p+s > rd {
			c.reset(tail)
			return
		}
		p += s
	}
	var count uint64
	for p := rd; p < tail; {
		s := c.size(p)
		if s == 0 || p+s > tail {
			c.reset(tail)
			return
		}
		st, _, _ := c.rec(p)
		switch atomic.LoadUint32(st) {
		case qReading:
			atomic.StoreUint32(st, qReady)
			count++
		case qReady, qWriting:
			count++
		}
		p += s
	}
	atomic.StoreUint64(c.u64(qOffCount), count)
}

// reset empties a ring whose records cannot be read (lock held).
func (c *qcore) reset(tail uint64) {
	tail = (tail + c.cap - 1) / c.cap * c.cap
	atomic.StoreUint64(c.u64(qOffTail), tail)
	atomic.StoreUint64(c.u64(qOffRd), tail)
	atomic.StoreUint64(c.u64(qOffHead), tail)
	atomic.StoreUint64(c.u64(qOffCount), 0)
}

// payload returns the payload of the record at pos.
func (c *qcore) payload(pos uint64) []byte {
	_, ln, _ := c.rec(pos)
	off := c.off(pos) + qRecHdr
	return c.data[off : off+uint64(atomic.LoadUint32(ln))]
}

// Wake-ups. A sequence word is even while sleepers are armed and odd once a
// waker has signalled them: a sleeper arms (odd → even) before its last
// check and sleeps on the even value; a waker with sleepers about flips it
// to odd with one CAS and makes the one FUTEX_WAKE (all sleepers: they
// re-check, and those that find nothing re-arm). Later wakers see odd and
// make no system call until a sleeper re-arms. Without this, a producer
// whose consumer had gone to sleep paid a FUTEX_WAKE for every item until
// the consumer's process was scheduled again (a profile of
// queue_small.1to1 at load ~15: a fifth of the CPU time in futex_wake).
func (c *qcore) wake(seq, waiters uintptr) {
	if atomic.LoadUint32(c.u32(waiters)) == 0 {
		return
	}
	p := c.u32(seq)
	if v := atomic.LoadUint32(p); v&1 == 0 && atomic.CompareAndSwapUint32(p, v, v+1) {
		futex.Wake(p, 0)
	}
}

// arm returns the even value of seq a sleeper sleeps on, re-arming it.
func (c *qcore) arm(seq uintptr) uint32 {
	p := c.u32(seq)
	for {
		v := atomic.LoadUint32(p)
		if v&1 == 0 {
			return v
		}
		if atomic.CompareAndSwapUint32(p, v, v+1) {
			return v + 1
		}
	}
}

func (c *qcore) wakeItems() { c.wake(qOffItemSeq, qOffItemWait) }
func (c *qcore) wakeSpace() { c.wake(qOffSpaceSeq, qOffSpaceWait) }
func (c *qcore) wakeDone()  { c.wake(qOffDoneSeq, qOffDoneWait) }

func (c *qcore) wakeAll() {
	for _, w := range [...][2]uintptr{{qOffItemSeq, qOffItemWait}, {qOffSpaceSeq, qOffSpaceWait}, {qOffDoneSeq, qOffDoneWait}} {
		atomic.AddUint32(c.u32(w[0]), 1)
		futex.Wake(c.u32(w[0]), 0)
	}
}

// put copies src into the queue as one item: TryPut when block is false.
func (c *qcore) put(ctx context.Context, src []byte, block bool) error {
	return c.putWith(ctx, len(src), block, func(dst []byte) bool { copy(dst, src); return true })
}

// putWith adds an item of n bytes, which write stores into dst (len n, in
// shared memory) once the room is reserved: put, or a Put that encodes
// straight into the ring. write returns false when it could not fill dst
// exactly (an encoder that broke its size contract): the record is then
// skipped (DEAD) rather than left WRITING under a live owner, where it
// would block every consumer, and Put fails with errPutAborted.
func (c *qcore) putWith(ctx context.Context, n int, block bool, write func(dst []byte) bool) error {
	// In uint64: 1<<31 does not fit a 32-bit int.
	if qRecSize(uint32(min(uint64(n), 1<<31))) > c.cap || uint64(n) > 1<<31 {
		return fmt.Errorf("%w: item of %d bytes (%d with its record header) exceeds the queue's byte capacity %d (ByteCapacity)",
			ErrTooLarge, n, qRecSize(uint32(min(uint64(n), 1<<31))), c.cap)
	}
	if !c.enter() {
		return fmt.Errorf("%w: queue released by this process", ErrClosed)
	}
	defer c.exit()
	var pos uint64
	try := func() (qres, error) {
		if c.released.Load() {
			return qReleasedR, nil
		}
		if err := c.lock(ctx); err != nil {
			return 0, err
		}
		var r qres
		pos, r = c.reserve(n)
		c.unlock()
		return r, nil
	}
	r, err := try()
	if err != nil {
		return err
	}
	if (r == qFullItems || r == qFullSpace) && block {
		err = c.space.Wait(ctx, c.u32(qOffSpaceSeq), c.u32(qOffSpaceWait), func() (uint32, bool, error) {
			s := c.arm(qOffSpaceSeq)
			var err error
			r, err = try()
			if err != nil {
				return 0, true, err
			}
			return s, r != qFullItems && r != qFullSpace, nil
		})
		if err != nil {
			// Say why Put was waiting: the error matches both ctx's error
			// and ErrFull when the queue was still full at the last try.
			switch r {
			case qFullItems:
				return fmt.Errorf("ipc: Put: %w while the queue was full: %w, it held its MaxItems (%d)", qCtxErr(ctx, err), ErrFull, c.max)
			case qFullSpace:
				return fmt.Errorf("ipc: Put: %w while the queue was full: %w, no room for %d bytes in its ByteCapacity (%d)", qCtxErr(ctx, err), ErrFull, n, c.cap)
			}
			return fmt.Errorf("ipc: Put: %w", qCtxErr(ctx, err))
		}
	}
	switch r {
	case qFullItems:
		return fmt.Errorf("%w: %d items (MaxItems)", ErrFull, c.max)
	case qFullSpace:
		return fmt.Errorf("%w: no room for %d bytes in the queue's %d (ByteCapacity)", ErrFull, n, c.cap)
	case qClosedR:
		return fmt.Errorf("%w: Put on a closed queue", ErrClosed)
	case qReleasedR:
		return fmt.Errorf("%w: queue released by this process", ErrClosed)
	}
	if !write(c.payload(pos)) {
		c.abort(pos)
		return errPutAborted
	}
	c.m.hb.Release()
	st, _, _ := c.rec(pos)
	atomic.StoreUint32(st, qReady)
	c.wakeItems()
	return nil
}

// errPutAborted is Put's error when its encoder did not fill the room
// it had reserved (see putWith): a bug in the codec, reported instead of
// leaving the queue blocked.
var errPutAborted = errors.New("ipc: Put: internal error: the encoder did not fill the room it reserved (the item was not added)")

// abort marks the record at pos, reserved by this process and not yet
// READY, as skipped, under the lock (the count is the lock's), and wakes
// whoever waits for it.
func (c *qcore) abort(pos uint64) {
	if c.lock(context.Background()) != nil {
		return // not recoverable: memory written by a stranger
	}
	st, _, _ := c.rec(pos)
	atomic.StoreUint32(st, qDead)
	atomic.AddUint64(c.u64(qOffCount), ^uint64(0))
	c.unlock()
	c.wakeItems()
	c.wakeSpace()
	c.wakeDone()
}

// spinItems waits a little for an item to be claimable, without the lock
// or a system call: a producer on the other CPU usually publishes the next
// item within the microseconds that a sleep and a wake would cost (a
// FUTEX_WAKE per item is what a consumer faster than its producer would
// otherwise cost the producer: measured here, it cut a 1→1 stream to a
// tenth). It watches the record at rd, not only the count: the count
// includes a record its producer is still copying in, and a consumer that
// took the lock to find it WRITING, then slept, paid a sleep and a wake for
// an item a few hundred nanoseconds away. It gives up once sp has spun for
// qSpin (over all the calls of one Get), and yields the P to other
// goroutines between checks.
func (c *qcore) spinItems(sp *qspin) bool {
	for {
		// The budget is checked before the condition: a condition that
		// holds while claims keep failing (a closed queue whose next
		// record is still WRITING) must not spin forever.
		sp.i++
		if sp.i%64 == 1 {
			if sp.start.IsZero() {
				sp.start = time.Now()
			} else if time.Since(sp.start) > qSpin {
				return false
			}
			if sp.i > 1 {
				runtime.Gosched()
			}
			sp.rd = atomic.LoadUint64(c.u64(qOffRd))
			if c.claimable() {
				return true
			}
		} else if st := c.recState(sp.rd); st != qWriting && st != qDone {
			// Between the checks of the header words, the spin watches
			// only the state of the record at rd, a line of the data
			// area that the producer writes once per item: polling the
			// lock's line, which the lock holder is writing, made every
			// lock holder's stores miss. The record's state before the
			// producer reserves it is whatever the last round of the
			// ring left there (usually DONE); any other value is a
			// reason to look at the header words.
			if c.claimable() {
				return true
			}
		}
		qPause()
	}
}

// recState loads the state word of the record at pos.
func (c *qcore) recState(pos uint64) uint32 {
	st, _, _ := c.rec(pos)
	return atomic.LoadUint32(st)
}

// qspin is the state of one Get's spin.
type qspin struct {
	i     int
	rd    uint64 // the rd last read
	start time.Time
}

// claimable reports, without the lock, whether a claim may now succeed:
// the queue is closed, or it holds an item and the record at rd is not
// being written. The loads race with the lock holder's stores; a wrong
// answer costs one claim (or one more spin), nothing else.
func (c *qcore) claimable() bool {
	if atomic.LoadUint32(c.u32(qOffClosed)) != 0 {
		return true
	}
	if atomic.LoadUint64(c.u64(qOffCount)) == 0 {
		return false
	}
	st, _, _ := c.rec(atomic.LoadUint64(c.u64(qOffRd)))
	return atomic.LoadUint32(st) != qWriting
}

// qSpin bounds a consumer's spin before it sleeps.
const qSpin = 50 * time.Microsecond

//go:noinline
func qPause() {}

// get takes one item and passes its payload (in shared memory, valid only
// during the call) to use; TryGet when block is false.
func (c *qcore) get(ctx context.Context, block bool, use func([]byte) error) error {
	if !c.enter() {
		return fmt.Errorf("%w: queue released by this process", ErrClosed)
	}
	defer c.exit()
	var pos uint64
	// try claims an item; probe as for claim. A blocking Get probes a
	// record stuck in WRITING only once it waits (qStuckAfter is far
	// longer than its spin); TryGet probes at once, so that repeated
	// TryGets skip a dead producer's record too.
	try := func(probe bool) (qres, error) {
		if c.released.Load() {
			return qReleasedR, nil
		}
		if err := c.lock(ctx); err != nil {
			return 0, err
		}
		var r qres
		pos, r = c.claim(probe)
		c.unlock()
		return r, nil
	}
	// A blocking Get that sees no item (the header words, read without
	// the lock) spins before it tries: taking the lock to find the queue
	// empty costs the producer a miss on the lock's line.
	r := qEmpty
	var err error
	if !block || atomic.LoadUint64(c.u64(qOffCount)) != 0 || atomic.LoadUint32(c.u32(qOffClosed)) != 0 {
		if r, err = try(!block); err != nil {
			return err
		}
	}
	if block {
		var sp qspin
		for (r == qEmpty || r == qBlocked) && c.spinItems(&sp) {
			if r, err = try(false); err != nil {
				return err
			}
		}
	}
	if (r == qEmpty || r == qBlocked) && block {
		err = c.items.Wait(ctx, c.u32(qOffItemSeq), c.u32(qOffItemWait), func() (uint32, bool, error) {
			s := c.arm(qOffItemSeq)
			var err error
			r, err = try(true)
			if err != nil {
				return 0, true, err
			}
			return s, r != qEmpty && r != qBlocked, nil
		})
		if err != nil {
			return fmt.Errorf("ipc: Get: %w", qCtxErr(ctx, err))
		}
	}
	switch r {
	case qEmpty, qBlocked:
		return fmt.Errorf("%w", ErrEmpty)
	case qClosedR:
		return fmt.Errorf("%w: queue closed and drained", ErrClosed)
	case qReleasedR:
		return fmt.Errorf("%w: queue released by this process", ErrClosed)
	}
	c.m.hb.Acquire()
	err = use(c.payload(pos))
	st, _, _ := c.rec(pos)
	atomic.StoreUint32(st, qDone)
	c.wakeSpace()
	return err
}

// close closes the queue for every process.
func (c *qcore) close() error {
	if !c.enter() {
		return fmt.Errorf("ipc: Close: %w: queue released by this process (or a zero queue)", ErrClosed)
	}
	defer c.exit()
	if err := c.lock(context.Background()); err != nil {
		return err
	}
	atomic.StoreUint32(c.u32(qOffClosed), 1)
	c.unlock()
	c.wakeAll()
	return nil
}

func (c *qcore) closed() bool {
	if !c.enter() {
		return true
	}
	defer c.exit()
	return atomic.LoadUint32(c.u32(qOffClosed)) != 0
}

func (c *qcore) length() int {
	if !c.enter() {
		return 0
	}
	defer c.exit()
	return int(atomic.LoadUint64(c.u64(qOffCount)))
}

// release drops this process's handle once the operations in progress on
// it have returned (they are woken and fail with ErrClosed). The creator's
// unmaps its mapping and tells the pools to drop their copies; an imported
// handle unmaps the shared mapping when it is the last one on it.
func (c *qcore) release() error {
	if c == nil || !c.released.CompareAndSwap(false, true) {
		return fmt.Errorf("ipc: Release: %w: queue already released by this process (or a zero queue)", ErrClosed)
	}
	c.wakeAll()
	c.rw.Lock()
	defer c.rw.Unlock()
	c.mu.Close()
	if c.imported {
		qmaps.Lock()
		defer qmaps.Unlock()
		if c.m.refs--; c.m.refs > 0 {
			return nil
		}
		if qmaps.byKey[c.m.key] == c.m {
			delete(qmaps.byKey, c.m.key)
		}
	} else {
		wire.Release(c.id)
	}
	return errors.Join(memfd.Unmap(c.m.mem), c.m.files[0].Close())
}

func (c *qcore) needsDescriptors() bool { return c != nil && !c.released.Load() }

func (c *qcore) export(x *wire.Exported) error {
	if !c.needsDescriptors() {
		return fmt.Errorf("%w: exporting a released or zero queue", ErrClosed)
	}
	x.ID, x.Files, x.Owned, x.State = c.id, c.m.files, false, c.state
	return nil
}

// JoinableQueue accounting (lock held for all).

func (c *qcore) slotAt(i int) (ident, pending *uint64) {
	off := uintptr(qOffSlots + i*qSlotSize)
	return c.u64(off), c.u64(off + 8)
}

// mySlot returns this process's slot, taking a free one (or one whose
// owner died with nothing pending) the first time; -1 when the table is
// full of live consumers.
func (c *qcore) mySlot() int {
	if c.slot >= 0 {
		if id, _ := c.slotAt(int(c.slot)); atomic.LoadUint64(id) == c.self {
			return int(c.slot)
		}
	}
	free := -1
	for i := 0; i < qSlots; i++ {
		id, _ := c.slotAt(i)
		v := atomic.LoadUint64(id)
		if v == c.self {
			c.slot = int32(i)
			return i
		}
		if v == 0 && free < 0 {
			free = i
		}
	}
	if free < 0 {
		for i := 0; i < qSlots; i++ {
			id, p := c.slotAt(i)
			if atomic.LoadUint64(p) == 0 && !qAlive(atomic.LoadUint64(id)) {
				free = i
				break
			}
		}
	}
	if free < 0 {
		return -1
	}
	id, p := c.slotAt(free)
	atomic.StoreUint64(p, 0)
	atomic.StoreUint64(id, c.self)
	c.slot = int32(free)
	return free
}

func (c *qcore) addPending(d uint64) {
	if i := c.mySlot(); i >= 0 {
		_, p := c.slotAt(i)
		atomic.AddUint64(p, d)
		return
	}
	atomic.AddUint64(c.u64(qOffAnon), d)
}

// taskDone counts one item done: this process's own first, then any other
// pending count (a process may finish what another took, as in Python).
func (c *qcore) taskDone() error {
	if !c.enter() {
		return fmt.Errorf("%w: queue released by this process", ErrClosed)
	}
	defer c.exit()
	if err := c.lock(context.Background()); err != nil {
		return err
	}
	ok := false
	dec := func(p *uint64) bool {
		if atomic.LoadUint64(p) > 0 {
			atomic.AddUint64(p, ^uint64(0))
			ok = true
		}
		return ok
	}
	if c.slot >= 0 {
		if id, p := c.slotAt(int(c.slot)); atomic.LoadUint64(id) == c.self {
			dec(p)
		}
	}
	if !ok {
		dec(c.u64(qOffAnon))
	}
	for i := 0; !ok && i < qSlots; i++ {
		_, p := c.slotAt(i)
		dec(p)
	}
	c.unlock()
	if !ok {
		return ErrTaskDone
	}
	c.wakeDone()
	return nil
}

// join waits until every item put has been taken and marked done. Items
// taken by consumers that died count as done once nothing else is pending:
// join then releases them and returns ErrPeerDied.
func (c *qcore) join(ctx context.Context) error {
	if !c.enter() {
		return fmt.Errorf("%w: queue released by this process", ErrClosed)
	}
	defer c.exit()
	lastProbe := time.Now()
	check := func() (uint32, bool, error) {
		s := c.arm(qOffDoneSeq)
		if c.released.Load() {
			return 0, true, fmt.Errorf("%w: queue released by this process", ErrClosed)
		}
		probe := time.Since(lastProbe) >= qStuckAfter
		if probe {
			lastProbe = time.Now()
		}
		if err := c.lock(ctx); err != nil {
			return 0, true, err
		}
		defer c.unlock()
		if probe {
			c.skipDeadWriters()
		}
		live := atomic.LoadUint64(c.u64(qOffCount)) + atomic.LoadUint64(c.u64(qOffAnon))
		var dead uint64
		var deadSlots []int
		for i := 0; i < qSlots; i++ {
			id, p := c.slotAt(i)
			n := atomic.LoadUint64(p)
			if n == 0 {
				continue
			}
			if probe && !qAlive(atomic.LoadUint64(id)) {
				dead += n
				deadSlots = append(deadSlots, i)
			} else {
				live += n
			}
		}
		switch {
		case live > 0:
			return s, false, nil
		case dead > 0:
			for _, i := range deadSlots {
				id, p := c.slotAt(i)
				atomic.StoreUint64(p, 0)
				atomic.StoreUint64(id, 0)
			}
			return 0, true, fmt.Errorf("%w: %d items taken by consumers that died before TaskDone", ErrPeerDied, dead)
		}
		return 0, true, nil
	}
	err := c.done.Wait(ctx, c.u32(qOffDoneSeq), c.u32(qOffDoneWait), check)
	if err != nil && !errors.Is(err, ErrPeerDied) && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("ipc: Join: %w", qCtxErr(ctx, err))
	}
	return err
}

// qCtxErr returns ctx.Err() itself for an error that only wraps it, so
// that a cancelled wait reads "ipc: Get: context deadline exceeded" and not
// the futex layer's own prefix.
func qCtxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
		return cerr
	}
	return err
}

// skipDeadWriters marks DEAD every WRITING record whose producer died, so
// that Join does not wait for an item that will never be put (lock held).
func (c *qcore) skipDeadWriters() {
	rd, tail := atomic.LoadUint64(c.u64(qOffRd)), atomic.LoadUint64(c.u64(qOffTail))
	for p := rd; p < tail; {
		s := c.size(p)
		if s == 0 || p+s > tail {
			return
		}
		st, _, ow := c.rec(p)
		if atomic.LoadUint32(st) == qWriting && !qAlive(atomic.LoadUint64(ow)) {
			atomic.StoreUint32(st, qDead)
			atomic.AddUint64(c.u64(qOffCount), ^uint64(0))
		}
		p += s
	}
}
