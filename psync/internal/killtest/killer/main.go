// Command killer runs the kill test (package killtest) in a binary of its
// own, so that the test can build it with CGO_ENABLED=0. It prints one
// line: "ok cgo=BOOL rounds=N held=N max=DURATION", or the failure.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/psync/internal/killtest"
)

func main() {
	multiproc.Main()
	rounds := flag.Int("rounds", 100, "kills")
	flag.Parse()
	st, err := killtest.Run(context.Background(), *rounds)
	if err != nil {
		fmt.Fprintln(os.Stderr, "killer:", err)
		os.Exit(1)
	}
	fmt.Printf("ok cgo=%v rounds=%d held=%d max=%v\n", killtest.Cgo, st.Rounds, st.Held, st.MaxTook)
}
