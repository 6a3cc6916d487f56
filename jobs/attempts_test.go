package jobs

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
)

// Issue 18's defect: a River run that failed on our side before any POST
// ("loading delivery …: unexpected EOF") advanced job.Attempt, which the
// worker used as the attempt number, so deliveries reached the merchant
// fewer than 1 + WEBHOOK_MAX_RETRIES times before FAILED. Attempts are
// counted by the ledger: every other load fails here, and the merchant
// still gets all six attempts.
func TestDeliveryDatabaseFaultsSpendNoAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, respondStatus(http.StatusInternalServerError))
	m, _ := b.merchant(rc.URL)
	id := b.emit(m)
	var loads, faults atomic.Int64
	cfg := testConfig()
	cfg.faultFunc = func(point string) error {
		if point == faultLoad && loads.Add(1)%2 == 0 {
			faults.Add(1)
			return fmt.Errorf("reading: %w", io.ErrUnexpectedEOF) // what a cut connection gives
		}
		return nil
	}
	b.start(cfg)

	row := b.waitStatus(id, db.DeliveryFailed, 60*time.Second)
	require.Positive(t, faults.Load())
	require.Len(t, rc.got(), 6, "1 + WEBHOOK_MAX_RETRIES attempts reached the merchant")
	require.Equal(t, 6, row.Attempts)
	require.Equal(t, 6, b.count(`SELECT count(*) FROM webhook_delivery_attempts WHERE delivery_id = $1`, id))
}

// Issue 18's second defect: after a failed ledger write the job ran again
// after River's 1 s fallback and POSTed at once, instead of 2^(n-1) s after
// the attempt. The attempt is now written on the next run, and the next
// POST keeps its due time.
func TestDeliveryFailedLedgerWriteKeepsTheSchedule(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, respondStatus(http.StatusInternalServerError))
	m, _ := b.merchant(rc.URL)
	id := b.emit(m)
	var records atomic.Int64
	var mu sync.Mutex
	var faultAt time.Time
	cfg := testConfig()
	cfg.RetryBaseDelay = 300 * time.Millisecond // attempt 3's retry is due 1.2 s later: past River's 1 s fallback
	cfg.faultFunc = func(point string) error {
		if point == faultRecord && records.Add(1) == 3 {
			mu.Lock()
			faultAt = time.Now()
			mu.Unlock()
			return fmt.Errorf("committing: %w", io.ErrUnexpectedEOF)
		}
		return nil
	}
	b.start(cfg)

	row := b.waitStatus(id, db.DeliveryFailed, 60*time.Second)
	got := rc.got()
	require.Len(t, got, 6, "the attempt whose write failed counts once")
	require.Equal(t, 6, row.Attempts)
	require.Equal(t, []int{1, 2, 3, 4, 5, 6}, b.ints(`SELECT attempt FROM webhook_delivery_attempts WHERE delivery_id = $1 ORDER BY id`, id))
	mu.Lock()
	require.False(t, faultAt.IsZero())
	mu.Unlock()
	for i := 1; i < len(got); i++ {
		delay := cfg.retryDelay(i)
		require.GreaterOrEqual(t, got[i].at.Sub(got[i-1].at), delay, "attempt %d came before its due time", i+1)
	}
}

func (b *testBundle) ints(query string, args ...any) []int {
	b.t.Helper()
	rows, err := b.pool.Query(context.Background(), query, args...)
	require.NoError(b.t, err)
	defer rows.Close()
	var out []int
	for rows.Next() {
		var n int
		require.NoError(b.t, rows.Scan(&n))
		out = append(out, n)
	}
	require.NoError(b.t, rows.Err())
	return out
}
