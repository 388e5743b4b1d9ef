//go:build !linux

package multiproc

// Elsewhere runtime.NumCPU already reflects what the system reports, and
// there are no cgroups to read.

func affinityCPUs() int { return 0 }

func quotaCPUs() int { return 0 }
