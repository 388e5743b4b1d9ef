// Package handshake authenticates a new stream connection between two
// processes before either side decodes anything it carries. It is the one
// implementation behind ipc's Listener and Dial and the manager's
// connections.
//
// The authentication is CPython's multiprocessing.connection challenge,
// byte for byte, so that a Go program and a Python program can
// authenticate each other: each side proves, in turn, that it holds the
// shared key by answering the other's random challenge with an HMAC of it;
// the key itself is never sent. The server challenges first (CPython's
// deliver_challenge, then answer_challenge); the client answers first.
//
//	challenger → "#CHALLENGE#" + "{sha256}" + 40 random bytes
//	answerer   → "{sha256}" + HMAC-SHA256(key, everything after "#CHALLENGE#")
//	challenger → "#WELCOME#" or "#FAILURE#"
//
// Each message is framed as CPython frames connection messages: a
// big-endian int32 length, then the bytes. Python 3.11 and older speak the
// legacy form (a 20-byte challenge without a digest prefix, answered by a
// raw 16-byte HMAC-MD5); it is accepted only with [Config.LegacyMD5].
//
// Between two Go peers ([Config.Python] unset) each side then sends a
// hello: a magic string, a protocol version, flags and its build id,
// authenticated with an HMAC over both challenges, so that a peer can
// decide whether raw-memory encodings are sound (equal builds) or whether
// it must use self-describing ones. A peer that does not send a valid
// hello (a Python program connecting to a Go listener without the Python
// option, a different protocol) fails with [ErrHandshake].
//
// Everything runs under one deadline (the earlier of the context's and
// [Config.Timeout]); every read is bounded (256 bytes for the challenge
// messages, 4 KiB for a hello), so a peer that sends garbage or nothing
// costs a bounded time and memory and never a hang.
package handshake

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// Errors. ErrAuth errors also match ErrHandshake.
var (
	// ErrHandshake is returned (wrapped) when the opening handshake fails:
	// the peer does not speak this protocol, sent malformed messages, or
	// the deadline passed.
	ErrHandshake = errors.New("ipc: handshake failed")
	// ErrAuth is returned (wrapped) when either side does not prove it
	// holds the key (wrong key, or a digest this side refuses).
	ErrAuth error = authError{}
)

type authError struct{}

func (authError) Error() string { return "ipc: authentication failed" }

// Is makes ErrAuth match ErrHandshake.
func (authError) Is(target error) bool { return target == ErrHandshake }

// DefaultTimeout bounds a handshake when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// The protocol's constants. The first three are CPython's.
const (
	challengePrefix = "#CHALLENGE#"
	welcome         = "#WELCOME#"
	failure         = "#FAILURE#"
	sha256Prefix    = "{sha256}"
	challengeLen    = 40  // CPython's MESSAGE_LENGTH (3.12+)
	legacyLen       = 20  // CPython ≤ 3.11's MESSAGE_LENGTH, and the shortest challenge it accepts
	md5Len          = 16  // a legacy answer
	maxAuthMsg      = 256 // CPython's recv_bytes(256) during the challenge
	maxHello        = 4 << 10
	helloMagic      = "#MULTIPROC-IPC#"
	// Version is the protocol version carried in the hello. A peer with
	// another version is refused with ErrHandshake.
	Version = 1
)

// Config is one side's part of a handshake. Key is required; the zero
// values of the other fields are the documented defaults.
type Config struct {
	// Key is the shared authentication key (CPython's authkey). It must
	// not be empty.
	Key []byte
	// Timeout bounds the whole handshake; zero means DefaultTimeout. A
	// context deadline that comes earlier wins.
	Timeout time.Duration
	// Python speaks CPython's protocol only: the challenges, no hello, so
	// the Result has no peer build.
	Python bool
	// LegacyMD5 also accepts the HMAC-MD5 form of CPython 3.11 and older:
	// an unprefixed 20-byte challenge is answered with a raw HMAC-MD5, and
	// a raw 16-byte HMAC-MD5 answer to our challenge is accepted. Without
	// it, such a peer fails with an error matching ErrAuth that names the
	// option. Only meaningful with Python.
	LegacyMD5 bool
	// BuildID is this side's build identifier, sent in the hello (not
	// with Python).
	BuildID string
	// Flags are sent in the hello for the peer's information (bits are
	// defined by the protocol user; the manager and ipc put their
	// connection kind there).
	Flags uint64
}

// Result is what the handshake learned about the peer.
type Result struct {
	// PeerBuild is the build id the peer announced ("" with Python).
	PeerBuild string
	// SameBuild reports PeerBuild == Config.BuildID (false with Python).
	SameBuild bool
	// PeerFlags are the flags the peer announced.
	PeerFlags uint64
	// PeerVersion is the protocol version the peer announced.
	PeerVersion int
}

