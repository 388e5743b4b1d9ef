//go:build unix && !linux

package wire

import "syscall"

// recvmsgNow is one recvmsg on fd, which is non-blocking. This kernel
// cannot install received descriptors close-on-exec; setCloseOnExec marks
// them right after, as the net package does here.
func recvmsgNow(fd int, p, oob []byte) (n, oobn, flags int, err error) {
	n, oobn, flags, _, err = syscall.Recvmsg(fd, p, oob, 0)
	return n, oobn, flags, err
}

func setCloseOnExec(oob []byte) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for i := range msgs {
		fds, err := syscall.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		for _, fd := range fds {
			syscall.CloseOnExec(fd)
		}
	}
}
