package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is an embedded nats-server with JetStream, running inside this
// program: what a pool uses when it is given no URL, and what a program
// can start itself to have worker hosts join it (see [StartHost]).
//
// By default it keeps everything in memory, so a program that is killed
// leaves no store behind: its streams die with it. With [StoreDir] it
// keeps them in files and writes synchronously (sync_always): JetStream's
// default is to fsync every two minutes, and Jepsen found it acknowledging
// writes it had not yet made durable (still so in v2.15).
//
// A Server is safe for concurrent use; Close it when done.
type Server struct {
	srv   *server.Server
	dir   string // the JetStream store directory
	owned bool   // dir was made by StartServer and is removed by Close
	file  bool   // file storage
}

// ServerOption configures [StartServer].
type ServerOption func(*serverConfig) error

type serverConfig struct {
	host string
	port int
	dir  string
}

// Listen makes the server listen on addr ("host:port"; port 0 picks a free
// one). The default is 127.0.0.1 on a free port: reachable from worker
// hosts on this machine only. Hosts on other machines need an address they
// can reach, and then the server needs authentication (see the package
// documentation).
func Listen(addr string) ServerOption {
	return func(c *serverConfig) error {
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("multiproc/cluster: Listen(%q): %w", addr, err)
		}
		port, err := strconv.Atoi(p)
		if err != nil || port < 0 || port > 65535 {
			return fmt.Errorf("multiproc/cluster: Listen(%q): bad port", addr)
		}
		if port == 0 {
			port = -1 // nats-server's "any free port"
		}
		c.host, c.port = h, port
		return nil
	}
}

// StoreDir makes the server keep its streams in files under dir, written
// synchronously, instead of in memory. The caller owns dir; Close leaves it.
func StoreDir(dir string) ServerOption {
	return func(c *serverConfig) error {
		if dir == "" {
			return errors.New("multiproc/cluster: StoreDir(\"\")")
		}
		c.dir = dir
		return nil
	}
}

// StartServer starts an embedded server and returns once it accepts
// connections, or fails when ctx ends first (an error wrapping ctx.Err()).
// Starting takes a few milliseconds.
func StartServer(ctx context.Context, opts ...ServerOption) (*Server, error) {
	if ctx == nil {
		panic("multiproc/cluster: nil context")
	}
	c := serverConfig{host: "127.0.0.1", port: -1}
	for _, o := range opts {
		if o == nil {
			panic("multiproc/cluster: nil ServerOption")
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	s := &Server{dir: c.dir, file: c.dir != ""}
	if s.dir == "" {
		// JetStream wants a store directory even when every stream is in
		// memory; it stays empty and is removed by Close.
		d, err := os.MkdirTemp("", "multiproc-nats-")
		if err != nil {
			return nil, fmt.Errorf("multiproc/cluster: embedded server: %w", err)
		}
		s.dir, s.owned = d, true
	}
	sopts := &server.Options{
		Host:      c.host,
		Port:      c.port,
		JetStream: true,
		StoreDir:  s.dir,
		NoLog:     true,
		NoSigs:    true,
		// File storage only: fsync every write before acknowledging it.
		SyncAlways: s.file,
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		s.removeDir()
		return nil, fmt.Errorf("multiproc/cluster: embedded server: %w", err)
	}
	s.srv = srv
	go srv.Start()
	deadline := 30 * time.Second
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	ready := make(chan bool, 1)
	go func() { ready <- srv.ReadyForConnections(deadline) }()
	select {
	case ok := <-ready:
		if !ok {
			s.Close()
			return nil, errors.New("multiproc/cluster: embedded server did not become ready")
		}
	case <-ctx.Done():
		<-ready // bounded by deadline; the server may be half started
		s.Close()
		return nil, fmt.Errorf("multiproc/cluster: embedded server start: %w", ctx.Err())
	}
	return s, nil
}

// URL is the address clients and worker hosts connect to (nats://host:port).
func (s *Server) URL() string { return s.srv.ClientURL() }

// Close shuts the server down and waits for it, dropping every client;
// with memory storage (the default) everything it held is gone. It is safe
// to call more than once.
func (s *Server) Close() error {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
	return s.removeDir()
}

func (s *Server) removeDir() error {
	if !s.owned {
		return nil
	}
	return os.RemoveAll(s.dir)
}
