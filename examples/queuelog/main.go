// Command queuelog is the seeds' real-time log analysis: four processes
// take log entries from one queue until each gets the sentinel that says
// there are no more (Python's None).
//
// Python:
//
//	def analyze_log(log_queue):
//	    while True:
//	        log_entry = log_queue.get()
//	        if log_entry is None:
//	            break
//	        print(f'Analyzing: {log_entry}')
//
//	log_queue = Queue()
//	processes = [Process(target=analyze_log, args=(log_queue,)) for _ in range(4)]
//	for p in processes: p.start()
//	for i in range(10): log_queue.put(f'Log entry {i}')
//	for _ in processes: log_queue.put(None)
//	for p in processes: p.join()
//
// Run it with
//
//	go run ./examples/queuelog
//
// The queue is typed, so the sentinel is a value of the item type: an
// entry with Stop set. (Closing the queue after the last entry would do the
// same job: Get returns the remaining entries and then ipc.ErrClosed.)
// The ten "Analyzing" lines come in any order.
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/ipc"
)

// entry is one item: a log line, or the sentinel.
type entry struct {
	Text string
	Stop bool
}

var analyzeLog = multiproc.Register("queuelog-analyze", multiproc.NoResult(func(ctx context.Context, q *ipc.Queue[entry]) error {
	for {
		e, err := q.Get(ctx)
		if err != nil {
			return err
		}
		if e.Stop {
			return nil
		}
		// Perform log analysis
		fmt.Printf("Analyzing: %s\n", e.Text)
	}
}))

func main() {
	multiproc.Main()
	ctx := context.Background()
	q, err := ipc.NewQueue[entry]()
	if err != nil {
		log.Fatal(err)
	}
	defer q.Release()
	var processes []*multiproc.Process
	for range 4 {
		p := multiproc.NewProcess(analyzeLog, q)
		if err := p.Start(ctx); err != nil {
			log.Fatal(err)
		}
		processes = append(processes, p)
	}
	// Simulate log entries
	for i := range 10 {
		if err := q.Put(ctx, entry{Text: fmt.Sprintf("Log entry %d", i)}); err != nil {
			log.Fatal(err)
		}
	}
	for range processes {
		if err := q.Put(ctx, entry{Stop: true}); err != nil {
			log.Fatal(err)
		}
	}
	for _, p := range processes {
		if err := p.Join(ctx); err != nil {
			log.Fatal(err)
		}
		if _, err := multiproc.Result[struct{}](p); err != nil {
			log.Fatal(err)
		}
		p.Close()
	}
}
