package futex

import (
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's robust-futex list, without its per-acquire cost.
//
// When a thread exits (or execs), the kernel walks the robust list the
// thread registered with set_robust_list: for each entry whose futex word
// names the exiting thread (low 30 bits = its TID), it sets
// FUTEX_OWNER_DIED (bit 30, this package's flagIncons), clears the TID and,
// when FUTEX_WAITERS (bit 31, flagWaiters) is set, FUTEX_WAKEs one waiter.
// It does so early in the thread's exit, before the address space is torn
// down: measured here, a sleeping waiter on a robust mutex learnt of a
// SIGKILLed C holder in ~150 µs, against ~550 µs for the holder's pidfd,
// and a Go holder's pidfd took 1.5–3 ms (the pidfd is notified only after
// the whole process, threads and memory, is gone).
//
// glibc's robust mutexes link each held mutex into the list on every lock
// and unlock (46–50 ns per pair here, ruling it out of the fast path). This
// package instead links every mutex word the process has a handle on,
// once, when the handle is made: the kernel ignores entries whose word
// names another thread, so a list of words that are mostly not held is
// harmless. The words are stamped, on acquisition, with the TID and start
// time of one dedicated thread per process (robustThread, locked, never
// exits while the process lives, never the main thread, whose list glibc
// owns in cgo binaries). The fast path stays one CAS of a different
// constant.
//
// The list's entries need a "next" pointer per word, private to the
// process (other processes map the same word), at one fixed offset from
// the word (the list head has a single futex_offset). So each registered
// word is reached through an alias: the page holding it is mapped a second
// time into a reserved region, whose lower half holds private shadow pages
// at a fixed distance below the aliases; a word's list node is its
// shadow. The kernel keys a shared futex by file and offset, so waits and
// wakes on the alias meet those on the original mapping, and atomics on
// both addresses see one physical word.
//
// Limits: the kernel walks at most 2048 entries (ROBUST_LIST_LIMIT), so a
// process registers at most robustMax words; further handles, and any
// where the region or thread cannot be set up, stamp the process's pid and
// rely on the pidfd watch and timed checks, as before.

const (
	robustMax   = 2000  // below the kernel's ROBUST_LIST_LIMIT of 2048
	regionPages = 4096  // alias slots (16 MiB of address space, mostly never touched)
	headLen     = 3 * 8 // sizeof(struct robust_list_head) on 64-bit Linux
	pidfdThread = 0x80  // PIDFD_THREAD (O_EXCL), Linux 6.9
	is64bit     = ^uintptr(0)>>63 == 1
)

// pageSize is mmap's granule: an alias maps one page.
var pageSize = uintptr(os.Getpagesize())

// robustHead is struct robust_list_head: the list (a circular singly linked
// list through each entry's first word), futex_offset, list_op_pending.
type robustHead struct {
	next    uintptr
	offset  int64
	pending uintptr
}

type pageKey struct {
	dev, ino uint64
	off      int64
}

type aliasPage struct {
	slot  int
	refs  int             // registered words
	words map[uintptr]int // offset in the page → handles on that word
}

var robust struct {
	sync.Mutex
	tried, ok bool
	base      unsafe.Pointer // [base, base+half): shadows; [base+half, base+2*half): aliases
	half      uintptr
	head      *robustHead // in memory of its own (mmap), never moved or freed
	self      uint64      // the dedicated thread's word: tid | start-time tag<<32
	free      []int
	next      int
	words     int
	pages     map[pageKey]*aliasPage
}

// robustThreadCh is never sent on: the dedicated thread's goroutine waits
// on it for as long as the process lives.
var robustThreadCh = make(chan struct{})

// robustThread is the dedicated thread (leak checkers know its name). It
// locks its goroutine to a thread that is not the main thread, registers
// the list head there, reports its identity and never returns.
func robustThread(head *robustHead, ready chan<- uint64, handover chan<- struct{}) {
	runtime.LockOSThread() // never unlocked: the thread must outlive every stamp
	if handover != nil {
		close(handover) // locked to a thread that is not the main one
	}
	if unix.Gettid() == unix.Getpid() {
		// On the main thread: hand over to a new goroutine, which cannot
		// get this thread while this goroutine keeps it locked, and
		// release it only once the new one is locked to its own.
		h := make(chan struct{})
		go robustThread(head, ready, h)
		<-h
		runtime.UnlockOSThread()
		return
	}
	tid := unix.Gettid()
	_, _, e := unix.RawSyscall(unix.SYS_SET_ROBUST_LIST, uintptr(unsafe.Pointer(head)), headLen, 0)
	st, ok := readStatPath("/proc/self/task/" + itoa(tid) + "/stat")
	if e != 0 || !ok {
		ready <- 0
		runtime.UnlockOSThread()
		return
	}
	ready <- uint64(st.tag)<<32 | uint64(tid)
	for range robustThreadCh {
	}
}

// setupRobust reserves the region, maps the head and starts the thread,
// once. It reports whether words can be registered.
func setupRobust() bool {
	if robust.tried {
		return robust.ok
	}
	robust.tried = true
	if !is64bit {
		return false
	}
	half := regionPages * pageSize
	mem, err := unix.Mmap(-1, 0, int(2*half), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return false
	}
	hp, err := unix.Mmap(-1, 0, int(pageSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		unix.Munmap(mem)
		return false
	}
	head := (*robustHead)(unsafe.Pointer(&hp[0]))
	head.next = uintptr(unsafe.Pointer(head)) // empty: points at itself
	head.offset = int64(half)                 // word = node + half
	ready := make(chan uint64)
	go robustThread(head, ready, nil)
	self := <-ready
	if self == 0 {
		unix.Munmap(mem)
		return false // the head page stays: the thread may have read it
	}
	robust.base, robust.half, robust.head, robust.self = unsafe.Pointer(&mem[0]), half, head, self
	robust.pages = map[pageKey]*aliasPage{}
	robust.ok = true
	return true
}

// alias is a registered word: where this process's handles reach it.
type alias struct {
	key  pageKey
	addr unsafe.Pointer // the 8-byte word in the alias page
}

// register maps the page of f holding the 8-byte word at file offset off
// into the region (once per page) and links the word into the robust list
// (once per word). It returns nil when it cannot; the caller then uses the
// word where it is, without the kernel's help.
func register(f *os.File, off int64) *alias {
	if f == nil || off < 0 || off%8 != 0 {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil
	}
	key := pageKey{dev: uint64(st.Dev), ino: st.Ino, off: off &^ int64(pageSize-1)}
	in := uintptr(off) & (pageSize - 1)
	robust.Lock()
	defer robust.Unlock()
	if !setupRobust() {
		return nil
	}
	pg := robust.pages[key]
	if pg == nil {
		if robust.words >= robustMax {
			return nil
		}
		slot := -1
		if n := len(robust.free); n > 0 {
			slot, robust.free = robust.free[n-1], robust.free[:n-1]
		} else if robust.next < regionPages {
			slot = robust.next
			robust.next++
		} else {
			return nil
		}
		shadow := uintptr(robust.base) + uintptr(slot)*pageSize
		if _, err := mmapFixed(shadow, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, -1, 0); err != nil {
			robust.free = append(robust.free, slot)
			return nil
		}
		if _, err := mmapFixed(shadow+robust.half, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED, int(f.Fd()), key.off); err != nil {
			unreserve(slot)
			robust.free = append(robust.free, slot)
			return nil
		}
		pg = &aliasPage{slot: slot, words: map[uintptr]int{}}
		robust.pages[key] = pg
	}
	word := unsafe.Add(robust.base, uintptr(pg.slot)*pageSize+robust.half+in)
	if pg.words[in] == 0 {
		if robust.words >= robustMax {
			if pg.refs == 0 {
				dropPage(key, pg)
			}
			return nil
		}
		// The node is the shadow of the word's low (futex) half; linking
		// it at the front is one store, so a death mid-way sees a whole
		// list either way.
		node := unsafe.Add(word, lowOff-robust.half)
		*(*uintptr)(node) = robust.head.next
		robust.head.next = uintptr(node)
		robust.words++
		pg.refs++
	}
	pg.words[in]++
	return &alias{key: key, addr: word}
}

// unregister drops one handle's registration; the last one on a word
// unlinks it, and the last one on a page unmaps the alias (the caller is
// about to unmap the original mapping).
func (a *alias) unregister() {
	robust.Lock()
	defer robust.Unlock()
	pg := robust.pages[a.key]
	if pg == nil {
		return
	}
	in := uintptr(a.addr) - uintptr(robust.base) - uintptr(pg.slot)*pageSize - robust.half
	if pg.words[in]--; pg.words[in] > 0 {
		return
	}
	delete(pg.words, in)
	node := uintptr(unsafe.Add(a.addr, lowOff-robust.half))
	// Unlink: the predecessor's next becomes the node's (one store).
	head := uintptr(unsafe.Pointer(robust.head))
	for p := head; ; {
		pp := nodePtr(p)
		next := *(*uintptr)(pp)
		if next == head {
			break // not found (cannot happen)
		}
		if next == node {
			*(*uintptr)(pp) = *(*uintptr)(nodePtr(node))
			break
		}
		p = next
	}
	robust.words--
	if pg.refs--; pg.refs == 0 {
		dropPage(a.key, pg)
	}
}

// nodePtr turns a list entry's address (the head or a shadow in the
// region) back into a pointer, by offset from a pointer the package holds.
func nodePtr(u uintptr) unsafe.Pointer {
	if u == uintptr(unsafe.Pointer(robust.head)) {
		return unsafe.Pointer(robust.head)
	}
	return unsafe.Add(robust.base, u-uintptr(robust.base))
}

func dropPage(key pageKey, pg *aliasPage) {
	delete(robust.pages, key)
	unreserve(pg.slot)
	robust.free = append(robust.free, pg.slot)
}

// unreserve returns both pages of a slot to inaccessible reserved space.
func unreserve(slot int) {
	shadow := uintptr(robust.base) + uintptr(slot)*pageSize
	for _, p := range []uintptr{shadow, shadow + robust.half} {
		mmapFixed(p, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE, -1, 0)
	}
}

// mmapFixed maps one page at addr, which lies in the reserved region.
// Through unix.MmapPtr, not a raw SYS_MMAP: 32-bit Linux has only mmap2,
// whose offset counts pages, and MmapPtr picks the right call.
func mmapFixed(addr uintptr, prot, flags, fd int, off int64) (uintptr, error) {
	p := unsafe.Add(robust.base, addr-uintptr(robust.base)) // addr, as a pointer vet accepts
	r, err := unix.MmapPtr(fd, off, p, pageSize, prot, flags|unix.MAP_FIXED)
	if err != nil {
		return 0, os.NewSyscallError("mmap", err)
	}
	return uintptr(r), nil
}

// robustSelf returns the dedicated thread's word (0 when there is none).
func robustSelf() uint64 {
	robust.Lock()
	defer robust.Unlock()
	if !robust.ok {
		return 0
	}
	return robust.self
}

// openPidfd opens a pidfd for a process or, failing that (a TID that is
// not a thread-group leader: a robust stamp), for the thread.
func openPidfd(pid uint32) (int, error) {
	fd, err := unix.PidfdOpen(int(pid), unix.PIDFD_NONBLOCK)
	if err == syscall.EINVAL || err == syscall.ENOENT {
		if fd2, err2 := unix.PidfdOpen(int(pid), unix.PIDFD_NONBLOCK|pidfdThread); err2 == nil {
			return fd2, nil
		}
	}
	return fd, err
}

// Registered returns how many words this process has linked into its
// robust list (for tests: a released handle's word must leave it).
func Registered() int {
	robust.Lock()
	defer robust.Unlock()
	return robust.words
}
