package manager

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/multiproc-go/multiproc/internal/memfd"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// Proxies are resources (see the root's documentation on resources): a
// proxy, or a struct holding one at any depth, passes as a Process or
// pool task argument or result. Encoding one asks the server for a
// hand-off reference (so the object outlives the sender's Close while the
// proxy is in transit); the receiver connects to the same address (one
// connection per process and address, shared by every proxy it receives)
// and claims it, which makes it the receiver's own reference. A hand-off
// nobody claims ends when the transport says the encoding never reached
// a receiver, a while after it says it did, or when the sender's
// connection ends (handoff.go has the whole rule).
//
// The authkey never travels in the encoding's bytes: it goes in a sealed
// memfd, a descriptor beside them, so a transport that cannot carry
// descriptors (the cluster backend) refuses proxies with
// ErrNotTransferable rather than publishing the key.

const stateVersion = 1

// NeedsDescriptors reports whether the proxy is open: an open proxy
// travels with the descriptor that carries the key.
func (r *ref) NeedsDescriptors() bool { return r.c != nil && !r.closed.Load() }

// ExportResource describes the proxy to another process.
func (r *ref) ExportResource(x *wire.Exported) error {
	if !r.NeedsDescriptors() {
		return fmt.Errorf("manager: sending a closed or zero %s proxy: %w", kindName(r.kind), ErrClosed)
	}
	if r.c.addr.network == "" {
		return fmt.Errorf("manager: this %s proxy's connection has no address other processes can reach: %w", kindName(r.kind), ErrNotTransferable)
	}
	tb, err := one(r.c.call(context.Background(), opHandoff, 0, [][]byte{putU64(r.id)}))
	if err != nil {
		return err
	}
	tok, err := u64(tb)
	if err != nil {
		return err
	}
	f, err := memfd.New("multiproc-manager-key", int64(max(len(r.c.key), 1)))
	if err != nil {
		settleLater(r.c, tok, false) // no transport will: the export failed
		return err
	}
	if _, err := f.WriteAt(r.c.key, 0); err != nil {
		f.Close()
		settleLater(r.c, tok, false)
		return err
	}
	st := []byte{stateVersion, r.kind}
	st = wire.AppendString(st, r.desc)
	st = wire.AppendString(st, r.c.addr.network)
	st = wire.AppendString(st, r.c.addr.addr)
	st = binary.LittleEndian.AppendUint64(st, r.c.inst)
	st = binary.LittleEndian.AppendUint64(st, r.id)
	st = binary.LittleEndian.AppendUint64(st, tok)
	st = binary.AppendUvarint(st, uint64(len(r.c.key)))
	st = binary.AppendUvarint(st, uint64(r.c.hb/time.Millisecond))
	c := r.c
	x.ID, x.Files, x.Owned, x.State = r.resID, []*os.File{f}, true, st
	// The transport's word on this export ends the hand-off (handoff.go).
	x.Done = func(delivered bool) { settleLater(c, tok, delivered) }
	return nil
}

type exportedRef struct {
	kind          byte
	desc          string
	addr          address
	inst, id, tok uint64
	keyLen        int
	hb            time.Duration
}

func parseState(st []byte) (exportedRef, error) {
	var e exportedRef
	if len(st) < 2 || st[0] != stateVersion {
		return e, fmt.Errorf("%w: manager proxy state of version %d", wire.ErrCorrupt, func() byte {
			if len(st) > 0 {
				return st[0]
			}
			return 0
		}())
	}
	e.kind = st[1]
	d := wire.NewBuf(st[2:])
	e.desc = d.String()
	e.addr.network = d.String()
	e.addr.addr = d.String()
	e.inst, e.id, e.tok = d.Uint64(), d.Uint64(), d.Uint64()
	kl := d.Uvarint()
	e.hb = time.Duration(d.Uvarint()) * time.Millisecond
	if err := d.Err(); err != nil {
		return e, err
	}
	if len(d.Rest()) != 0 || kl > 4096 {
		return e, fmt.Errorf("%w: manager proxy state", wire.ErrCorrupt)
	}
	e.keyLen = int(kl)
	return e, nil
}

// importFrom makes r the receiving process's reference to an exported
// proxy of the given kind and element description.
func (r *ref) importFrom(state []byte, files []*os.File, kind byte, desc string) error {
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	e, err := parseState(state)
	if err != nil {
		return err
	}
	if e.kind != kind || (kind != kindCustom && e.desc != desc) {
		return fmt.Errorf("%w: a %s of %s received as a %s of %s", ErrTypeMismatch, kindName(e.kind), e.desc, kindName(kind), desc)
	}
	if len(files) != 1 {
		return fmt.Errorf("%w: a manager proxy with %d descriptors", wire.ErrCorrupt, len(files))
	}
	key := make([]byte, e.keyLen)
	if _, err := files[0].ReadAt(key, 0); err != nil && err != io.EOF {
		return fmt.Errorf("manager: reading the proxy's key: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := sharedClient(ctx, e.addr, key, e.hb)
	if err != nil {
		return err
	}
	if c.inst != e.inst {
		return fmt.Errorf("%w: the proxy names an object of an earlier instance of the server at %s", ErrNoSuchObject, e.addr.addr)
	}
	if _, err := c.call(ctx, opClaim, 0, [][]byte{putU64(e.id), putU64(e.tok)}); err != nil {
		return err
	}
	r.c, r.id, r.kind, r.desc, r.resID = c, e.id, e.kind, e.desc, wire.NewID()
	return nil
}

// Receivers share one connection per address: a pool worker given proxies
// in 100k tasks makes one connection, not 100k.
var shared = struct {
	sync.Mutex
	m map[address]*client
}{m: map[address]*client{}}

func sharedClient(ctx context.Context, addr address, key []byte, hb time.Duration) (*client, error) {
	shared.Lock()
	defer shared.Unlock()
	if c := shared.m[addr]; c != nil {
		select {
		case <-c.done:
			delete(shared.m, addr) // broke: dial again (a restarted server)
		default:
			return c, nil
		}
	}
	conn, err := dial(ctx, addr, key)
	if err != nil {
		return nil, err
	}
	c, err := newClient(ctx, conn, hb, addr, key)
	if err != nil {
		return nil, err
	}
	shared.m[addr] = c
	return c, nil
}
