//go:build unix

package ipc

import (
	"os"
	"syscall"
)

// qStatKey names a file by device and inode: one mapping per queue memfd
// per process.
func qStatKey(fi os.FileInfo) [2]uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return [2]uint64{uint64(st.Dev), uint64(st.Ino)}
	}
	return [2]uint64{}
}
