// Package multiproc gives Go programs what Python's multiprocessing and
// concurrent.futures.ProcessPoolExecutor give Python programs: real OS
// worker processes behind a familiar, typed API.
//
// Goroutines already use every core; this package is for what goroutines
// cannot do: isolation. A worker process can crash (a cgo segfault, a
// panic in a goroutine, an out-of-memory kill) without taking the program
// down, be killed when a task exceeds its time limit, and be recycled when
// it leaks memory.
//
// # Children are the same program, started again
//
// Go cannot fork, so a child is the running binary executed again (Python's
// "spawn" start method). Work is therefore named, not shipped: a function a
// child runs is registered in a package-level var, so that every process of
// the program registers it during initialisation, and main starts with
// [Main], the Go form of `if __name__ == "__main__":`:
//
//	var square = multiproc.Register("square", func(_ context.Context, x int) (int, error) {
//		return x * x, nil
//	})
//
//	func main() {
//		multiproc.Main()
//		ctx := context.Background()
//		pool, err := multiproc.NewPool(ctx, 5)
//		if err != nil {
//			log.Fatal(err)
//		}
//		defer pool.Close()
//		fmt.Println(multiproc.Map(ctx, pool, square, []int{1, 2, 3})) // [1 4 9] <nil>
//	}
//
// In a test binary, TestMain starts with multiproc.Main() the same way.
//
// Everything that runs before Main runs again in every child: the init
// functions and package-level var initialisers of every package in the
// program, dependencies included. That is how a child gets the
// registrations; it is also why such code must be cheap and must not do
// what a child must not repeat (open files, connect, print, start
// background work). Do that in main, after Main.
//
// Callbacks ([AsyncResult.OnResult], [AsyncResult.OnError],
// [Future.AddDoneCallback]) run one at a time on a goroutine of the pool's.
// They may close their own pool; a panic in one is logged, not fatal.
//
// # From Python
//
//	Process(target=f, args=(x,))      NewProcess(f, x); p.Name, p.Daemon
//	p.start() / p.join(timeout)       p.Start(ctx) / p.Join(ctx)
//	p.exitcode, terminate(), kill()   p.ExitCode(), p.Terminate(), p.Kill()
//	class P(Process): def run(self)   RegisterProcess[P]; NewProcessOf(&P{...})
//	current_process(), active_children()  CurrentProcess(), ActiveChildren()
//	os.cpu_count()                    CPUCount() (honours cgroup quotas and affinity)
//	Pool(n, initializer, initargs)    NewPool(ctx, n, Initializer(f, arg))
//	pool.map(f, xs, chunksize)        Map(ctx, pool, f, xs, Chunksize(n))
//	pool.imap / imap_unordered        Imap / ImapUnordered (iter.Seq2, lazy)
//	pool.starmap(f, pairs)            Starmap(ctx, pool, f, []Args2[A, B]) with Register2
//	pool.apply / apply_async          Apply / ApplyAsync(...).OnResult(cb).OnError(ecb)
//	pool.map_async                    MapAsync
//	pool.close(); pool.join()         pool.Close()
//	pool.terminate()                  pool.Terminate()
//	ProcessPoolExecutor(n)            NewExecutor(ctx, n)
//	executor.submit(f, x)             Submit(ctx, ex, f, x) -> *Future[T]
//	executor.map(f, xs)               Imap(ctx, ex, f, xs)
//	as_completed(fs), wait(fs, ...)   AsCompleted(ctx, fs...), Wait(ctx, fs, FirstCompleted)
//	executor.shutdown(wait, cancel_futures)  ex.Shutdown(wait, cancelFutures)
//
// # Beyond Python
//
// A worker that dies fails only the task it was running, with an error
// matching [ErrWorkerDied] that carries its exit code or signal, and is
// replaced; the pool never hangs and never breaks (CPython's Pool hangs
// forever, and its executor becomes unusable). A task can have a time limit
// ([TaskTimeout], [Timeout]) and be cancelled through its context; its
// worker is stopped and replaced if it does not stop. Workers can be
// recycled by task count, memory or age, retried tasks and crash loops are
// bounded, errors and panics cross the process boundary as [*RemoteError]
// with the remote stack and errors.Is intact, and a child always dies with
// its parent, however the parent dies.
//
// The package does not ship closures or arbitrary code: a child can only
// run what its binary registered, and a child built from a different binary
// refuses to start ([ErrBuildMismatch]).
//
// # Platforms
//
// Linux and macOS. On other systems the package does not compile; the
// build fails with one error naming multiproc_supports_only_Linux_and_macOS.
package multiproc
