// Package pages populates fresh memory in bulk, before it is first
// written.
//
// On this project's virtual machine the first write to a fresh 4 KiB page
// of anonymous memory costs ~10-13 µs (a fault the hypervisor also
// traps), while MADV_POPULATE_WRITE populates a range for ~0.8 µs a page
// and the first write after it costs ~4 µs; pages populated as huge pages
// cost ~20 ns on first write (docs/BENCHMARKS.md, sessions 23 and 26). A
// large buffer that is allocated once and then written through (a Map's
// result, a worker's frame and argument buffers) is therefore populated
// with one system call right after it is allocated. Nothing here changes
// a byte: pages already present cost nothing, and where the call is not
// supported (an older kernel, another system) the faults stay where they
// were.
package pages
