// Package cgroup is multiproc's one implementation of Linux control groups:
// it finds the hierarchies this process lives in (v1, v2 or a hybrid of
// both, through /proc/self/cgroup and /proc/self/mountinfo), reads the CPU
// quota that [CPULimit] reports, and makes one cgroup per worker process
// ([Root.New]) with a hard memory cap (and swap), a CPU bandwidth quota and
// a pids limit, whose out-of-memory kill counter tells a worker's death by
// the kernel's OOM killer from any other SIGKILL.
//
// Groups are named after the process that made them: every group of a
// process lives under a directory "multiproc-PID-START" (its pid and start
// time in clock ticks since boot), next to the process's own cgroup in each
// hierarchy. A parent that was SIGKILLed cannot remove its groups; the next
// process to make groups there removes those whose maker no longer runs
// ([Root.Sweep], run by every [Find], so at every pool start).
//
// Facts it is built around:
//   - v1 has one hierarchy per controller (memory, cpu, pids...), so a
//     group is one directory per controller, and a process joins it by
//     having its pid written into each cgroup.procs after it started.
//   - v2 forbids controllers in a cgroup that holds processes ("no
//     internal processes"), so groups need a delegated parent with no
//     processes of its own: the process's own cgroup only when it is the
//     root, or a directory the caller names. This package never moves the
//     calling process. A v2 child is started directly in its group
//     (CLONE_INTO_CGROUP, through the directory's descriptor, [Group.Dir]).
//   - A v1 memory group counts its OOM kills in memory.oom_control
//     ("oom_kill N"), a v2 one in memory.events.
//
// What it deliberately does not do: freezing, io or device controllers,
// systemd (no D-Bus: a delegated directory is enough), or any library that
// would bring those in.
package cgroup
