package ipc

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/multiproc-go/multiproc/internal/handshake"
)

// Option configures [Listen], [Dial] and [NewListener]. Options that do
// not apply to a call (MaxUnauthenticated on Dial) are errors there, as
// are conflicting ones (LegacyMD5 without Python).
type Option func(*config) error

type config struct {
	python     bool
	legacyMD5  bool
	tls        *tls.Config
	timeout    time.Duration
	maxUnauth  int
	maxMessage int64
	logger     *slog.Logger
	buildID    string // "" = this binary's (tests set another)
	listen     bool
}

// Defaults of the options.
const (
	// DefaultMaxMessageSize bounds every message a Conn sends or receives
	// unless MaxMessageSize says otherwise.
	DefaultMaxMessageSize = 256 << 20
	// DefaultMaxUnauthenticated is how many connections a Listener
	// authenticates at once unless MaxUnauthenticated says otherwise.
	DefaultMaxUnauthenticated = 64
	// DefaultHandshakeTimeout bounds a connection's handshake (TLS
	// included) unless HandshakeTimeout says otherwise.
	DefaultHandshakeTimeout = handshake.DefaultTimeout
)

// maxGoFrame is the largest message of the Go framing (a 32-bit length).
const maxGoFrame = 1<<32 - 1

// Python makes the connection speak CPython's multiprocessing.connection
// protocol, so that the peer can be a Python program using
// multiprocessing.connection.Listener or Client with the same authkey:
// its challenge handshake ({sha256} form; see LegacyMD5), no build-id
// exchange, and its framing (a big-endian int32 length, or -1 and a uint64
// length above 2 GiB - 1). Such a Conn carries byte messages only (Send
// fails with an error matching errors.ErrUnsupported), and every end of
// stream is io.EOF, since CPython sends nothing when it closes. Python's
// pickled objects are not decoded: the peer uses send_bytes/recv_bytes.
func Python() Option {
	return func(c *config) error { c.python = true; return nil }
}

// LegacyMD5 also accepts CPython 3.11's and older versions' HMAC-MD5
// challenge form (their MESSAGE_LENGTH of 20, no digest prefix), in both
// directions. It requires Python. Without it such a peer fails with an
// error matching ErrAuth that names this option.
func LegacyMD5() Option {
	return func(c *config) error { c.legacyMD5 = true; return nil }
}

// TLS runs the connection over TLS with cfg (a server configuration for
// Listen, a client one for Dial); the key handshake then runs inside TLS.
// A TLS Conn cannot be passed to another process: a Process or task
// argument holding one fails to start with an error matching
// multiproc.ErrNotTransferable (the TLS session lives in this process).
func TLS(cfg *tls.Config) Option {
	return func(c *config) error {
		if cfg == nil {
			return errors.New("ipc: TLS(nil)")
		}
		c.tls = cfg
		return nil
	}
}

// HandshakeTimeout bounds each connection's handshake, TLS included
// (default DefaultHandshakeTimeout). A peer that has not finished by then
// is dropped (by a Listener) or fails Dial with an error matching
// ErrHandshake.
func HandshakeTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("ipc: HandshakeTimeout(%v): must be positive", d)
		}
		c.timeout = d
		return nil
	}
}

// MaxUnauthenticated bounds how many accepted connections a Listener
// authenticates at once (default DefaultMaxUnauthenticated); while that
// many are in their handshake, new ones wait in the kernel's backlog.
// Listen only.
func MaxUnauthenticated(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("ipc: MaxUnauthenticated(%d): must be positive", n)
		}
		if !c.listen {
			return errors.New("ipc: MaxUnauthenticated applies to Listen only")
		}
		c.maxUnauth = n
		return nil
	}
}

// MaxMessageSize bounds every message the Conn sends or receives (default
// DefaultMaxMessageSize; at most 4 GiB - 1 bytes, or 2^62 with Python). A
// Send over it fails with an error matching ErrTooLarge and sends nothing;
// a received length over it is a protocol error that breaks the Conn.
func MaxMessageSize(n int64) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("ipc: MaxMessageSize(%d): must be positive", n)
		}
		c.maxMessage = n
		return nil
	}
}

// Logger sets where a Listener reports the connections it refused
// (rate-limited; default slog.Default() at Listen).
func Logger(l *slog.Logger) Option {
	return func(c *config) error { c.logger = l; return nil }
}

// withBuildID pretends this side is another build (tests).
func withBuildID(id string) Option {
	return func(c *config) error { c.buildID = id; return nil }
}

func newConfig(listen bool, opts []Option) (*config, error) {
	c := &config{listen: listen, timeout: DefaultHandshakeTimeout, maxUnauth: DefaultMaxUnauthenticated, maxMessage: DefaultMaxMessageSize}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.legacyMD5 && !c.python {
		return nil, errors.New("ipc: LegacyMD5 requires Python (Go peers always use HMAC-SHA256)")
	}
	if !c.python && c.maxMessage > maxGoFrame {
		return nil, fmt.Errorf("ipc: MaxMessageSize(%d): over the 4 GiB - 1 a Go connection's frames carry", c.maxMessage)
	}
	if c.maxMessage > 1<<62 {
		return nil, fmt.Errorf("ipc: MaxMessageSize(%d): too large", c.maxMessage)
	}
	if c.buildID == "" {
		c.buildID = ownBuild()
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return c, nil
}

func (c *config) handshake(key []byte) *handshake.Config {
	return &handshake.Config{Key: key, Timeout: c.timeout, Python: c.python, LegacyMD5: c.legacyMD5, BuildID: c.buildID}
}
