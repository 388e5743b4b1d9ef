package errs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"syscall"

	"github.com/multiproc-go/multiproc/internal/wire"
)

// The envelope of an error is
//
//	u8      flags (flagPanic, flagTyped; unknown bits are ignored)
//	string  function name
//	uvarint pid
//	string  Go type of the error, or "panic"
//	string  message
//	string  panic stack
//	uvarint n, then n strings: keys of the registered sentinels it matched
//	        (see RegisterSentinel)
//	errno section, only when flagErrno is set:
//	  uvarint n (at most maxErrnos), then n uvarints: the syscall.Errno
//	          values in the chain (same binary, same system: same numbers)
//	output section, only when flagOutput is set: string, the end of what
//	        the task printed (output capture)
//	typed section, only when flagTyped is set, always last:
//	  u8      section version (typedVersion)
//	  uvarint n (at most maxTyped), then n entries of
//	          string name (see TypeName), bytes encoding
//
// Strings and bytes are uvarint-length-prefixed. Everything before the
// typed section must be intact or DecodeError fails. The typed section is
// an extra: a section of an unknown version, or a corrupt one, is dropped
// and the error still arrives as a plain RemoteError; an entry whose type
// this process does not know, or whose encoding does not decode, is kept
// (and passed on by a middle process) but not rebuilt.
const (
	flagPanic = 1 << iota
	flagTyped
	flagErrno
	flagOutput
)

// maxErrnos bounds the errnos one envelope carries.
const maxErrnos = 8

const (
	typedVersion = 1
	// maxTyped bounds the typed errors one envelope carries (found in the
	// chain, outermost first), and maxTypedBytes the encoding of each: an
	// error is a report, not a payload.
	maxTyped      = 8
	maxTypedBytes = 1 << 20
)

// typedEntry is one registered error value in an envelope.
type typedEntry struct {
	name string
	data []byte
}

// maxChain bounds the walk of an error chain, which user Unwrap methods
// could make endless.
const maxChain = 256

// walkChain calls f on err and the errors it wraps, in errors.As order
// (depth first), visiting at most maxChain errors. f returns whether to
// look below the error it was given, and whether to go on at all.
func walkChain(err error, f func(error) (below, more bool)) {
	n := 0
	var walk func(error) bool
	walk = func(err error) bool {
		if err == nil {
			return true
		}
		if n++; n > maxChain {
			return false
		}
		below, more := f(err)
		if !more {
			return false
		}
		if !below {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			return walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if !walk(e) {
					return false
				}
			}
		}
		return true
	}
	walk(err)
}

// recordOf returns the remote-error record err itself is (this package's
// *RemoteError, or the root's public RemoteError), or nil.
func recordOf(err error) *RemoteError {
	if re, ok := err.(*RemoteError); ok {
		return re
	}
	if public.recordOf != nil {
		return public.recordOf(err)
	}
	return nil
}

// AppendError appends the envelope of err (from function fn in process pid)
// to dst. stack is the panic stack, or empty.
//
// A remote error that err merely is (a nested child's failure passed on
// unchanged) keeps the nested child's function, pid, type, message, stack,
// sentinels and typed errors. Otherwise the envelope records err's own
// type and message, the registered sentinels it matches, and the values of
// registered error types in its chain ([RegisterType]); a remote error
// inside the chain contributes its typed errors as it received them. A
// registered value that fails to encode is left out and the message says
// so, so the error itself is never lost.
//
// An error wrapping syscall.EMFILE also matches ErrFDLimit on the other
// side, and every syscall.Errno in the chain matches there too.
func AppendError(dst []byte, fn string, pid int, err error, panicked bool, stack string) (out []byte) {
	return AppendErrorOutput(dst, fn, pid, err, panicked, stack, "")
}

// AppendErrorOutput is [AppendError] with the end of the output the task
// printed (output capture), which the decoded RemoteError carries in its
// Output field.
func AppendErrorOutput(dst []byte, fn string, pid int, err error, panicked bool, stack, output string) (out []byte) {
	typ := publicTypeName(err)
	msg := safeMessage(err)
	n := len(dst)
	defer func() {
		// User code in err's chain (an Unwrap or Is method) panicked: the
		// failure must still be reported, with what is known for sure.
		if r := recover(); r != nil {
			if panicked {
				typ = "panic"
			}
			out = appendEnvelope(dst[:n], fn, pid, typ, fmt.Sprintf("%s (multiproc: walking its error chain panicked: %v)", msg, r), stack, panicked, nil, nil, nil, output)
		}
	}()
	var keys []string
	var typed []typedEntry
	var errnos []syscall.Errno
	var re *RemoteError
	walkChain(err, func(e error) (bool, bool) { re = recordOf(e); return true, re == nil })
	if re != nil && re.Error() == msg {
		fn, pid, typ, msg, stack, panicked, keys, typed, errnos = re.Func, re.Pid, re.Type, re.Message, re.Stack, re.Panic, re.keys, re.typed, re.errnos
		if output == "" {
			output = re.Output
		}
	} else {
		keys = matchKeys(err)
		typed, msg = typedEntries(err, msg)
		errnos = chainErrnos(err)
	}
	if panicked {
		typ = "panic"
	}
	return appendEnvelope(dst, fn, pid, typ, msg, stack, panicked, keys, typed, errnos, output)
}

