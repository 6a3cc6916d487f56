package jobs

import (
	"context"
	"sync"
)

// batchMax bounds one batch: the statement's arrays and the time the
// batch's rows stay locked.
const batchMax = 256

// batcher turns many workers' calls of one statement into one call, like
// River's batched completer: a worker hands its item over and waits until
// the batch holding it is done (for a write, committed: nothing is
// acknowledged before it is durable, and a crash before the commit re-sends
// rather than loses). There is no timer: a batch is whatever queued while
// the previous one ran, so a lone call goes at once and a busy queue shares
// one statement, one round trip and one commit among many workers. The
// delivery worker batches its reads of deliveries, its marks of slow
// attempts and its successes' outcomes; never a failure's outcome, whose
// write sets when its retry runs.
type batcher[In, Out any] struct {
	// runFunc runs one batch and returns one Out per item, in order.
	runFunc func(ctx context.Context, items []In) ([]Out, error)

	mu      sync.Mutex
	queue   []*batchCall[In, Out]
	running bool // a goroutine is running batches until the queue is empty
}

type batchCall[In, Out any] struct {
	in   In
	out  Out
	err  error
	done chan struct{}
}

func newBatcher[In, Out any](runFunc func(context.Context, []In) ([]Out, error)) *batcher[In, Out] {
	return &batcher[In, Out]{runFunc: runFunc}
}

// do runs in as part of a batch and returns its result.
func (b *batcher[In, Out]) do(in In) (Out, error) {
	c := &batchCall[In, Out]{in: in, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	if !b.running {
		b.running = true
		go b.run()
	}
	b.mu.Unlock()
	<-c.done
	return c.out, c.err
}

func (b *batcher[In, Out]) run() {
	for {
		b.mu.Lock()
		batch := b.queue
		if len(batch) > batchMax {
			batch, b.queue = batch[:batchMax], batch[batchMax:]
		} else {
			b.queue = nil
		}
		if len(batch) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		items := make([]In, len(batch))
		for i, c := range batch {
			items[i] = c.in
		}
		// Not a worker's context: the batch is every waiting worker's. A
		// write waits out a short outage (db.Store.InTxRetrying) within one
		// job's margin.
		ctx, cancel := context.WithTimeout(context.Background(), timeoutMargin)
		outs, err := b.runFunc(ctx, items)
		cancel()
		for i, c := range batch {
			if err == nil {
				c.out = outs[i]
			}
			c.err = err
			close(c.done)
		}
	}
}
