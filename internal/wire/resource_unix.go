//go:build unix

package wire

import (
	"fmt"
	"net"
	"os"
	"reflect"
	"syscall"
)

// The standard library's descriptor types travel as builtin resources:
// files, and the net package's sockets (a listener handed to a pool of
// workers is the classic pre-fork server). Each export duplicates the
// descriptor (the sender keeps its own); each import makes a new object
// that belongs to the receiving code, which must close it.

func init() {
	builtins = append(builtins,
		&builtin{
			name: "os.File", typ: reflect.TypeFor[*os.File](),
			export: func(v any, x *Exported) error {
				f := v.(*os.File)
				d, err := dupFile(f, f.Name())
				if err != nil {
					return err
				}
				x.Files, x.Owned, x.State = []*os.File{d}, true, []byte(f.Name())
				return nil
			},
			imp: func(state []byte, files []*os.File) (any, error) {
				if err := oneFile("file", files); err != nil {
					return nil, err
				}
				// Give the file the sender's name (the transport's is generic).
				f, err := dupFile(files[0], string(state))
				files[0].Close()
				return f, err
			},
		},
		netBuiltin[*net.TCPListener]("net.TCPListener", listenerOf),
		netBuiltin[*net.UnixListener]("net.UnixListener", listenerOf),
		netBuiltin[*net.TCPConn]("net.TCPConn", connOf),
		netBuiltin[*net.UnixConn]("net.UnixConn", connOf),
		netBuiltin[*net.UDPConn]("net.UDPConn", packetConnOf),
	)
}

func oneFile(what string, files []*os.File) error {
	if len(files) != 1 {
		closeAll(files)
		return fmt.Errorf("%w: a %s arrived with %d descriptors", ErrCorrupt, what, len(files))
	}
	return nil
}

func listenerOf(f *os.File) (any, error) { return net.FileListener(f) }
func connOf(f *os.File) (any, error)     { return net.FileConn(f) }
func packetConnOf(f *os.File) (any, error) {
	return net.FilePacketConn(f)
}

// netBuiltin carries a socket type T through its descriptor. The receiving
// side's object is made by the net package from the descriptor, so its
// dynamic type follows the socket (a unix listener arrives as a
// *net.UnixListener), and a position declared with another type fails.
func netBuiltin[T interface {
	comparable
	SyscallConn() (syscall.RawConn, error)
}](name string, mk func(*os.File) (any, error)) *builtin {
	return &builtin{
		name: name, typ: reflect.TypeFor[T](),
		export: func(v any, x *Exported) error {
			c := v.(T)
			rc, err := c.SyscallConn()
			if err != nil {
				return err
			}
			var f *os.File
			var derr error
			if cerr := rc.Control(func(fd uintptr) { f, derr = dupNumber(int(fd), name) }); cerr != nil {
				return cerr
			}
			if derr != nil {
				return derr
			}
			x.Files, x.Owned = []*os.File{f}, true
			return nil
		},
		imp: func(_ []byte, files []*os.File) (any, error) {
			if err := oneFile(name, files); err != nil {
				return nil, err
			}
			// The net package duplicates the descriptor: ours is closed.
			v, err := mk(files[0])
			files[0].Close()
			if err != nil {
				return nil, err
			}
			if _, ok := v.(T); !ok {
				closeAny(v)
				return nil, fmt.Errorf("the descriptor that arrived is a %T, not a %v", v, reflect.TypeFor[T]())
			}
			return v, nil
		},
	}
}

func closeAny(v any) {
	if c, ok := v.(interface{ Close() error }); ok {
		c.Close()
	}
}

// dupFile returns a close-on-exec duplicate of f under name.
func dupFile(f *os.File, name string) (*os.File, error) {
	fd, err := DupFD(f)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

func dupNumber(fd int, name string) (*os.File, error) {
	syscall.ForkLock.RLock()
	nfd, err := syscall.Dup(fd)
	if err == nil {
		syscall.CloseOnExec(nfd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, os.NewSyscallError("dup", err)
	}
	return os.NewFile(uintptr(nfd), name), nil
}
