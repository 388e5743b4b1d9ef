package cluster

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/multiproc-go/multiproc/internal/boot"
	"github.com/multiproc-go/multiproc/internal/engine"
	"github.com/multiproc-go/multiproc/internal/errs"
	"github.com/multiproc-go/multiproc/internal/wire"
)

// The JetStream objects every pool and host of every build share. Each is
// created, if missing, by whoever comes first (a pool or a host), with the
// same configuration; an existing one is used as it is.
const (
	tasksStream   = "MULTIPROC_TASKS"    // work queue: one subject per build and pool
	taskPrefix    = "multiproc.task."    // + build + "." + pool id
	resultsBucket = "multiproc_results"  // KV: key pool id + "." + task seq
	hostsBucket   = "multiproc_hosts"    // KV: key build + "." + host id
	blobsBucket   = "multiproc_blobs"    // object store: payloads over the server's limit
	startedPrefix = "multiproc.started." // core NATS: + pool id; tasks a host began
	cancelPrefix  = "multiproc.cancel."  // core NATS: + build; tasks a pool cancelled
	consumerPre   = "multiproc-"         // + build: the durable pull consumer of a build
	advisoryPre   = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + tasksStream + "."
	resultsStream = "KV_" + resultsBucket // the stream behind the results bucket
	hostsStream   = "KV_" + hostsBucket
	blobsStream   = "OBJ_" + blobsBucket
)

// Task message headers.
const (
	hFn       = "Mp-Fn"       // registered function name
	hSeq      = "Mp-Seq"      // the pool's task sequence number
	hChunk    = "Mp-Chunk"    // "1": the payload encodes a slice of arguments
	hItems    = "Mp-Items"    // items in the task
	hTimeout  = "Mp-Timeout"  // time limit in ns (ErrTimeout), relative
	hDeadline = "Mp-Deadline" // what was left of the caller's deadline, in ns, relative
	hAckWait  = "Mp-Ack-Wait" // the consumer's AckWait in ns: the host's heartbeat follows it
	hMaxRes   = "Mp-Max-Result"
	hBlob     = "Mp-Blob" // the payload is this object in the blobs store
)

// Timing of host liveness: a host refreshes its entry every hostBeat; a
// pool counts a host alive while it saw an entry of it within hostTTL.
// The entries also expire in the bucket after hostTTL (its MaxAge), so a
// SIGKILLed host leaves nothing behind for long.
const (
	hostBeat = time.Second
	hostTTL  = 5 * time.Second
)

// Recovery timing: a publication that failed transiently (a lost
// connection, a missing stream) is made again after retryPause; an
// acknowledgement that does not come in pubAckTimeout counts as lost.
const (
	retryPause    = 250 * time.Millisecond
	pubAckTimeout = 30 * time.Second
	resultTries   = 120 // a host's publications of a result: about 30s of retryPause
)

// headerRoom is what a task message keeps free of its server's max payload
// for its headers: a payload above max payload - headerRoom goes to the
// object store.
const headerRoom = 4 << 10

var buildOnce = sync.OnceValues(func() (string, error) {
	id, err := boot.BuildID()
	if err != nil {
		return "", err
	}
	return buildKey(id), nil
})

// buildKey turns a build id (whatever its characters) into a subject token.
func buildKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:8])
}

// metaSubject is the subject of an object's metadata in the blobs store
// (jetstream's layout: $O.<bucket>.M.<base64url(name)>). A deleted object
// leaves a "deleted" marker there, which Close purges.
func metaSubject(name string) string {
	return "$O." + blobsBucket + ".M." + base64.URLEncoding.EncodeToString([]byte(name))
}

// result is what a host reports for one task, stored in the results bucket.
type result struct {
	Outcome engine.Outcome
	Partial bool
	N       int
	Data    []byte // the encoded result, unless Blob names it
	Blob    string // object holding the encoded result
	Err     []byte // error envelope (errs.AppendError), empty on success
	Host    string
	// The death of a worker process (Outcome Died): its ExitError's fields.
	Pid    int
	Code   int
	Signal int
	Reason string
}

const resultVersion = 1

