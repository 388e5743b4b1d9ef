package wire

import "errors"

// errWouldBlock is what a non-blocking read returns when no byte has arrived.
var errWouldBlock = errors.New("wire: no data yet")

// TryNext is Next that never waits: in descriptor mode (see [NewUnixReader])
// it returns a buffered frame, or reads once without blocking what has
// arrived and returns a frame if that completed one; ok is false when no
// whole frame is there yet (the bytes of a partial one stay buffered). It
// reads outside the net package's poller, so a goroutine may wait for the
// stream to become readable in its own way (a blocking poll, or the raw
// connection's Read) and then call TryNext. Errors and the payload's
// lifetime are Next's. On a Reader not in descriptor mode it is Next.
func (r *Reader) TryNext() (kind byte, payload []byte, ok bool, err error) {
	if r.uc == nil {
		kind, payload, err = r.Next()
		return kind, payload, err == nil, err
	}
	r.nowait = true
	kind, payload, err = r.Next()
	r.nowait = false
	if errors.Is(err, errWouldBlock) {
		return 0, nil, false, nil
	}
	return kind, payload, err == nil, err
}
