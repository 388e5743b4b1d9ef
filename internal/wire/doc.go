// Package wire is the byte format spoken between a multiproc parent and its
// children: length-prefixed frames, value codecs (raw, string, bytes, record, gob), the type check Register runs, the
// resource marker, and descriptor-carrying readers. The error envelope lives in internal/errs.
//
// A frame is a 4-byte little-endian payload length, a 1-byte kind and the
// payload. Every reader enforces a maximum payload size before allocating, so
// a corrupt or hostile length can never make a peer allocate unbounded memory.
//
// Values travel in one of two codecs chosen per Go type at registration time
// (see [For]): a fast path that copies the memory of pointer-free types and
// length-prefixes strings and byte slices (safe because both ends run the same
// binary, which the handshake verifies), and encoding/gob for everything else.
// Each gob value is self-contained (its own type description) so that a value
// can be encoded in the caller's goroutine, where an unencodable value is
// reported synchronously, and decoded by whichever worker receives it. For
// long-lived one-writer streams a [Codec] also offers persistent streams that
// send each type description once.
//
// The package does not do I/O scheduling, authentication or batching policy;
// callers decide when to flush.
package wire
