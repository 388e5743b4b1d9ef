package shm_test

import (
	"testing"

	"github.com/multiproc-go/multiproc/shm"
)

// The shared_array rows of issue 9, in-process: an Array's slice against a
// plain Go slice of the same 10M float64s (80 MB).
//
//	go test -run='^$' -bench=. -benchtime=20x ./shm/

const benchLen = 10_000_000

var sink float64

func sum(s []float64) float64 {
	var t float64
	for _, v := range s {
		t += v
	}
	return t
}

func BenchmarkArraySum(b *testing.B) {
	b.Run("shared", func(b *testing.B) {
		a, err := shm.NewArray[float64](benchLen)
		if err != nil {
			b.Fatal(err)
		}
		defer a.Close()
		s := a.Slice()
		for i := range s {
			s[i] = float64(i)
		}
		b.SetBytes(benchLen * 8)
		for b.Loop() {
			sink = sum(s)
		}
	})
	b.Run("plain", func(b *testing.B) {
		s := make([]float64, benchLen)
		for i := range s {
			s[i] = float64(i)
		}
		b.SetBytes(benchLen * 8)
		for b.Loop() {
			sink = sum(s)
		}
	})
}

// BenchmarkCreateTouch is create + first touch of every page of 80 MB.
func BenchmarkCreateTouch(b *testing.B) {
	b.Run("Array", func(b *testing.B) {
		b.SetBytes(benchLen * 8)
		for b.Loop() {
			a, err := shm.NewArray[float64](benchLen)
			if err != nil {
				b.Fatal(err)
			}
			s := a.Slice()
			for i := 0; i < len(s); i += 512 {
				s[i] = 1
			}
			a.Close()
		}
	})
	b.Run("make", func(b *testing.B) {
		b.SetBytes(benchLen * 8)
		for b.Loop() {
			s := make([]float64, benchLen)
			for i := 0; i < len(s); i += 512 {
				s[i] = 1
			}
			sink = s[0]
		}
	})
}
