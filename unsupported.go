//go:build !unix

// This file stops the build on platforms the package does not support,
// with one message naming the reason, instead of pages of undefined
// symbols from the platform files that do not exist there. Its package
// clause differs from the other files', which the go command reports while
// it loads the packages, before any compilation (a compile error here would
// come after those of internal packages that fail on the same platform).
package multiproc_supports_only_Linux_and_macOS
