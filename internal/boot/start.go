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

// startVersion is the start message's layout version. Version 2 added
// MaxMessageSize and Files.
const startVersion = 2

// StartMsg is what a child learns from its parent before serving a role.
type StartMsg struct {
	BuildID    string
	Role       string
	Name       string // the child's process name (Python's Process.name)
	Daemon     bool
	ParentPid  int
	ParentName string
	// MaxMessageSize is the largest frame payload either end of the control
	// socket accepts after the handshake; Spawn always sends a value in
	// [1, MaxLimit] (the default when Config left it 0).
	MaxMessageSize int
	// Files is how many files the parent passed from fd 4 on; the child
	// keeps them open when it closes inherited descriptors.
	Files   int
	Payload []byte // role-specific; last, so that it can be written from where it lies
}

// appendHead appends the encoding of m up to and including the payload's
// length prefix: the payload's bytes follow it on the wire, so a large
// payload is written from the caller's buffer without being copied.
func (m *StartMsg) appendHead(dst []byte) []byte {
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
	dst = binary.AppendUvarint(dst, uint64(m.MaxMessageSize))
	dst = binary.AppendUvarint(dst, uint64(m.Files))
	return binary.AppendUvarint(dst, uint64(len(m.Payload)))
}

func (m *StartMsg) append(dst []byte) []byte {
	return append(m.appendHead(dst), m.Payload...)
}

// decodeStart decodes a start message. The payload aliases b.
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
	limit := d.Uvarint()
	files := d.Uvarint()
	m.Payload = d.Bytes()
	if d.Err() != nil {
		return m, fmt.Errorf("start message: %w", d.Err())
	}
	// Bounds checked here, not trusted: a limit outside the valid range
	// or an absurd file count would misconfigure the child.
	if limit < 1 || limit > MaxLimit {
		return m, fmt.Errorf("%w: start message: message size limit %d out of range", wire.ErrCorrupt, limit)
	}
	if files > maxFiles {
		return m, fmt.Errorf("%w: start message: %d passed files", wire.ErrCorrupt, files)
	}
	m.MaxMessageSize, m.Files = int(limit), int(files)
	return m, nil
}

// maxFiles bounds the file count a start message may announce; no
// descriptor table is that large.
const maxFiles = 1 << 20