// chainErrnos lists the distinct syscall.Errno values in err's chain.
func chainErrnos(err error) []syscall.Errno {
	var ns []syscall.Errno
	walkChain(err, func(e error) (bool, bool) {
		if n, ok := e.(syscall.Errno); ok && !slices.Contains(ns, n) {
			ns = append(ns, n)
		}
		return true, len(ns) < maxErrnos
	})
	return ns
}

// safeMessage is err.Error(), or what fmt prints when Error panics: "<nil>"
// for a nil pointer (a typed nil returned as an error), otherwise the
// panic value, so that the failure is reported rather than crashing the
// process that reports it.
func safeMessage(err error) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			if v := reflect.ValueOf(err); v.Kind() == reflect.Pointer && v.IsNil() {
				msg = "<nil>"
				return
			}
			msg = fmt.Sprintf("%%!v(PANIC=Error method: %v)", r)
		}
	}()
	return err.Error()
}

// appendEnvelope appends an envelope with the given parts.
func appendEnvelope(dst []byte, fn string, pid int, typ, msg, stack string, panicked bool, keys []string, typed []typedEntry, errnos []syscall.Errno, output string) []byte {
	var flags byte
	if panicked {
		flags |= flagPanic
	}
	if len(typed) > 0 {
		flags |= flagTyped
	}
	if len(errnos) > 0 {
		flags |= flagErrno
	}
	if output != "" {
		flags |= flagOutput
	}
	dst = append(dst, flags)
	dst = wire.AppendString(dst, fn)
	dst = binary.AppendUvarint(dst, uint64(pid))
	dst = wire.AppendString(dst, typ)
	dst = wire.AppendString(dst, msg)
	dst = wire.AppendString(dst, stack)
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = wire.AppendString(dst, k)
	}
	if len(errnos) > 0 {
		dst = binary.AppendUvarint(dst, uint64(len(errnos)))
		for _, n := range errnos {
			dst = binary.AppendUvarint(dst, uint64(n))
		}
	}
	if output != "" {
		dst = wire.AppendString(dst, output)
	}
	if len(typed) > 0 {
		dst = append(dst, typedVersion)
		dst = binary.AppendUvarint(dst, uint64(len(typed)))
		for _, t := range typed {
			dst = wire.AppendString(dst, t.name)
			dst = wire.AppendBytes(dst, t.data)
		}
	}
	return dst
}

// typedEntries encodes the registered error values in err's chain. It
// returns msg with a note for each value that could not be encoded.
func typedEntries(err error, msg string) ([]typedEntry, string) {
	var typed []typedEntry
	add := func(t typedEntry) bool {
		if len(typed) == maxTyped {
			return false
		}
		typed = append(typed, t)
		return true
	}
	walkChain(err, func(e error) (below, more bool) {
		if re := recordOf(e); re != nil {
			// A remote error inside the chain: pass its typed errors on as
			// they came, including those of types this process does not
			// know, rather than re-encoding the values rebuilt from them
			// (which are below it in the chain, so the walk stops here).
			for _, t := range re.typed {
				if !add(t) {
					return false, false
				}
			}
			return false, true
		}
		et := lookupType(reflect.TypeOf(e))
		if et == nil {
			return true, true
		}
		data, eerr := safeEncode(et, e)
		if eerr == nil && len(data) > maxTypedBytes {
			eerr = fmt.Errorf("%w: %d-byte encoding, over the %d-byte limit for an error", ErrTooLarge, len(data), maxTypedBytes)
		}
		if eerr != nil {
			// The value cannot travel; its encoder's complaint, as text,
			// is the most that can, so it goes into the message.
			msg += fmt.Sprintf(" (multiproc: error type %s not sent: %s)", et.name, eerr.Error())
			return true, true
		}
		return true, add(typedEntry{name: et.name, data: data})
	})
	return typed, msg
}