// Server runs the accepting side's handshake on conn: it challenges the
// peer, answers the peer's challenge, then (Go mode) exchanges hellos.
// On success the connection's deadline is cleared; on failure the caller
// closes conn. Errors wrap ErrHandshake (ErrAuth for a key mismatch) and,
// when the context ended, ctx.Err().
func Server(ctx context.Context, conn net.Conn, cfg *Config) (Result, error) {
	return run(ctx, conn, cfg, true)
}

// Client runs the connecting side's handshake on conn: it answers the
// server's challenge, challenges the server, then (Go mode) exchanges
// hellos. It is Server's mirror image and has the same contract.
func Client(ctx context.Context, conn net.Conn, cfg *Config) (Result, error) {
	return run(ctx, conn, cfg, false)
}

func run(ctx context.Context, conn net.Conn, cfg *Config, server bool) (res Result, err error) {
	if len(cfg.Key) == 0 {
		return res, fmt.Errorf("%w: empty authentication key", ErrAuth)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return res, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	// An ending context moves the deadline to now, which unblocks the read
	// or write in progress.
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		conn.SetDeadline(time.Unix(1, 0))
	})
	defer func() {
		if !stop() {
			<-fired
		}
		if err == nil {
			err = conn.SetDeadline(time.Time{})
		}
		if err != nil {
			if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w (%w)", err, ctx.Err())
			} else if errors.Is(err, os.ErrDeadlineExceeded) {
				err = fmt.Errorf("%w: no answer within %v", err, timeout)
			}
			res = Result{}
		}
	}()
	h := &state{conn: conn, cfg: cfg}
	var mine, theirs []byte
	if server {
		if mine, err = h.deliver(); err != nil {
			return res, err
		}
		if theirs, err = h.answer(); err != nil {
			return res, err
		}
	} else {
		if theirs, err = h.answer(); err != nil {
			return res, err
		}
		if mine, err = h.deliver(); err != nil {
			return res, err
		}
	}
	if cfg.Python {
		return res, nil
	}
	return h.hello(server, mine, theirs)
}

type state struct {
	conn net.Conn
	cfg  *Config
}

// deliver is CPython's deliver_challenge: it returns the challenge it sent.
func (h *state) deliver() ([]byte, error) {
	msg := make([]byte, len(sha256Prefix)+challengeLen)
	copy(msg, sha256Prefix)
	if _, err := rand.Read(msg[len(sha256Prefix):]); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if err := WriteMessage(h.conn, append([]byte(challengePrefix), msg...)); err != nil {
		return nil, err
	}
	resp, err := ReadMessage(h.conn, maxAuthMsg)
	if err != nil {
		return nil, err
	}
	verr := h.verify(msg, resp)
	reply := welcome
	if verr != nil {
		reply = failure
	}
	if err := WriteMessage(h.conn, []byte(reply)); err != nil && verr == nil {
		return nil, err
	}
	return msg, verr
}

// verify checks the peer's answer to our challenge msg.
func (h *state) verify(msg, resp []byte) error {
	switch {
	case len(resp) == md5Len:
		// CPython ≤ 3.11 answers any challenge with a raw HMAC-MD5.
		if !h.cfg.LegacyMD5 {
			return fmt.Errorf("%w: the peer answered with legacy HMAC-MD5 (CPython 3.11 or older); allow it with the LegacyMD5 option", ErrAuth)
		}
		m := hmac.New(md5.New, h.cfg.Key)
		m.Write(msg)
		if !hmac.Equal(m.Sum(nil), resp) {
			return fmt.Errorf("%w: wrong key (the peer's digest does not match)", ErrAuth)
		}
		return nil
	case len(resp) == len(sha256Prefix)+sha256.Size && string(resp[:len(sha256Prefix)]) == sha256Prefix:
		m := hmac.New(sha256.New, h.cfg.Key)
		m.Write(msg)
		if !hmac.Equal(m.Sum(nil), resp[len(sha256Prefix):]) {
			return fmt.Errorf("%w: wrong key (the peer's digest does not match)", ErrAuth)
		}
		return nil
	}
	return fmt.Errorf("%w: malformed answer to the challenge (%d bytes)", ErrAuth, len(resp))
}

// answer is CPython's answer_challenge: it returns the peer's challenge.
func (h *state) answer() ([]byte, error) {
	m, err := ReadMessage(h.conn, maxAuthMsg)
	if err != nil {
		return nil, err
	}
	if len(m) < len(challengePrefix) || string(m[:len(challengePrefix)]) != challengePrefix {
		return nil, fmt.Errorf("%w: expected a challenge, got %d other bytes", ErrHandshake, len(m))
	}
	msg := m[len(challengePrefix):]
	var resp []byte
	switch {
	case len(msg) < legacyLen:
		return nil, fmt.Errorf("%w: challenge of %d bytes is too short", ErrAuth, len(msg))
	case len(msg) == legacyLen || len(msg) == md5Len:
		if !h.cfg.LegacyMD5 {
			return nil, fmt.Errorf("%w: the peer sent a legacy HMAC-MD5 challenge (CPython 3.11 or older); allow it with the LegacyMD5 option", ErrAuth)
		}
		mac := hmac.New(md5.New, h.cfg.Key)
		mac.Write(msg)
		resp = mac.Sum(nil)
	case string(msg[:len(sha256Prefix)]) == sha256Prefix:
		mac := hmac.New(sha256.New, h.cfg.Key)
		mac.Write(msg)
		resp = mac.Sum([]byte(sha256Prefix))
	default:
		return nil, fmt.Errorf("%w: the peer's challenge asks for a digest other than sha256", ErrAuth)
	}
	if err := WriteMessage(h.conn, resp); err != nil {
		return nil, err
	}
	r, err := ReadMessage(h.conn, maxAuthMsg)
	if err != nil {
		return nil, err
	}
	if string(r) != welcome {
		return nil, fmt.Errorf("%w: the peer rejected our key", ErrAuth)
	}
	return msg, nil
}

