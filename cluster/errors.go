package cluster

import "errors"

// ErrNoWorkers is the error (wrapped, with the wait) of the tasks of a
// cluster pool that waited [NoWorkersWait] while no worker host at all was
// alive on the cluster, or while the pool was disconnected from the
// server (the message says so). When hosts are alive but all run other builds of
// the program, the tasks fail with an error matching
// multiproc.ErrBuildMismatch instead.
var ErrNoWorkers = errors.New("multiproc/cluster: no live worker host")
