package manager

import "github.com/multiproc-go/multiproc/internal/errs"

func errsRegister(err error) { errs.RegisterSentinel(err) }
