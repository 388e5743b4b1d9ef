package ipc

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"
	"sync"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// Typed values travel as kindValue frames:
//
//	u64 little-endian  fingerprint of the type and its encoding
//	u8                 encoding: encNative or encGob
//	...                the encoding
//
// Between equal builds (Conn.SameBuild) a value uses internal/wire's codec
// for its type (raw memory for pointer-free types, records for small
// structs, self-contained gob otherwise), exactly as pool tasks do;
// between other builds it uses a self-contained gob encoding, which needs
// only compatible types. Every value is encoded on its own, so a Conn has
// no codec stream state: a Conn handed to another process starts clean,
// and a receiver never depends on what an earlier owner of the other end
// sent. The fingerprint makes a Recv of another type than was sent fail
// with ErrMessageType instead of decoding bytes as the wrong type.

const (
	encNative = 0
	encGob    = 1

	valueHeader = 9
)

type typeCodec[T any] struct {
	native   wire.Value[T]
	res      bool // native carries resources (a wire.ResourceValue)
	nativeFP uint64
	gobFP    uint64
	name     string
}

var codecs sync.Map // reflect.Type → *typeCodec[T]

func codecFor[T any]() *typeCodec[T] {
	t := reflect.TypeFor[T]()
	if c, ok := codecs.Load(t); ok {
		return c.(*typeCodec[T])
	}
	native := wire.For[T]()
	_, res := native.(wire.ResourceValue[T])
	c := &typeCodec[T]{native: native, res: res, name: t.String()}
	c.nativeFP = fingerprint(c.name, native.Name())
	c.gobFP = fingerprint(c.name, "gob/self-contained")
	got, _ := codecs.LoadOrStore(t, c)
	return got.(*typeCodec[T])
}

func fingerprint(typ, enc string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(typ))
	h.Write([]byte{0})
	h.Write([]byte(enc))
	return h.Sum64()
}

// Send sends v to c's peer as one message, for [Recv] of the same type T
// at the other end. It has [Conn.SendBytes]'s contract; v is encoded in
// the caller's goroutine, so a value that cannot be encoded fails here,
// naming its type, and nothing is sent. A value that holds a resource
// (a file, a Conn, a shared array) cannot travel over a Conn and fails
// with an error matching multiproc.ErrNotTransferable; pass resources as
// Process or task arguments. A Conn in Python mode carries bytes only:
// Send fails with an error matching errors.ErrUnsupported.
func Send[T any](ctx context.Context, c *Conn, v T) error {
	if c.cfg.python {
		return fmt.Errorf("ipc: Send on a Python connection (bytes only; use SendBytes): %w", errors.ErrUnsupported)
	}
	if err := c.checkSend(0); err != nil {
		return err
	}
	tc := codecFor[T]()
	w := &c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.readyLocked(ctx); err != nil {
		return err
	}
	first := len(w.pending) == 0
	s := w.tailLocked()
	start := len(s.b)
	b := c.appendHeader(s.b, kindValue, 0)
	var err error
	if c.cfg.sameBuild {
		b = binary.LittleEndian.AppendUint64(b, tc.nativeFP)
		b = append(b, encNative)
		if tc.res {
			// Resources need descriptors beside the bytes, which a Conn
			// does not carry: encoding fails at the first one.
			out := &wire.Outgoing{NoDescriptors: true}
			b, err = wire.AppendOut(tc.native, b, v, out)
			out.Close()
		} else {
			b, err = tc.native.Append(b, v)
		}
	} else {
		b = binary.LittleEndian.AppendUint64(b, tc.gobFP)
		b = append(b, encGob)
		b, err = appendGob(b, v, tc.name)
	}
	if err == nil {
		n := int64(len(b) - start - goHeader)
		if n > c.cfg.max {
			err = &TooLargeError{Size: n, Limit: c.cfg.max}
		} else {
			binary.LittleEndian.PutUint32(b[start:], uint32(n))
		}
	}
	if err != nil {
		s.b = b[:start]
		if first && start == 0 {
			w.pending = w.pending[:len(w.pending)-1]
			w.free = append(w.free, s)
		}
		return err
	}
	s.b = b
	w.pendingN += len(b) - start
	if w.appendedLocked(first) {
		w.mu.Unlock()
		w.writeNow()
		w.mu.Lock() // for the deferred Unlock
	}
	return nil
}

