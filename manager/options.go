package manager

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/multiproc-go/multiproc/ipc"
)

// Option configures Start, Serve and Connect. Options that do not apply
// to a call are errors there.
type Option func(*config) error

type config struct {
	heartbeat  time.Duration
	tls        *tls.Config
	logger     *slog.Logger
	maxMessage int64
	handshake  time.Duration
	raw        bool
	serving    bool // Serve or Start
	remote     bool // Serve or Connect
}

// Heartbeat sets the heartbeat interval (default DefaultHeartbeat): an
// idle end sends a ping each half interval, and a connection over which
// nothing arrived for HeartbeatMisses intervals is dropped. A client
// tells the server its interval, so both ends use the client's. Loss of
// an idle TCP connection is noticed within HeartbeatMisses intervals (6 s
// by default); a call in progress ends at its context's deadline anyway.
func Heartbeat(d time.Duration) Option {
	return func(c *config) error {
		if d < 10*time.Millisecond {
			return fmt.Errorf("manager: Heartbeat(%v): at least 10ms", d)
		}
		c.heartbeat = d
		return nil
	}
}

// TLS runs connections over TLS with cfg (a server configuration for
// Serve, a client one for Connect); the key handshake then runs inside
// TLS. Serve and Connect only. Proxies that another process receives
// connect without TLS: send them only to processes on the machine where
// that is safe (the usual Process and pool case reaches a local manager),
// or give the receiver its own Connect.
func TLS(cfg *tls.Config) Option {
	return func(c *config) error {
		if cfg == nil {
			return errors.New("manager: TLS(nil)")
		}
		if !c.remote {
			return errors.New("manager: TLS applies to Serve and Connect")
		}
		c.tls = cfg
		return nil
	}
}

// Logger sets where a server reports refused connections (wrong key,
// garbage, heartbeats missed), rate-limited; default slog.Default().
func Logger(l *slog.Logger) Option {
	return func(c *config) error { c.logger = l; return nil }
}

// MaxMessageSize bounds every request and response (default
// ipc.DefaultMaxMessageSize): a call whose arguments exceed it fails with
// an error matching ErrTooLarge and sends nothing; a call whose answer
// exceeds the server's limit fails with an error matching ErrTooLarge
// (the answer is not sent). Either way only that call fails: the
// connection serves later calls. A client's limit should be at least the
// server's (a local manager uses one limit for both): an answer within
// the server's limit but over the client's breaks the connection.
func MaxMessageSize(n int64) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("manager: MaxMessageSize(%d): must be positive", n)
		}
		c.maxMessage = n
		return nil
	}
}

// HandshakeTimeout bounds each connection's authentication (default
// ipc.DefaultHandshakeTimeout).
func HandshakeTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("manager: HandshakeTimeout(%v): must be positive", d)
		}
		c.handshake = d
		return nil
	}
}

// RawEncodings makes a server started with Serve store values in this
// build's raw memory encodings (as a local manager does), which is faster
// and refuses clients of other builds with ErrBuildMismatch. Serve only.
func RawEncodings() Option {
	return func(c *config) error {
		if !c.serving || !c.remote {
			return errors.New("manager: RawEncodings applies to Serve")
		}
		c.raw = true
		return nil
	}
}

func newConfig(serving, remote bool, opts []Option) (*config, error) {
	c := &config{serving: serving, remote: remote}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return c, nil
}

func (c *config) ipcOptions() []ipc.Option {
	var o []ipc.Option
	if c.tls != nil {
		o = append(o, ipc.TLS(c.tls))
	}
	if c.maxMessage > 0 {
		o = append(o, ipc.MaxMessageSize(c.maxMessage))
	}
	if c.handshake > 0 {
		o = append(o, ipc.HandshakeTimeout(c.handshake))
	}
	if c.serving {
		o = append(o, ipc.Logger(c.logger))
	}
	return o
}
