package boot

import (
	"encoding/binary"
	"fmt"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// Frame kinds of the handshake. Roles use kinds >= 0x20.
const (
	KindStart  = 's' // parent -> child: StartMsg
	KindReady  = 'r' // child -> parent: running, about to serve the role
	KindRefuse = 'x' // child -> parent: refused, payload is the reason
)

const startVersion = 1

// StartMsg is what a child learns from its parent before serving a role.
type StartMsg struct {
	BuildID    string
	Role       string
	Name       string // the child's process name (Python's Process.name)
	Daemon     bool
	ParentPid  int
	ParentName string
	Payload    []byte // role-specific
}

func (m *StartMsg) append(dst []byte) []byte {
	dst = append(dst, startVersion)
	dst = wire.AppendString(dst, m.BuildID)
	dst = wire.AppendString(dst, m.Role)
	dst = wire.AppendString(dst, m.Name)
	if m.Daemon {
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(m.ParentPid))
	dst = wire.AppendString(dst, m.ParentName)
	return wire.AppendBytes(dst, m.Payload)
}

func decodeStart(b []byte) (StartMsg, error) {
	var m StartMsg
	d := wire.NewBuf(b)
	if v := d.Byte(); d.Err() == nil && v != startVersion {
		return m, fmt.Errorf("%w: start message version %d, want %d", wire.ErrCorrupt, v, startVersion)
	}
	m.BuildID = d.String()
	m.Role = d.String()
	m.Name = d.String()
	m.Daemon = d.Byte() == 1
	m.ParentPid = int(d.Uvarint())
	m.ParentName = d.String()
	m.Payload = append([]byte(nil), d.Bytes()...)
	if d.Err() != nil {
		return m, fmt.Errorf("start message: %w", d.Err())
	}
	return m, nil
}
