//go:build !unix

package ipc

import "os"

// qStatKey: no device and inode here (queues are unsupported off Linux).
func qStatKey(fi os.FileInfo) [2]uint64 { return [2]uint64{} }
