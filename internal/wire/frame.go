package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/multiproc-go/multiproc/internal/pages"
	"io"
	"net"
	"os"
	"syscall"
)

// HeaderSize is the size of a frame header: a 4-byte little-endian payload
// length followed by a 1-byte kind.
const HeaderSize = 5

// DefaultMaxFrame is the largest payload a [Reader] accepts unless told
// otherwise. It bounds the memory a corrupt header can make a peer allocate.
const DefaultMaxFrame = 256 << 20

// ErrFrameTooLarge is returned when a frame header announces a payload larger
// than the reader's limit, or a writer is asked to frame one. It is the
// project's one "too large" sentinel: internal/errs re-exports it as
// ErrTooLarge (this package sits below errs, so it is defined here).
var ErrFrameTooLarge = errors.New("multiproc: too large")

// ErrCorrupt is returned (wrapped) when bytes do not form a valid frame or value.
var ErrCorrupt = errors.New("wire: corrupt data")

// AppendFrame appends a frame of the given kind carrying payload to dst.
func AppendFrame(dst []byte, kind byte, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = append(dst, kind)
	return append(dst, payload...)
}

// BeginFrame appends a frame header with a zero length to dst and returns the
// extended slice and the header's offset. The caller appends the payload
// directly to the slice and then calls [EndFrame], which avoids building the
// payload in a second buffer.
func BeginFrame(dst []byte, kind byte) ([]byte, int) {
	off := len(dst)
	dst = append(dst, 0, 0, 0, 0, kind)
	return dst, off
}

// EndFrame patches the length of the frame begun at off. It fails if the
// payload exceeds max (no limit when max <= 0).
func EndFrame(buf []byte, off int, max int) error {
	return EndFrameWith(buf, off, 0, max)
}

// EndFrameWith is EndFrame for a frame whose payload continues, after buf,
// with extra more bytes that the caller writes separately (a vectored write
// of a large payload, without copying it into buf).
func EndFrameWith(buf []byte, off int, extra int, max int) error {
	n := len(buf) - off - HeaderSize + extra
	if n < 0 || off > len(buf) {
		return fmt.Errorf("%w: frame offset %d beyond buffer", ErrCorrupt, off)
	}
	if (max > 0 && n > max) || uint64(n) > 0xFFFFFFFF {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	binary.LittleEndian.PutUint32(buf[off:], uint32(n))
	return nil
}

// ParseFrame parses one frame at the start of buf. It returns the kind, the
// payload (aliasing buf) and the total number of bytes consumed. If buf holds
// only part of a frame it returns n == 0 and a nil error; a header that
// announces more than max bytes is an error.
func ParseFrame(buf []byte, max int) (kind byte, payload []byte, n int, err error) {
	if len(buf) < HeaderSize {
		return 0, nil, 0, nil
	}
	size := binary.LittleEndian.Uint32(buf)
	if max > 0 && uint64(size) > uint64(max) {
		return 0, nil, 0, fmt.Errorf("%w: header announces %d bytes, limit %d", ErrFrameTooLarge, size, max)
	}
	total := HeaderSize + int(size)
	if len(buf) < total {
		return 0, nil, 0, nil
	}
	return buf[4], buf[HeaderSize:total:total], total, nil
}

// FlagFiles, set in the kind byte of a frame on a descriptor-carrying
// stream (see [NewUnixReader]), says that descriptors travel with the
// frame: its payload begins with their count, a uvarint from 1 to
// [MaxFrameFiles], and the descriptors themselves were sent with SCM_RIGHTS
// in the sendmsg that carried the frame's first byte (or, for more than
// [MaxFilesPerMsg], in sendmsgs carrying its first bytes, one each). On
// other streams the bit is an ordinary part of the kind.
const FlagFiles = 0x80

// MaxFilesPerMsg is the most descriptors one sendmsg may carry (Linux's
// SCM_MAX_FD); [WriteFiles] splits larger sets.
const MaxFilesPerMsg = 253

// MaxFrameFiles bounds the descriptors one frame may declare. A frame's
// descriptors must have arrived by the time its last byte has, so a frame
// needs one byte per sendmsg its descriptors take: a header and a count of
// 1024 (two bytes) are seven bytes, enough for the five sendmsgs.
const MaxFrameFiles = 1024

// maxQueuedFiles bounds descriptors received and not yet claimed by a
// frame: a peer that sends descriptors no frame declares cannot fill this
// process's descriptor table.
const maxQueuedFiles = 4 * MaxFrameFiles

// Reader reads frames from a stream. It reads in large blocks so that many
// small frames cost one system call, and it never allocates more than the
// frame limit allows. A Reader is not safe for concurrent use.
type Reader struct {
	r    io.Reader
	max  int
	buf  []byte
	r0   int // start of unread data in buf
	w0   int // end of unread data in buf
	last int // size of the frame returned by the previous Next, released on the next call

	// Descriptor mode (NewUnixReader, ReceiveFiles): reads go through
	// recvmsg, because a plain read on a unix socket discards (closes) the
	// descriptors that arrive with the bytes.
	uc    *net.UnixConn
	oob   []byte
	fds   []int      // received, not yet claimed by a frame, in arrival order
	files []*os.File // the descriptors of the frame Next returned last
	lost  bool       // the frame Next returned last lost its descriptors
	// base is the stream offset of buf[0]; truncEnd the stream offset
	// where the data of the last recvmsg whose descriptors were truncated
	// ended (MSG_CTRUNC): frames that start before it may find fewer
	// descriptors than they declare.
	base, truncEnd int64

	// nowait makes reads in descriptor mode non-blocking (TryNext).
	nowait bool
	// raw, if set, is what non-blocking reads go through instead of uc
	// (UseRawConn).
	raw syscall.RawConn
}

// NewReader returns a Reader on r that rejects frames larger than max bytes
// (DefaultMaxFrame when max <= 0).
func NewReader(r io.Reader, max int) *Reader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return &Reader{r: r, max: max, buf: make([]byte, 64<<10)}
}