// hello exchanges build ids. Both sides write first and then read: a
// hello is far below a socket buffer, so neither write can block on the
// other's read.
func (h *state) hello(server bool, mine, theirs []byte) (Result, error) {
	var res Result
	srv, cli := mine, theirs
	if !server {
		srv, cli = theirs, mine
	}
	body := AppendHello(nil, Version, h.cfg.Flags, h.cfg.BuildID)
	out := append(body, helloMAC(h.cfg.Key, server, srv, cli, body)...)
	if err := WriteMessage(h.conn, out); err != nil {
		return res, err
	}
	in, err := ReadMessage(h.conn, maxHello)
	if err != nil {
		return res, err
	}
	if len(in) < sha256.Size {
		return res, fmt.Errorf("%w: the peer sent no hello (is it a Python program? use the Python option)", ErrHandshake)
	}
	body, mac := in[:len(in)-sha256.Size], in[len(in)-sha256.Size:]
	ver, flags, build, err := ParseHello(body)
	if err != nil {
		return res, err
	}
	if !hmac.Equal(mac, helloMAC(h.cfg.Key, !server, srv, cli, body)) {
		return res, fmt.Errorf("%w: the peer's hello is not authenticated", ErrAuth)
	}
	if ver != Version {
		return res, fmt.Errorf("%w: the peer speaks protocol version %d, this side %d", ErrHandshake, ver, Version)
	}
	res.PeerBuild, res.PeerFlags, res.PeerVersion = build, flags, ver
	res.SameBuild = build == h.cfg.BuildID && build != ""
	return res, nil
}

// helloMAC binds a hello to this connection's two challenges and to the
// side that sent it, so that it cannot be replayed or reflected.
func helloMAC(key []byte, fromServer bool, srv, cli, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	side := []byte{'c'}
	if fromServer {
		side[0] = 's'
	}
	m.Write([]byte("multiproc hello"))
	m.Write(side)
	m.Write(srv)
	m.Write(cli)
	m.Write(body)
	return m.Sum(nil)
}

// AppendHello appends a hello body: the magic, the version, the flags and
// the build id.
func AppendHello(dst []byte, version int, flags uint64, build string) []byte {
	dst = append(dst, helloMagic...)
	dst = binary.AppendUvarint(dst, uint64(version))
	dst = binary.AppendUvarint(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(len(build)))
	return append(dst, build...)
}

// ParseHello reads a hello body written by AppendHello. Any malformation
// is an error wrapping ErrHandshake.
func ParseHello(b []byte) (version int, flags uint64, build string, err error) {
	bad := func(what string) (int, uint64, string, error) {
		return 0, 0, "", fmt.Errorf("%w: malformed hello (%s); is the peer a multiproc ipc peer?", ErrHandshake, what)
	}
	if len(b) < len(helloMagic) || string(b[:len(helloMagic)]) != helloMagic {
		return bad("no magic")
	}
	b = b[len(helloMagic):]
	v, n := binary.Uvarint(b)
	if n <= 0 || v > 1<<16 {
		return bad("version")
	}
	b = b[n:]
	f, n := binary.Uvarint(b)
	if n <= 0 {
		return bad("flags")
	}
	b = b[n:]
	l, n := binary.Uvarint(b)
	if n <= 0 || l != uint64(len(b)-n) {
		return bad("build id")
	}
	return int(v), f, string(b[n:]), nil
}

// WriteMessage writes one CPython-framed message (a big-endian int32
// length, then the bytes) of at most 2 GiB - 1 bytes.
func WriteMessage(w io.Writer, msg []byte) error {
	if len(msg) > 0x7fffffff {
		return fmt.Errorf("%w: handshake message of %d bytes", ErrHandshake, len(msg))
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(msg)), uint32(len(msg)))
	if _, err := w.Write(append(b, msg...)); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return nil
}

// ReadMessage reads one CPython-framed message of at most max bytes. A
// longer (or negative) length is refused before anything is allocated.
func ReadMessage(r io.Reader, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	n := int32(binary.BigEndian.Uint32(hdr[:]))
	if n < 0 || int(n) > max {
		return nil, fmt.Errorf("%w: message length %d (at most %d here)", ErrHandshake, n, max)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return msg, nil
}
