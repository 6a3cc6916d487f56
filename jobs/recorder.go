package jobs

import (
	"context"
	"sync"

	"github.com/boohpay/boohpay/db"
)

// recordBatchMax bounds one batch: the statement's arrays and the time the
// batch's rows stay locked.
const recordBatchMax = 256

// recorder writes the ledger outcomes of successful attempts in batches,
// like River's batched completer: a worker hands its record over and waits
// until the batch holding it has committed, so nothing is acknowledged (and
// River does not complete the job) before the write is durable, and a crash
// before the commit re-sends rather than loses. There is no timer: a batch
// is whatever queued while the previous one committed, so a lone write goes
// at once and a busy queue shares one commit among many workers. Failures
// are not batched: their write sets when the retry runs.
type recorder struct {
	store *db.Store

	mu       sync.Mutex
	queue    []*recordWait
	flushing bool // a goroutine is writing batches until the queue is empty
}

type recordWait struct {
	rec      db.AttemptRecord
	done     chan struct{}
	recorded bool
	err      error
}

// record writes rec (a success) and reports whether it was written; see
// db.Store.DeliveryRecordSucceededMany.
func (r *recorder) record(rec db.AttemptRecord) (bool, error) {
	w := &recordWait{rec: rec, done: make(chan struct{})}
	r.mu.Lock()
	r.queue = append(r.queue, w)
	if !r.flushing {
		r.flushing = true
		go r.flush()
	}
	r.mu.Unlock()
	<-w.done
	return w.recorded, w.err
}

func (r *recorder) flush() {
	for {
		r.mu.Lock()
		batch := r.queue
		if len(batch) > recordBatchMax {
			batch, r.queue = batch[:recordBatchMax], batch[recordBatchMax:]
		} else {
			r.queue = nil
		}
		if len(batch) == 0 {
			r.flushing = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		recs := make([]db.AttemptRecord, len(batch))
		for i, w := range batch {
			recs[i] = w.rec
		}
		// Not a worker's context: the batch is every waiting worker's. It
		// waits out a short outage (InTxRetrying) within one job's margin.
		ctx, cancel := context.WithTimeout(context.Background(), timeoutMargin)
		written, err := r.store.DeliveryRecordSucceededMany(ctx, recs)
		cancel()
		for i, w := range batch {
			if err == nil {
				w.recorded = written[i]
			}
			w.err = err
			close(w.done)
		}
	}
}