// NewUnixReader returns a Reader on c in descriptor mode: it reads with
// recvmsg, queues the descriptors that arrive, and hands each frame whose
// kind has [FlagFiles] set the descriptors it declares (see [Reader.Files]).
// It rejects frames larger than max bytes (DefaultMaxFrame when max <= 0).
func NewUnixReader(c *net.UnixConn, max int) *Reader {
	r := NewReader(c, max)
	r.ReceiveFiles(c)
	return r
}

// ReceiveFiles switches r, which must be reading from c, into descriptor
// mode (see [NewUnixReader]), keeping what it has buffered: a handshake
// read through a plain Reader can continue as a descriptor-carrying stream,
// provided no descriptors were sent before the switch.
func (r *Reader) ReceiveFiles(c *net.UnixConn) {
	r.r, r.uc = c, c
	if r.oob == nil {
		r.oob = make([]byte, oobSize())
	}
}

// UseRawConn makes r's non-blocking reads (TryNext) in descriptor mode go
// through rc, a raw connection to the same socket that outlives the
// *net.UnixConn given to ReceiveFiles (which its owner may then close, say
// to take the socket out of the net package's poller). Blocking reads
// (Next) still use that connection.
func (r *Reader) UseRawConn(rc syscall.RawConn) { r.raw = rc }

// SetLimit changes the largest payload r accepts (DefaultMaxFrame when
// n <= 0). It applies from the next call to Next on.
func (r *Reader) SetLimit(n int) {
	if n <= 0 {
		n = DefaultMaxFrame
	}
	r.max = n
}

// Files returns the descriptors that came with the frame Next returned
// last and hands them to the caller, who must close them. Descriptors not
// taken are closed by the next call to Next (or by CloseFiles). It returns
// nil for a frame without descriptors.
func (r *Reader) Files() []*os.File {
	fs := r.files
	r.files = nil
	return fs
}

// FilesLost reports whether the frame Next returned last declared
// descriptors that did not arrive: the kernel could not install them in
// this process (its descriptor table was full, EMFILE, and recvmsg
// reported MSG_CTRUNC). Such a frame comes with no descriptors at all,
// so none can go to the wrong frame, and the stream stays in step.
func (r *Reader) FilesLost() bool { return r.lost }

// CloseFiles closes every descriptor r holds: received and not yet
// claimed, and those of the last frame not taken with Files. Call it when
// the stream is done with.
func (r *Reader) CloseFiles() {
	r.dropFiles()
	for _, fd := range r.fds {
		closeFD(fd)
	}
	r.fds = r.fds[:0]
}

func (r *Reader) dropFiles() {
	for _, f := range r.files {
		f.Close()
	}
	r.files = nil
}

