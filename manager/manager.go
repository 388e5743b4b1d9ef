package manager

// Manager is a connection to a manager server: the local one Start made
// (a child process), or a remote one Connect reached. Every proxy made
// with it shares its connection. It is safe for concurrent use.
type Manager struct {
	c     *client
	local *localServer // Start's child, nil for Connect
}

// Close closes the connection. Objects only this connection referenced
// are released by the server. For a Manager made by Start, use Shutdown.
func (m *Manager) Close() error {
	if m == nil || m.c == nil {
		return nil
	}
	m.c.close()
	return nil
}

type localServer struct{}
