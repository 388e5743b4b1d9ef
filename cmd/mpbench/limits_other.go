//go:build !unix

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// errNoSocketpair is returned by the limit rows that need unix socketpairs.
var errNoSocketpair = errors.New("mpbench: socketpair limits need a unix system")

func serveLimitChild(role string) int {
	fmt.Fprintf(os.Stderr, "mpbench: %s=%s: limit children need a unix system\n", limitChildEnv, role)
	return 2
}

func reexecHandshake(context.Context, *Env, bool) (float64, error) { return 0, errNoSocketpair }

func socketpairPingpong(context.Context, *Env) (float64, error) { return 0, errNoSocketpair }

func unixBandwidth(context.Context, *Env) (float64, error) { return 0, errNoSocketpair }

func startSpinners(context.Context, *Env) (func() error, error) { return nil, errNoSocketpair }