// claimFiles strips the descriptor count from the payload of a frame that
// declares descriptors and gives the frame as many from the queue.
func (r *Reader) claimFiles(payload []byte, start int64) ([]byte, error) {
	n, k := binary.Uvarint(payload)
	if k <= 0 || n == 0 || n > MaxFrameFiles {
		return nil, fmt.Errorf("%w: bad descriptor count in a frame", ErrCorrupt)
	}
	if n > uint64(len(r.fds)) && start < r.truncEnd {
		// Truncated in transit: what did arrive is this frame's (they
		// come in order), and it is not enough. Later frames of the same
		// sendmsg find none.
		for _, fd := range r.fds {
			closeFD(fd)
		}
		r.fds = r.fds[:0]
		r.lost = true
		return payload[k:], nil
	}
	if n > uint64(len(r.fds)) {
		return nil, fmt.Errorf("%w: frame declares %d descriptors, %d arrived", ErrCorrupt, n, len(r.fds))
	}
	for _, fd := range r.fds[:n] {
		r.files = append(r.files, os.NewFile(uintptr(fd), "multiproc-fd"))
	}
	r.fds = append(r.fds[:0], r.fds[n:]...)
	return payload[k:], nil
}

// Buffered reports how many bytes are already read from the stream but not
// yet returned as frames. A caller uses it to decide whether more work is
// immediately available before flushing its own output.
func (r *Reader) Buffered() int { return r.w0 - r.r0 - r.last }

// BufferedFrame reports whether a whole frame is already buffered, so that
// the next call to Next will not block.
func (r *Reader) BufferedFrame() bool {
	// The frame returned last is still in the buffer until the next call.
	_, _, n, err := ParseFrame(r.buf[r.r0+r.last:r.w0], r.max)
	return n > 0 || err != nil
}

// Next returns the next frame. The payload aliases the Reader's buffer and is
// valid only until the next call to Next. At a clean end of stream it returns
// io.EOF; a stream that ends inside a frame returns io.ErrUnexpectedEOF.
//
// In descriptor mode a frame with [FlagFiles] in its kind is returned with
// the flag cleared and its descriptor count stripped from the payload; its
// descriptors are available from [Reader.Files] until the next call.
func (r *Reader) Next() (kind byte, payload []byte, err error) {
	r.r0 += r.last
	r.last = 0
	r.lost = false
	if r.files != nil {
		r.dropFiles()
	}
	for {
		kind, payload, n, err := ParseFrame(r.buf[r.r0:r.w0], r.max)
		if err != nil {
			return 0, nil, err
		}
		if n > 0 {
			r.last = n
			if r.uc != nil && kind&FlagFiles != 0 {
				payload, err = r.claimFiles(payload, r.base+int64(r.r0))
				if err != nil {
					return 0, nil, err
				}
				kind &^= FlagFiles
			}
			return kind, payload, nil
		}
		if err := r.fill(); err != nil {
			if errors.Is(err, io.EOF) && r.w0 > r.r0 {
				return 0, nil, io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
	}
}

// fill reads more bytes, first making room: unread bytes move to the front,
// and the buffer grows only as far as the frame being read needs.
func (r *Reader) fill() error {
	if r.r0 > 0 {
		copy(r.buf, r.buf[r.r0:r.w0])
		r.w0 -= r.r0
		r.base += int64(r.r0)
		r.r0 = 0
	}
	if r.w0 == len(r.buf) {
		need, want := len(r.buf)*2, r.w0
		if r.w0 >= HeaderSize {
			want = HeaderSize + int(binary.LittleEndian.Uint32(r.buf))
			need = max(need, want)
		}
		nb := make([]byte, need)
		// The frame will fill its part of it, which is populated in bulk
		// (see internal/pages); the rest is touched only if later frames
		// need it.
		pages.Populate(nb[:min(want, need)])
		copy(nb, r.buf[:r.w0])
		r.buf = nb
	} else if len(r.buf) > 4<<20 && r.w0 < 64<<10 {
		// Give back a buffer grown for a huge frame once it is consumed;
		// keep one sized for ordinary map chunks.
		nb := make([]byte, 64<<10)
		copy(nb, r.buf[:r.w0])
		r.buf = nb
	}
	var n int
	var err error
	if r.uc != nil {
		n, err = r.readMsg(r.buf[r.w0:])
	} else {
		n, err = r.r.Read(r.buf[r.w0:])
	}
	r.w0 += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}
