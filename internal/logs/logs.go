// Package logs is the one place where multiproc's components log on their
// own: pools now, listeners and manager servers later. Every component
// takes a *slog.Logger through its constructor's Logger option (default
// slog.Default() at construction, never a global setter) and wraps it in a
// [Limiter], so that a condition that repeats (a crash loop, a stream of
// bad connections) produces one line per interval with a count, not one per
// occurrence.
package logs

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Interval is how often one key may log.
const Interval = 10 * time.Second

// Limiter rate-limits log lines per key. The zero value is not usable; use
// [New]. It is safe for concurrent use.
type Limiter struct {
	log *slog.Logger

	mu   sync.Mutex
	last map[string]entry // protected by mu
}

type entry struct {
	at         time.Time
	suppressed int
}

// New returns a Limiter writing to l (slog.Default() if l is nil).
func New(l *slog.Logger) *Limiter {
	if l == nil {
		l = slog.Default()
	}
	return &Limiter{log: l, last: map[string]entry{}}
}

// Logger returns the underlying logger.
func (l *Limiter) Logger() *slog.Logger { return l.log }

// Log writes msg at level unless key logged within Interval; a line that
// follows suppressed ones says how many were suppressed. It reports
// whether it wrote.
func (l *Limiter) Log(level slog.Level, key, msg string, args ...any) bool {
	now := time.Now()
	l.mu.Lock()
	e, seen := l.last[key]
	if seen && now.Sub(e.at) < Interval {
		e.suppressed++
		l.last[key] = e
		l.mu.Unlock()
		return false
	}
	l.last[key] = entry{at: now}
	l.mu.Unlock()
	if e.suppressed > 0 {
		args = append(args, slog.Int("suppressed", e.suppressed))
	}
	l.log.Log(context.Background(), level, msg, args...)
	return true
}

// Warn is Log at slog.LevelWarn.
func (l *Limiter) Warn(key, msg string, args ...any) bool {
	return l.Log(slog.LevelWarn, key, msg, args...)
}

// Error is Log at slog.LevelError.
func (l *Limiter) Error(key, msg string, args ...any) bool {
	return l.Log(slog.LevelError, key, msg, args...)
}
