package shm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc/shm"
)

// TestReviewTypeErrorWording: NewArray[any] said "a interface holds
// pointers", and a struct field of an interface or unsafe.Pointer type
// "is a interface".
func TestReviewTypeErrorWording(t *testing.T) {
	_, err := shm.NewArray[any](1)
	if !errors.Is(err, shm.ErrType) || !strings.Contains(err.Error(), "an interface holds pointers") {
		t.Errorf("NewArray[any] = %v, want an error saying \"an interface holds pointers\"", err)
	}
	type withAny struct{ V any }
	_, err = shm.NewValue(withAny{})
	if !errors.Is(err, shm.ErrType) || !strings.Contains(err.Error(), "V is an interface") {
		t.Errorf("NewValue(withAny) = %v, want \"V is an interface\"", err)
	}
}
