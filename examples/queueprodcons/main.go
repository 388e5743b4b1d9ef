// Command queueprodcons is the seeds' producer/consumer example: 10
// processes each put one line into a queue that holds at most 3 items
// (Python's Queue(3)), and 10 processes each get one and print it under a
// lock, so that no two lines mix.
//
// Python:
//
//	def inputQ(queue):
//	    info = str(os.getpid()) + '(put):' + str(time.time())
//	    queue.put(info)
//
//	def outputQ(queue, lock):
//	    info = queue.get()
//	    lock.acquire()
//	    print(str(os.getpid()) + '(get):' + info)
//	    lock.release()
//
//	lock = multiprocessing.Lock()   # To prevent messy print
//	queue = multiprocessing.Queue(3)
//	for i in range(10): multiprocessing.Process(target=inputQ, args=(queue,)).start() ...
//	for i in range(10): multiprocessing.Process(target=outputQ, args=(queue, lock)).start() ...
//	for p in record1: p.join()
//	queue.close()  # No more object will come, close the queue
//	for p in record2: p.join()
//
// Run it with
//
//	go run ./examples/queueprodcons
//
// Each line names the consumer's pid and the producer's: 10 lines, 20
// different pids. With MaxItems(3), the producers beyond the third wait in
// Put until consumers make room. Close after the producers are done is the
// seed's queue.close(); here it closes the queue for every process, and the
// consumers still get what is in it.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strconv"
	"time"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/ipc"
	"github.com/multiproc-go/multiproc/psync"
)

// inputQ is the producer: it puts "PID(put):TIME".
var inputQ = multiproc.Register("queueprodcons-input", multiproc.NoResult(func(ctx context.Context, q *ipc.Queue[string]) error {
	info := strconv.Itoa(os.Getpid()) + "(put):" + strconv.FormatFloat(float64(time.Now().UnixNano())/1e9, 'f', 6, 64)
	return q.Put(ctx, info)
}))

// outArgs is what a consumer is given: the queue and the print lock.
type outArgs struct {
	Q    *ipc.Queue[string]
	Lock *psync.Lock
}

// outputQ is the consumer: it gets one line and prints it under the lock.
var outputQ = multiproc.Register("queueprodcons-output", multiproc.NoResult(func(ctx context.Context, a outArgs) error {
	info, err := a.Q.Get(ctx)
	if err != nil {
		return err
	}
	return a.Lock.Do(ctx, func() { fmt.Println(strconv.Itoa(os.Getpid()) + "(get):" + info) })
}))

func main() {
	multiproc.Main()
	ctx := context.Background()
	lock, err := psync.NewLock() // to prevent messy print
	if err != nil {
		log.Fatal(err)
	}
	defer lock.Close()
	queue, err := ipc.NewQueue[string](ipc.MaxItems(3))
	if err != nil {
		log.Fatal(err)
	}
	defer queue.Release()

	start := func(p *multiproc.Process) *multiproc.Process {
		if err := p.Start(ctx); err != nil {
			log.Fatal(err)
		}
		return p
	}
	join := func(ps []*multiproc.Process) {
		for _, p := range ps {
			if err := p.Join(ctx); err != nil {
				log.Fatal(err)
			}
			if _, err := multiproc.Result[struct{}](p); err != nil {
				log.Fatal(err)
			}
			p.Close()
		}
	}
	var record1, record2 []*multiproc.Process
	for range 10 {
		record1 = append(record1, start(multiproc.NewProcess(inputQ, queue)))
	}
	for range 10 {
		record2 = append(record2, start(multiproc.NewProcess(outputQ, outArgs{Q: queue, Lock: lock})))
	}
	join(record1)
	queue.Close() // no more items will come
	join(record2)
}
