package ipc

// WithBuildID pretends this side is another build (tests of the
// self-describing path).
var WithBuildID = withBuildID

// Detaches counts the large sends that copied their message.
func Detaches() int64 { return detaches.Load() }
