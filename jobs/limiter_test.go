package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestRetryDelayDoublesFromTheBaseUpTo60s(t *testing.T) {
	t.Parallel()
	cfg := Config{}.withDefaults()
	var got []time.Duration
	for n := 1; n <= 8; n++ {
		got = append(got, cfg.retryDelay(n))
	}
	s := time.Second
	require.Equal(t, []time.Duration{1 * s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 60 * s, 60 * s}, got)
	require.Equal(t, 60*s, cfg.retryDelay(1000))
	cfg.RetryBaseDelay = 10 * time.Millisecond
	require.Equal(t, 160*time.Millisecond, cfg.retryDelay(5))
}

func TestHopNeverAsksRiverForMoreThanItMakesAvailable(t *testing.T) {
	t.Parallel()
	for wait, want := range map[time.Duration]time.Duration{
		-time.Second:           0,
		500 * time.Millisecond: 500 * time.Millisecond,
		4 * time.Second:        4 * time.Second,
		8 * time.Second:        4 * time.Second,
		16 * time.Second:       4 * time.Second,
		30 * time.Second:       4 * time.Second,
		time.Minute:            50 * time.Second, // via River's scheduler, then hops
	} {
		require.Equal(t, want, hop(wait), "wait %s", wait)
	}
}

func TestMerchantLimiterCapsEachMerchant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	woken := make(chan []int64, 10)
	l := newMerchantLimiter(2, 10*time.Second, func(ids []int64) { woken <- ids })
	a, other := uuid.New(), uuid.New()

	r1, _ := l.acquire(ctx, a, 1)
	r2, _ := l.acquire(ctx, a, 2)
	require.NotNil(t, r1)
	require.NotNil(t, r2)
	// A fast merchant at its cap: the third waits slotWait, then snoozes.
	r3, snooze := l.acquire(ctx, a, 3)
	require.Nil(t, r3)
	require.GreaterOrEqual(t, snooze, snoozeMin)
	require.Less(t, snooze, time.Second)
	// Other merchants are not affected.
	r4, _ := l.acquire(ctx, other, 4)
	require.NotNil(t, r4)
	r4(time.Millisecond)

	// An attempt in flight for 8 s makes the merchant slow: its next job
	// snoozes at once, for about the timeout (a freed slot wakes it sooner).
	l.mu.Lock()
	for k := range l.byID[a].started {
		l.byID[a].started[k] = time.Now().Add(-8 * time.Second)
	}
	l.mu.Unlock()
	r5, snooze := l.acquire(ctx, a, 5)
	require.Nil(t, r5)
	require.GreaterOrEqual(t, snooze, 10*time.Second)
	require.LessOrEqual(t, snooze, 10*time.Second*3/2, "the timeout, plus jitter")

	// A slow attempt ends: one slot, one woken job, the oldest queued.
	r1(8 * time.Second)
	require.Equal(t, []int64{3}, <-woken)
	// The woken job takes the slot; job 5 still waits.
	r3, _ = l.acquire(ctx, a, 3)
	require.NotNil(t, r3)
	// A quick answer: the endpoint is back. The estimate is the last
	// attempt, not an average that would keep it "slow" for a while.
	r2(time.Millisecond)
	require.Equal(t, []int64{5}, <-woken)
	r5, _ = l.acquire(ctx, a, 5)
	require.NotNil(t, r5)
	r3(time.Millisecond)
	r5(time.Millisecond)
	require.Empty(t, woken)
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Empty(t, l.byID, "idle merchants are forgotten")
}
