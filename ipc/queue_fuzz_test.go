package ipc

import (
	"encoding/binary"
	"testing"
)

// FuzzQueueState: the exported state and the segment header a receiver
// checks before it maps or uses a queue never panic, and accept only what
// qMakeState and qNew write.
func FuzzQueueState(f *testing.F) {
	f.Add(qMakeState(qKindQueue, 4096, "int"), []byte{})
	f.Add(qMakeState(qKindJoinable, 1<<20, "ipc.item"), []byte("mpqu"))
	f.Add([]byte{9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, []byte{})
	f.Fuzz(func(t *testing.T, state, hdr []byte) {
		kind, capacity, name, err := qParseState(state)
		if err != nil {
			return
		}
		mem := make([]byte, qHdrSize+min(int(capacity), 1<<16))
		copy(mem, hdr)
		// A header is accepted only when it matches the state exactly.
		if qCheckHeader(mem, kind, capacity, name) == nil && uint64(len(mem)) != qHdrSize+capacity {
			t.Fatalf("header of a %d-byte segment accepted for capacity %d", len(mem), capacity)
		}
	})
}

// FuzzQueueRing: whatever the shared memory holds (a peer's bug, a torn
// write), repair, claim, reclaim and reserve stay within the mapping, end,
// and leave head ≤ rd ≤ tail.
func FuzzQueueRing(f *testing.F) {
	f.Add([]byte{}, uint64(0), uint64(0), uint64(0))
	seed := make([]byte, 64)
	binary.LittleEndian.PutUint32(seed[0:], qReady)
	binary.LittleEndian.PutUint32(seed[4:], 3)
	binary.LittleEndian.PutUint32(seed[32:], qWriting)
	binary.LittleEndian.PutUint32(seed[36:], 1<<31)
	f.Add(seed, uint64(0), uint64(0), uint64(64))
	f.Add(seed, uint64(4090), uint64(4100), uint64(8000))
	f.Fuzz(func(t *testing.T, data []byte, head, rd, tail uint64) {
		const capacity = 4096
		mem := make([]byte, qHdrSize+capacity)
		le := binary.LittleEndian
		le.PutUint32(mem[qOffMagic:], qMagic)
		le.PutUint32(mem[qOffVersion:], qVersion)
		le.PutUint32(mem[qOffKind:], qKindJoinable)
		le.PutUint64(mem[qOffCap:], capacity)
		copy(mem[qHdrSize:], data)
		align := func(x uint64) uint64 { return x % (1 << 40) &^ (qAlign - 1) }
		le.PutUint64(mem[qOffHead:], align(head))
		le.PutUint64(mem[qOffRd:], align(rd))
		le.PutUint64(mem[qOffTail:], align(tail))
		c := qWrap(&qmap{mem: mem}, qKindJoinable, "int")
		c.repair()
		check := func(what string) {
			h, r, tl := le.Uint64(mem[qOffHead:]), le.Uint64(mem[qOffRd:]), le.Uint64(mem[qOffTail:])
			if !(h <= r && r <= tl && tl-h <= capacity) {
				t.Fatalf("after %s: head %d, rd %d, tail %d", what, h, r, tl)
			}
		}
		check("repair")
		for range 4 {
			if pos, res := c.claim(true); res == qOK {
				_ = c.payload(pos)
			}
			check("claim")
			c.reclaim(true)
			check("reclaim")
			c.reserve(100)
			check("reserve")
		}
	})
}