// Recv receives the next message, which must be a value sent with
// [Send] of the same type T. It has [Conn.RecvBytes]'s contract: io.EOF
// after the peer's Close, [ErrPeerDied] when the peer went away without
// it. A byte message, or a value of another type, is consumed and fails
// with an error matching [ErrMessageType]; bytes that do not decode fail
// with an error naming T.
func Recv[T any](ctx context.Context, c *Conn) (T, error) {
	var zero T
	if c.cfg.python {
		return zero, fmt.Errorf("ipc: Recv on a Python connection (bytes only; use RecvBytes): %w", errors.ErrUnsupported)
	}
	if err := c.recvCheck("receive"); err != nil {
		return zero, err
	}
	tc := codecFor[T]()
	fast := c.w.tryFlush()
	r := &c.r
	if err := r.mu.lock(ctx, "receive"); err != nil {
		return zero, err
	}
	defer r.mu.unlock()
	kind, p, err := r.frame(ctx, fast, nil)
	if err != nil {
		return zero, err
	}
	if kind != kindValue {
		return zero, fmt.Errorf("%w: a byte message where a %s was expected", ErrMessageType, tc.name)
	}
	return decodeValue(c, tc, p)
}

func decodeValue[T any](c *Conn, tc *typeCodec[T], p []byte) (T, error) {
	var zero T
	if len(p) < valueHeader {
		return zero, fmt.Errorf("ipc: protocol error: value message of %d bytes", len(p))
	}
	fp, enc, body := binary.LittleEndian.Uint64(p), p[8], p[valueHeader:]
	switch {
	case enc == encNative && fp == tc.nativeFP:
		if !c.cfg.sameBuild {
			return zero, fmt.Errorf("%w: a raw encoding from a peer of another build", ErrMessageType)
		}
		var v T
		var err error
		if tc.res {
			v, err = wire.DecodeIn(tc.native, body, &wire.Files{})
		} else {
			v, err = tc.native.Decode(body)
		}
		if err != nil {
			return zero, fmt.Errorf("ipc: decoding a %s: %w", tc.name, err)
		}
		return v, nil
	case enc == encGob && fp == tc.gobFP:
		return decodeGob[T](body, tc.name)
	}
	return zero, fmt.Errorf("%w: a value of another type where a %s was expected", ErrMessageType, tc.name)
}

type appendBuf struct{ b []byte }

func (a *appendBuf) Write(p []byte) (int, error) { a.b = append(a.b, p...); return len(p), nil }

func appendGob[T any](dst []byte, v T, name string) ([]byte, error) {
	a := &appendBuf{b: dst}
	n := len(dst)
	if err := gob.NewEncoder(a).Encode(&v); err != nil {
		return dst[:n], &wire.EncodeError{Type: name, Err: err}
	}
	return a.b, nil
}

func decodeGob[T any](b []byte, name string) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("ipc: decoding a %s: %w: gob panicked: %v", name, wire.ErrCorrupt, r)
		}
	}()
	rd := bytes.NewReader(b)
	if err := gob.NewDecoder(rd).Decode(&v); err != nil {
		return v, fmt.Errorf("ipc: decoding a %s: %w", name, &wire.DecodeError{Type: name, Err: err})
	}
	if rd.Len() != 0 {
		return v, fmt.Errorf("ipc: decoding a %s: %w: %d bytes after the value", name, wire.ErrCorrupt, rd.Len())
	}
	return v, nil
}