func (r *result) append(dst []byte) []byte {
	var flags byte
	if r.Partial {
		flags |= 1
	}
	dst = append(dst, resultVersion, byte(r.Outcome), flags)
	dst = binary.AppendUvarint(dst, uint64(r.N))
	dst = wire.AppendBytes(dst, r.Data)
	dst = wire.AppendString(dst, r.Blob)
	dst = wire.AppendBytes(dst, r.Err)
	dst = wire.AppendString(dst, r.Host)
	dst = binary.AppendUvarint(dst, uint64(r.Pid))
	dst = binary.AppendVarint(dst, int64(r.Code))
	dst = binary.AppendUvarint(dst, uint64(r.Signal))
	dst = wire.AppendString(dst, r.Reason)
	return dst
}

func decodeResult(b []byte) (*result, error) {
	d := wire.NewBuf(b)
	if v := d.Byte(); d.Err() == nil && v != resultVersion {
		return nil, fmt.Errorf("multiproc/cluster: result record version %d, want %d", v, resultVersion)
	}
	r := &result{Outcome: engine.Outcome(d.Byte())}
	r.Partial = d.Byte()&1 != 0
	r.N = int(d.Uvarint())
	r.Data = d.Bytes()
	r.Blob = d.String()
	r.Err = d.Bytes()
	r.Host = d.String()
	r.Pid = int(d.Uvarint())
	r.Code = int(d.Varint())
	r.Signal = int(d.Uvarint())
	r.Reason = d.String()
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("multiproc/cluster: bad result record: %w", err)
	}
	if r.Outcome > engine.Cancelled {
		return nil, fmt.Errorf("multiproc/cluster: bad result record: outcome %d", r.Outcome)
	}
	return r, nil
}

// setErr fills r's error fields from a host-side outcome.
func (r *result) setErr(fn string, err error) {
	if err == nil {
		return
	}
	var ee *errs.ExitError
	if r.Outcome == engine.Died && errors.As(err, &ee) {
		r.Pid, r.Code, r.Signal, r.Reason = ee.Pid, ee.Code, int(ee.Signal), ee.Reason
	}
	r.Err = errs.AppendError(nil, fn, 0, err, false, "")
}

// failure rebuilds the error of a result on the submitting side. A worker's
// death becomes an *ExitError as locally, its Reason naming the host; a
// timeout an error matching ErrTimeout; anything else (the function's own
// error, a result too large) the RemoteError the host reported, so
// errors.Is and errors.As see the same sentinels and registered types as
// locally.
func (r *result) failure(fn string, timeout time.Duration) error {
	if len(r.Err) == 0 {
		return nil
	}
	switch r.Outcome {
	case engine.Died:
		if r.Pid != 0 {
			reason := "on host " + r.Host
			if r.Reason != "" {
				reason += ": " + r.Reason
			}
			return &errs.ExitError{Pid: r.Pid, Code: r.Code, Signal: syscall.Signal(r.Signal), Worker: true, Reason: reason}
		}
	case engine.TimedOut:
		return fmt.Errorf("multiproc: task %q exceeded its %v time limit on host %s: %w", fn, timeout, r.Host, errs.ErrTimeout)
	}
	re, err := errs.DecodeError(r.Err)
	if err != nil {
		return fmt.Errorf("multiproc/cluster: host %s sent a bad error envelope: %w", r.Host, err)
	}
	return re
}

// resultKey is the results bucket key of task seq of pool pid.
func resultKey(pid string, seq uint64) string { return pid + "." + strconv.FormatUint(seq, 10) }

// parseResultKey splits a results key (or the subject of its message).
func parseResultKey(key string) (pid string, seq uint64, ok bool) {
	i := strings.LastIndexByte(key, '.')
	if i < 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(key[i+1:], 10, 64)
	if err != nil {
		return "", 0, false
	}
	pid = key[:i]
	if j := strings.LastIndexByte(pid, '.'); j >= 0 {
		pid = pid[j+1:]
	}
	return pid, seq, true
}

// hostEntry is a host's registration in the hosts bucket (JSON).
type hostEntry struct {
	Build   string `json:"build"`
	Host    string `json:"host"`
	Pid     int    `json:"pid"`
	Workers int    `json:"workers"`
}
