package errs_test

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/multiproc-go/multiproc/internal/errs"
)

// TestEnvelopeErrnos: errnos in a chain cross the envelope, and EMFILE
// also matches ErrFDLimit on the other side (issue 14).
func TestEnvelopeErrnos(t *testing.T) {
	open := &os.PathError{Op: "open", Path: "/x", Err: syscall.EMFILE}
	err := fmt.Errorf("task: %w", open)
	re, derr := errs.DecodeError(errs.AppendError(nil, "f", 7, err, false, ""))
	if derr != nil {
		t.Fatal(derr)
	}
	for _, want := range []error{syscall.EMFILE, errs.ErrFDLimit} {
		if !errors.Is(re, want) {
			t.Errorf("errors.Is(decoded, %v) = false, want true", want)
		}
	}
	if errors.Is(re, syscall.ENOENT) {
		t.Error("decoded error matches ENOENT, which was not in the chain")
	}
	// Passed on by a middle process unchanged, it keeps them.
	again, derr := errs.DecodeError(errs.AppendError(nil, "g", 8, re, false, ""))
	if derr != nil {
		t.Fatal(derr)
	}
	if !errors.Is(again, syscall.EMFILE) || !errors.Is(again, errs.ErrFDLimit) {
		t.Error("a passed-on error lost its errno")
	}
}

// TestEnvelopeOutput: captured output travels in its own section.
func TestEnvelopeOutput(t *testing.T) {
	re, err := errs.DecodeError(errs.AppendErrorOutput(nil, "f", 7, errors.New("boom"), false, "", "line 1\nline 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if re.Output != "line 1\nline 2\n" || re.Message != "boom" {
		t.Errorf("decoded Output %q, Message %q; want the captured lines and boom", re.Output, re.Message)
	}
}
