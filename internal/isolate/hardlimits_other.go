//go:build !unix

package isolate

// checkHardLimits has no rlimits to check here.
func checkHardLimits(Spec) error { return nil }
