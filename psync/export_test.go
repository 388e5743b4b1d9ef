package psync

// Imports returns how many primitives this process has imported.
func Imports() int64 { return imports.Load() }
