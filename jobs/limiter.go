package jobs

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Isolation between merchants. A River worker slot is held for the whole
// attempt, so without a cap one merchant whose endpoint hangs for the full
// timeout would, with enough deliveries queued, hold every slot and stall
// every other merchant for 10 s at a time.
//
// merchantLimiter caps each merchant's attempts in flight in this process
// (Config.MerchantConcurrency, 10 of the 100 workers by default). A job whose
// merchant is at the cap waits briefly for a slot if that merchant's
// attempts are fast (slotWait: a burst to a fast endpoint gets through
// without churn), and otherwise snoozes (not an attempt: the ledger is
// untouched), so a hanging merchant's backlog holds no worker. Snoozed jobs
// queue per merchant, and each slot that frees wakes the next of them at
// once (wakeFunc makes the job available in River now): the backlog moves as
// fast as the merchant's own slots free, in order, and the moment its
// endpoint answers again the backlog flows. The snooze itself (about the
// timeout, by which a slot has surely freed) only matters if the wake is
// lost, e.g. this process died. With N processes a merchant may hold N × cap
// slots out of N × workers: the same share.
type merchantLimiter struct {
	limit   int
	timeout time.Duration // the longest an attempt holds a slot
	// wakeFunc makes snoozed jobs available now; it runs outside the lock,
	// on its own goroutine.
	wakeFunc func(jobIDs []int64)

	mu   sync.Mutex
	byID map[uuid.UUID]*merchantSlots
	seq  uint64
}

// merchantSlots is one merchant's share, kept while anyone holds, waits for
// or queues for a slot.
type merchantSlots struct {
	sem     chan struct{}
	refs    int                  // holders and waiters
	started map[uint64]time.Time // holders' start times
	last    time.Duration        // how long the last finished attempt took
	// queue holds the jobs snoozed for a slot, oldest first; queued says
	// which of them still wait (a job that got a slot meanwhile is dropped
	// when it reaches the front).
	queue  []queuedJob
	queued map[int64]bool
}

type queuedJob struct {
	id int64
	at time.Time
}

const (
	// slotWait is the longest a job waits for its merchant's slot, holding
	// a worker meanwhile; only merchants whose attempts take less than
	// that wait at all, the others snooze at once.
	slotWait     = 100 * time.Millisecond
	snoozeMin    = 500 * time.Millisecond
	snoozeJitter = 0.5 // up to +50%, so a backlog does not come back all at once
)

func newMerchantLimiter(limit int, timeout time.Duration, wake func(jobIDs []int64)) *merchantLimiter {
	return &merchantLimiter{limit: limit, timeout: timeout, wakeFunc: wake, byID: map[uuid.UUID]*merchantSlots{}}
}

// acquire takes one of the merchant's slots for job jobID and returns its
// release, to be called with the attempt's duration. When none frees in
// time it returns a nil release and how long to snooze; the job is queued
// and woken when a slot frees.
func (l *merchantLimiter) acquire(ctx context.Context, merchantID uuid.UUID, jobID int64) (release func(time.Duration), snooze time.Duration) {
	l.mu.Lock()
	s := l.byID[merchantID]
	if s == nil {
		s = &merchantSlots{sem: make(chan struct{}, l.limit), started: map[uint64]time.Time{}, queued: map[int64]bool{}}
		l.byID[merchantID] = s
	}
	s.refs++
	slow := s.estimate(time.Now()) >= slotWait
	l.mu.Unlock()

	acquired := false
	select {
	case s.sem <- struct{}{}:
		acquired = true
	default:
		if !slow {
			timer := time.NewTimer(slotWait)
			select {
			case s.sem <- struct{}{}:
				acquired = true
			case <-timer.C:
			case <-ctx.Done():
			}
			timer.Stop()
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !acquired {
		// A fast merchant's slot frees within moments; a slow one's may
		// take the whole timeout. Either way a freed slot wakes the queue.
		snooze = snoozeMin
		if slow {
			snooze = l.timeout
		}
		snooze += time.Duration(rand.Float64() * snoozeJitter * float64(snooze))
		if !s.queued[jobID] {
			s.queued[jobID] = true
			s.queue = append(s.queue, queuedJob{id: jobID, at: now})
		}
		l.unref(merchantID, s)
		return nil, snooze
	}
	delete(s.queued, jobID)
	l.seq++
	key := l.seq
	s.started[key] = now
	return func(d time.Duration) {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(s.started, key)
		if d > 0 {
			s.last = d
		}
		<-s.sem
		// One freed slot, one woken job; two when the merchant is fast
		// (the second covers the time River takes to fetch the first);
		// every free slot's worth when nothing of this merchant is left
		// running here.
		n := 1
		if d < slotWait {
			n = 2
		}
		if len(s.started) == 0 {
			n = l.limit
		}
		if ids := s.pop(n, time.Now().Add(-2*l.timeout)); len(ids) > 0 && l.wakeFunc != nil {
			go l.wakeFunc(ids)
		}
		l.unref(merchantID, s)
	}, 0
}

func (l *merchantLimiter) unref(merchantID uuid.UUID, s *merchantSlots) {
	s.refs--
	if s.refs == 0 && len(s.queue) == 0 {
		delete(l.byID, merchantID)
	}
}

// pop takes up to n queued jobs, oldest first. Jobs queued before
// forgetBefore are dropped unwoken: their snooze has ended and they ran, or
// will, on their own.
func (s *merchantSlots) pop(n int, forgetBefore time.Time) []int64 {
	var ids []int64
	for len(s.queue) > 0 && len(ids) < n {
		j := s.queue[0]
		s.queue = s.queue[1:]
		if !s.queued[j.id] {
			continue // it got a slot meanwhile
		}
		delete(s.queued, j.id)
		if j.at.Before(forgetBefore) {
			continue
		}
		ids = append(ids, j.id)
	}
	if len(s.queue) == 0 {
		s.queue = nil // let the backing array go
	}
	return ids
}

// estimate is how long the merchant's attempts take: the last one's
// duration, or longer if an attempt in flight has already run longer (a
// hang shows before its first attempt ends). The last attempt alone, not an
// average: one quick answer after a hang says the endpoint is back.
func (s *merchantSlots) estimate(now time.Time) time.Duration {
	est := s.last
	for _, t := range s.started {
		est = max(est, now.Sub(t))
	}
	return est
}

// wakeTimeout bounds one wake; a lost wake costs only the snooze.
const wakeTimeout = 5 * time.Second

// wakeAgainAfter: a job snoozed a moment ago may still be `running` in
// Postgres (River records how a run ended shortly after it ends), so the
// jobs a wake did not move are tried once more after this.
const wakeAgainAfter = 250 * time.Millisecond

// wakeSnoozed is the delivery worker's merchantLimiter.wakeFunc.
func (w *DeliveryWorker) wakeSnoozed(jobIDs []int64) {
	ctx, cancel := context.WithTimeout(context.Background(), wakeTimeout)
	defer cancel()
	for try := 0; try < 2 && len(jobIDs) > 0; try++ {
		if try > 0 {
			time.Sleep(wakeAgainAfter)
		}
		moved, err := w.store.DeliveryJobsWake(ctx, jobIDs)
		if err != nil {
			w.log.WarnContext(ctx, "waking deliveries snoozed for a merchant slot; they wait for their snooze instead", "jobs", len(jobIDs), "error", err)
			return
		}
		jobIDs = slices.DeleteFunc(jobIDs, func(id int64) bool { return slices.Contains(moved, id) })
	}
}
