package manager

import (
	"encoding/binary"
	"fmt"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// The protocol. Every message is one message of the connection (ipc.Conn
// frames it and bounds its size); its first byte is its kind:
//
//	request  'q' uvarint id, u8 op, u64 instance, uvarint object,
//	             uvarint budget (µs left of the caller's deadline, 0 none),
//	             uvarint n, n × bytes (the arguments)
//	response 'r' uvarint id, u8 status (0 ok, 1 error),
//	             ok: uvarint n, n × bytes (the results);
//	             error: the error envelope of internal/errs
//	cancel   'c' uvarint id (the caller's context ended)
//	ping     'p' (idle heartbeat; answered with a pong)
//	pong     'o'
//
// Bytes are uvarint-length-prefixed. A request on object 0 is addressed
// to the server (create, hand-offs, hello). Requests of one connection run
// in order, except those that may block (acquisitions, queue gets and
// puts, waits), which run on their own and answer when done.
const (
	msgRequest  = 'q'
	msgResponse = 'r'
	msgCancel   = 'c'
	msgPing     = 'p'
	msgPong     = 'o'
)

const (
	statusOK  = 0
	statusErr = 1
)

// maxArgs bounds the arguments (or results) one message carries.
const maxArgs = 1 << 20

// request is a decoded request. Args alias the message.
type request struct {
	id     uint64
	op     byte
	inst   uint64
	obj    uint64
	budget uint64 // microseconds, 0 = none
	args   [][]byte
	argBuf [4][]byte
}

func appendRequest(dst []byte, id uint64, op byte, inst, obj, budget uint64, args [][]byte) []byte {
	dst = append(dst, msgRequest)
	dst = binary.AppendUvarint(dst, id)
	dst = append(dst, op)
	dst = binary.LittleEndian.AppendUint64(dst, inst)
	dst = binary.AppendUvarint(dst, obj)
	dst = binary.AppendUvarint(dst, budget)
	dst = binary.AppendUvarint(dst, uint64(len(args)))
	for _, a := range args {
		dst = wire.AppendBytes(dst, a)
	}
	return dst
}

// parseRequest decodes a request message (its kind byte included). It
// never panics and never allocates more than the message's length.
func parseRequest(msg []byte, r *request) error {
	if len(msg) == 0 || msg[0] != msgRequest {
		return fmt.Errorf("%w: not a request", wire.ErrCorrupt)
	}
	d := wire.NewBuf(msg[1:])
	r.id = d.Uvarint()
	r.op = d.Byte()
	r.inst = d.Uint64()
	r.obj = d.Uvarint()
	r.budget = d.Uvarint()
	var err error
	r.args, err = parseFields(d, r.argBuf[:0])
	return err
}

func parseFields(d *wire.Buf, dst [][]byte) ([][]byte, error) {
	n := d.Uvarint()
	if d.Err() != nil {
		return nil, d.Err()
	}
	if n > uint64(len(d.Rest())) || n > maxArgs { // each field costs at least a byte
		return nil, fmt.Errorf("%w: %d fields in %d bytes", wire.ErrCorrupt, n, len(d.Rest()))
	}
	for range n {
		b := d.Bytes()
		if d.Err() != nil {
			return nil, d.Err()
		}
		dst = append(dst, b)
	}
	if len(d.Rest()) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the fields", wire.ErrCorrupt, len(d.Rest()))
	}
	return dst, nil
}

func appendOK(dst []byte, id uint64, res [][]byte) []byte {
	dst = append(dst, msgResponse)
	dst = binary.AppendUvarint(dst, id)
	dst = append(dst, statusOK)
	dst = binary.AppendUvarint(dst, uint64(len(res)))
	for _, a := range res {
		dst = wire.AppendBytes(dst, a)
	}
	return dst
}

func appendErrHeader(dst []byte, id uint64) []byte {
	dst = append(dst, msgResponse)
	dst = binary.AppendUvarint(dst, id)
	return append(dst, statusErr)
}

// response is a decoded response: results alias the message; envelope is
// set for an error.
type response struct {
	id       uint64
	status   byte
	res      [][]byte
	envelope []byte
}

func parseResponse(msg []byte, r *response, buf [][]byte) error {
	if len(msg) == 0 || msg[0] != msgResponse {
		return fmt.Errorf("%w: not a response", wire.ErrCorrupt)
	}
	d := wire.NewBuf(msg[1:])
	r.id = d.Uvarint()
	r.status = d.Byte()
	if d.Err() != nil {
		return d.Err()
	}
	switch r.status {
	case statusOK:
		var err error
		r.res, err = parseFields(d, buf)
		return err
	case statusErr:
		r.envelope = d.Rest()
		return nil
	}
	return fmt.Errorf("%w: response status %d", wire.ErrCorrupt, r.status)
}

func parseID(msg []byte) (uint64, error) {
	d := wire.NewBuf(msg[1:])
	id := d.Uvarint()
	if d.Err() == nil && len(d.Rest()) != 0 {
		return 0, fmt.Errorf("%w: bytes after a cancel", wire.ErrCorrupt)
	}
	return id, d.Err()
}

// u64 and putU64 are the fixed-size integers of arguments and results.
func u64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: %d bytes for an integer", wire.ErrCorrupt, len(b))
	}
	return binary.LittleEndian.Uint64(b), nil
}

func putU64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
