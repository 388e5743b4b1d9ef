//go:build !race

package testutil

// Race reports whether the race detector is on (tests scale down heavy loads).
const Race = false