// safeEncode runs a registered encoder, which is user-typed code (gob
// calls a type's GobEncode), turning a panic into an error.
func safeEncode(et *errorType, e error) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("encoding panicked: %v", r)
		}
	}()
	return et.encode(nil, e)
}

// safeDecode runs a registered decoder, turning a panic into an error:
// the bytes come from another process.
func safeDecode(et *errorType, data []byte) (v error, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("%w: decoding panicked: %v", wire.ErrCorrupt, r)
		}
	}()
	v, err = et.decode(data)
	if err == nil && isNil(v) {
		err = fmt.Errorf("%w: nil %s", wire.ErrCorrupt, et.name)
	}
	return v, err
}

func isNil(v error) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// DecodeError decodes an envelope written by AppendError. It fails, with
// an error wrapping wire.ErrCorrupt, only if the part before the typed
// section is damaged; see the format above for what happens to a bad
// typed section. It never panics.
func DecodeError(payload []byte) (*RemoteError, error) {
	d := wire.NewBuf(payload)
	flags := d.Byte()
	e := &RemoteError{Panic: flags&flagPanic != 0}
	e.Func = d.String()
	e.Pid = int(d.Uvarint())
	e.Type = d.String()
	e.Message = d.String()
	e.Stack = d.String()
	n := d.Uvarint()
	if n > uint64(len(payload)) {
		return nil, fmt.Errorf("%w: %d sentinel keys in a %d-byte envelope", wire.ErrCorrupt, n, len(payload))
	}
	for range n {
		e.keys = append(e.keys, d.String())
	}
	if flags&flagErrno != 0 {
		n := d.Uvarint()
		if n > maxErrnos {
			return nil, fmt.Errorf("%w: %d errnos in an error envelope", wire.ErrCorrupt, n)
		}
		for range n {
			v := d.Uvarint()
			if v > math.MaxUint32 {
				return nil, fmt.Errorf("%w: errno %d", wire.ErrCorrupt, v)
			}
			e.errnos = append(e.errnos, syscall.Errno(v))
		}
	}
	if flags&flagOutput != 0 {
		e.Output = d.String()
	}
	if d.Err() != nil {
		return nil, fmt.Errorf("error envelope: %w", d.Err())
	}
	if flags&flagTyped != 0 {
		e.typed = decodeTyped(d.Rest())
	} else if len(d.Rest()) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after error envelope", wire.ErrCorrupt, len(d.Rest()))
	}
	sentinels.RLock()
	for _, k := range e.keys {
		if s, ok := sentinels.byKey[k]; ok {
			e.local = append(e.local, s)
		}
	}
	sentinels.RUnlock()
	for _, n := range e.errnos {
		e.local = append(e.local, n)
	}
	for _, t := range e.typed {
		if et := lookupName(t.name); et != nil {
			if v, err := safeDecode(et, t.data); err == nil {
				e.local = append(e.local, v)
			}
		}
	}
	return e, nil
}

// decodeTyped parses a typed section; it returns nil for a section of
// another version or a damaged one.
func decodeTyped(b []byte) []typedEntry {
	d := wire.NewBuf(b)
	if d.Byte() != typedVersion {
		return nil
	}
	n := d.Uvarint()
	if n > maxTyped {
		return nil
	}
	var ts []typedEntry
	for range n {
		name := d.String()
		data := bytes.Clone(d.Bytes()) // the payload buffer is reused
		if data == nil {
			data = []byte{}
		}
		ts = append(ts, typedEntry{name: name, data: data})
	}
	if d.Err() != nil || len(d.Rest()) != 0 {
		return nil
	}
	return ts
}

// matchKeys lists the keys of registered sentinels that err matches.
// An error wrapping EMFILE counts as matching ErrFDLimit.
func matchKeys(err error) []string {
	sentinels.RLock()
	defer sentinels.RUnlock()
	var keys []string
	for _, s := range sentinels.list {
		if errors.Is(err, s) || (s == ErrFDLimit && errors.Is(err, syscall.EMFILE)) {
			keys = append(keys, sentinels.keys[s])
		}
	}
	return keys
}

// publicTypeName is err's type as fmt's %T prints it, except that this
// package's twins of the root's error types are named by the root's
// types, the ones a program can name: "*multiproc.TooLargeError", not
// "*errs.TooLargeError".
func publicTypeName(err error) string {
	switch err.(type) {
	case *ExitError:
		return "*multiproc.ExitError"
	case *TooLargeError:
		return "*multiproc.TooLargeError"
	}
	return fmt.Sprintf("%T", err)
}
