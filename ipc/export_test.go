package ipc

// WithBuildID pretends this side is another build (tests of the
// self-describing path).
var WithBuildID = withBuildID
