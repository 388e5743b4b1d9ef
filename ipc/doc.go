// Package ipc is communication between processes: Python's Pipe,
// multiprocessing.connection (Connection, Listener, Client, wait) and the
// Queue, JoinableQueue and SimpleQueue types.
//
// This package is being built (issue 11); its documentation grows with it.
package ipc
