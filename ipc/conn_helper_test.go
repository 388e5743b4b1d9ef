package ipc_test

import (
	"io"
	"log/slog"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/internal/wire"
	"github.com/multiproc-go/multiproc/ipc"
)

var errNotTransferable = multiproc.ErrNotTransferable

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func exportErr(c *ipc.Conn) error {
	var x wire.Exported
	err := c.ExportResource(&x)
	for _, f := range x.Files {
		f.Close()
	}
	return err
}
