// Command errors shows a child's failure reaching its parent: an error
// returned by the target, and a panic, each arrive from Join as a
// *multiproc.RemoteError with the remote type, message and (for a panic)
// stack, and errors.Is recognises a sentinel error registered with
// RegisterError.
//
// Python has to catch the exception in the child and send it back itself:
//
//	def worker_function(q):
//	    try:
//	        raise ValueError('An error occurred in worker')
//	    except Exception as e:
//	        q.put(e)
//
//	if __name__ == '__main__':
//	    q = Queue()
//	    process = Process(target=worker_function, args=(q,))
//	    process.start()
//	    error = q.get()
//	    if error:
//	        print(f'Error: {error}')
//	    process.join()
//
// Run it with
//
//	go run ./examples/errors
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"

	"github.com/multiproc-go/multiproc"
)

// ErrInvalidValue is Python's ValueError. Registering it lets errors.Is
// recognise it after it crossed from a child to its parent.
var ErrInvalidValue = multiproc.RegisterError(errors.New("invalid value"))

// share divides 100 among n: it fails for a negative n and panics (integer
// division by zero) for n == 0.
var share = multiproc.Register("share", func(_ context.Context, n int) (int, error) {
	if n < 0 {
		return 0, fmt.Errorf("an error occurred in worker: %d people: %w", n, ErrInvalidValue)
	}
	return divide(100, n), nil
})

func divide(a, b int) int { return a / b }

func main() {
	multiproc.Main()
	ctx := context.Background()
	for _, n := range []int{4, -1, 0} {
		p := multiproc.NewProcess(share, n)
		if err := p.Start(ctx); err != nil {
			log.Fatal(err)
		}
		err := p.Join(ctx)
		code, _ := p.ExitCode()
		fmt.Printf("share(%d): exit code %d\n", n, code)
		if err == nil {
			v, _ := multiproc.Result[int](p)
			fmt.Printf("  result: %d\n", v)
			continue
		}
		fmt.Printf("  Error: %v\n", err)
		var remote *multiproc.RemoteError
		if errors.As(err, &remote) {
			fmt.Printf("  remote type: %s\n", remote.Type)
			fmt.Printf("  remote message: %s\n", remote.Message)
			fmt.Printf("  errors.Is(err, ErrInvalidValue): %v\n", errors.Is(err, ErrInvalidValue))
			if remote.Panic {
				fmt.Printf("  panicked in: %s\n", panickingFunc(remote.Stack))
			}
		}
	}
}

// panickingFunc finds the function that panicked in a remote stack: the
// first function after the panic that is not the runtime's own.
func panickingFunc(stack string) string {
	_, after, ok := strings.Cut(stack, "\npanic(")
	if !ok {
		return "unknown"
	}
	for _, l := range strings.Split(after, "\n")[1:] {
		if strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "runtime.") {
			continue // a file:line line, or a runtime frame
		}
		name, _, _ := strings.Cut(l, "(")
		return name
	}
	return "unknown"
}
