package jobs

import (
	"context"
	"math/rand/v2"
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
// without churn), and otherwise snoozes — not an attempt, the ledger untouched — for about
// as long as the merchant's attempts take, so a hanging merchant's backlog
// costs one short run per job per ~timeout rather than a busy loop. Snoozed
// jobs get a later scheduled_at, so other merchants' jobs are fetched first.
// With N processes a merchant may hold N × cap slots out of N × workers: the
// same share.
type merchantLimiter struct {
	limit   int
	timeout time.Duration // the longest an attempt holds a slot

	mu   sync.Mutex
	byID map[uuid.UUID]*merchantSlots
	seq  uint64
}

// merchantSlots is one merchant's share, kept while anyone holds or waits
// for a slot.
type merchantSlots struct {
	sem     chan struct{}
	refs    int                  // holders and waiters
	started map[uint64]time.Time // holders' start times
	avg     time.Duration        // moving average of attempt durations
}

const (
	// slotWait is the longest a job waits for its merchant's slot, holding
	// a worker meanwhile; only merchants whose attempts take less than
	// that wait at all, the others snooze at once.
	slotWait     = 100 * time.Millisecond
	snoozeMin    = 500 * time.Millisecond
	snoozeJitter = 0.5 // up to +50%, so a backlog does not come back all at once
)

func newMerchantLimiter(limit int, timeout time.Duration) *merchantLimiter {
	return &merchantLimiter{limit: limit, timeout: timeout, byID: map[uuid.UUID]*merchantSlots{}}
}

// acquire takes one of the merchant's slots and returns its release, to be
// called with the attempt's duration. When none frees in time it returns a
// nil release and how long to snooze.
func (l *merchantLimiter) acquire(ctx context.Context, merchantID uuid.UUID) (release func(time.Duration), snooze time.Duration) {
	l.mu.Lock()
	s := l.byID[merchantID]
	if s == nil {
		s = &merchantSlots{sem: make(chan struct{}, l.limit), started: map[uint64]time.Time{}}
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
	if !acquired {
		snooze = min(max(s.estimate(time.Now()), snoozeMin), l.timeout)
		snooze += time.Duration(rand.Float64() * snoozeJitter * float64(snooze))
		l.unref(merchantID, s)
		return nil, snooze
	}
	l.seq++
	key := l.seq
	s.started[key] = time.Now()
	return func(d time.Duration) {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(s.started, key)
		if d > 0 {
			s.avg = (3*s.avg + d) / 4
		}
		<-s.sem
		l.unref(merchantID, s)
	}, 0
}

func (l *merchantLimiter) unref(merchantID uuid.UUID, s *merchantSlots) {
	s.refs--
	if s.refs == 0 {
		delete(l.byID, merchantID)
	}
}

// estimate is how long the merchant's attempts take: the moving average,
// or longer if an attempt in flight has already run longer (a hang shows
// before its first attempt ends).
func (s *merchantSlots) estimate(now time.Time) time.Duration {
	est := s.avg
	for _, t := range s.started {
		est = max(est, now.Sub(t))
	}
	return est
}
