//go:build unix && !linux

package wire

import "syscall"

// recvFlags: this kernel cannot install received descriptors close-on-exec;
// setCloseOnExec marks them right after, as the net package does here.
const recvFlags = 0

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
