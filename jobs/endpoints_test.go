package jobs

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
)

// endpoint adds an endpoint to m with a filter and returns it (its secret in NewSecret).
func (b *testBundle) endpoint(m *db.Merchant, url string, events ...string) *db.Endpoint {
	b.t.Helper()
	var e *db.Endpoint
	require.NoError(b.t, b.store.InTx(context.Background(), func(tx pgx.Tx) error {
		var err error
		e, err = b.store.EndpointCreateTx(context.Background(), tx, m.ID, db.EndpointParams{URL: url, EnabledEvents: events})
		return err
	}))
	return e
}

// emitType records an event of typ for m and returns its id.
func (b *testBundle) emitType(m *db.Merchant, typ string) uuid.UUID {
	b.t.Helper()
	e, err := b.store.EventEmit(context.Background(), m.ID, typ, map[string]string{"object": "test"})
	require.NoError(b.t, err)
	return e.ID
}

// eventIDs returns the distinct webhook-id values rc received with a 2xx answer.
func (rc *receiver) eventIDs() map[string]int {
	out := map[string]int{}
	for _, r := range rc.got() {
		out[r.header.Get("webhook-id")]++
	}
	return out
}

// Done-when: an endpoint that is down (here 2 s of a test-sized schedule,
// standing for 10 minutes of the real one) under live traffic gets every
// event once it is back, with nobody acting: the fast cycle fails, the
// deliveries stay FAILED with next_retry_at, and the sweep's recovery
// attempts deliver them.
func TestDeliveryRecoveryTailDeliversAfterAnOutage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var down atomic.Bool
	down.Store(true)
	var okCount atomic.Int64
	okIDs := sync.Map{}
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		okIDs.Store(r.Header.Get("webhook-id"), true)
		okCount.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	m, _ := b.merchant(rc.URL)
	cfg := testConfig()
	cfg.RecoverySchedule = []time.Duration{300 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	cfg.SweepInterval = 100 * time.Millisecond
	b.start(cfg)

	// Live traffic: events keep coming while the endpoint is down.
	var events []uuid.UUID
	for i := 0; i < 40; i++ {
		events = append(events, b.emitType(m, db.EventPaymentSucceeded))
		time.Sleep(25 * time.Millisecond) // the traffic's pace, not a wait for a result
	}
	// Wait until every delivery's fast cycle is over: FAILED, with a
	// recovery attempt scheduled, as the ledger shows it between attempts.
	require.Eventually(t, func() bool {
		return b.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'FAILED' AND next_retry_at IS NOT NULL
			AND cycle_attempts = 6`) == len(events)
	}, 60*time.Second, 20*time.Millisecond)
	require.Zero(t, okCount.Load())

	down.Store(false) // the endpoint is back; nobody does anything
	require.Eventually(t, func() bool {
		return b.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'SUCCEEDED'`) == len(events)
	}, 60*time.Second, 20*time.Millisecond)
	for _, id := range events {
		_, ok := okIDs.Load(id.String())
		require.True(t, ok, "event %s reached the endpoint once it was back", id)
	}
	require.EqualValues(t, len(events), okCount.Load(), "each event delivered once after the outage")
	require.Zero(t, b.count(`SELECT count(*) FROM webhook_deliveries WHERE recovery_attempts = 0`),
		"every delivery came through a recovery attempt")
	require.Zero(t, b.count(`SELECT count(*) FROM webhook_endpoints WHERE failing_since IS NOT NULL`),
		"the success ended the endpoint's failure streak")
}

// A tail that runs out leaves the delivery FAILED for good (next_retry_at
// NULL); `off` is the old service's behaviour: FAILED after the fast cycle.
func TestDeliveryRecoveryTailEnds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, respondStatus(http.StatusInternalServerError))
	m, _ := b.merchant(rc.URL)
	id := b.emit(m)
	cfg := testConfig()
	cfg.WebhookMaxRetries = 1
	cfg.RecoverySchedule = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}
	cfg.SweepInterval = 50 * time.Millisecond
	b.start(cfg)
	require.Eventually(t, func() bool {
		r := b.ledger(id)
		return r.Status == db.DeliveryFailed && r.NextRetryAt == nil
	}, 30*time.Second, 10*time.Millisecond)
	require.Equal(t, 2+2, b.ledger(id).Attempts, "1 + 1 retry, then 2 recovery attempts")
	require.Len(t, rc.got(), 4)
}

// Done-when: two endpoints with different filters each receive exactly
// their events, and an endpoint for everything gets all of them.
func TestDeliveryFanOutByFilter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	payments := newReceiver(t, nil)
	payouts := newReceiver(t, nil)
	all := newReceiver(t, nil)
	m, _ := b.merchant(all.URL) // the default endpoint: ["*"]
	b.endpoint(m, payments.URL, db.EventPaymentSucceeded, db.EventPaymentFailed)
	b.endpoint(m, payouts.URL, db.EventPayoutSucceeded)
	disabled := b.endpoint(m, all.URL+"/disabled")
	_, err := b.store.EndpointPatch(context.Background(), m.ID, disabled.ID, db.EndpointUpdate{Disabled: ptr(true)})
	require.NoError(t, err)

	want := map[string][]uuid.UUID{}
	types := []string{db.EventPaymentSucceeded, db.EventPaymentFailed, db.EventPayoutSucceeded, db.EventPayoutFailed, db.EventPaymentPending}
	var every []uuid.UUID
	for i := 0; i < 20; i++ {
		typ := types[i%len(types)]
		id := b.emitType(m, typ)
		want[typ] = append(want[typ], id)
		every = append(every, id)
	}
	b.start(testConfig())
	require.Eventually(t, func() bool {
		return b.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'SUCCEEDED'`) == 20+8+4
	}, 30*time.Second, 10*time.Millisecond)

	idsOf := func(ids ...[]uuid.UUID) map[string]int {
		out := map[string]int{}
		for _, l := range ids {
			for _, id := range l {
				out[id.String()] = 1
			}
		}
		return out
	}
	require.Equal(t, idsOf(want[db.EventPaymentSucceeded], want[db.EventPaymentFailed]), payments.eventIDs())
	require.Equal(t, idsOf(want[db.EventPayoutSucceeded]), payouts.eventIDs())
	require.Equal(t, idsOf(every), all.eventIDs(), "the disabled endpoint got nothing, the default one everything")
	require.Zero(t, b.count(`SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1`, disabled.ID))
}

// Done-when: a rotation in the middle of traffic loses no delivery at
// either kind of receiver. The old receiver (the old service's code)
// compares X-BoohPay-Signature whole against the secret it knows, the old
// one; the new receiver verifies webhook-signature with the official
// standardwebhooks package and the new secret. Every delivery before,
// during and after the grace period is accepted at the first attempt by the
// receiver that is live at that time, and every delivery sent after the
// rotation verifies with the new secret.
func TestDeliveryRotationMidTrafficLosesNothing(t *testing.T) {
	t.Parallel()
	node := swverifyNode(t)
	b := setup(t)
	// The merchant's live receiver: the old code until the grace period
	// ends, then the new code. A rejection (401) would show as a second
	// attempt in the ledger.
	var mu sync.Mutex
	var oldSecret, newSecret string
	newCode := false
	var rc *receiver
	rc = newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		body := rc.got()[n-1].body
		mu.Lock()
		defer mu.Unlock()
		ok := r.Header.Get("X-BoohPay-Signature") == legacySignature(oldSecret, body)
		if newCode {
			want := standardSignature(newSecret, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), body)
			ok = slices.Contains(strings.Fields(r.Header.Get("webhook-signature")), want)
		}
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	m, secret := b.merchant(rc.URL)
	mu.Lock()
	oldSecret = secret
	mu.Unlock()
	b.start(testConfig())

	var sent []uuid.UUID
	emitSome := func(n int) {
		for i := 0; i < n; i++ {
			sent = append(sent, b.emitType(m, db.EventPaymentSucceeded))
		}
	}
	emitSome(10)
	rotated := b.rotate(m, 24*time.Hour) // mid-traffic: deliveries of the first batch may be in flight
	mu.Lock()
	newSecret = rotated
	mu.Unlock()
	afterRotation := len(sent) // the events from here on are signed after it
	emitSome(10)
	require.Eventually(t, func() bool {
		return b.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'SUCCEEDED'`) == len(sent)
	}, 30*time.Second, 10*time.Millisecond)
	// The merchant deploys the new code, and the grace period ends: the old
	// header moves to the new secret.
	mu.Lock()
	newCode = true
	mu.Unlock()
	_, err := b.pool.Exec(context.Background(), `UPDATE webhook_endpoints SET previous_secret_expires_at = now() WHERE merchant_id = $1`, m.ID)
	require.NoError(t, err)
	emitSome(10)
	require.Eventually(t, func() bool {
		return b.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'SUCCEEDED'`) == len(sent)
	}, 30*time.Second, 10*time.Millisecond)
	require.Equal(t, len(sent), b.count(`SELECT count(*) FROM webhook_delivery_attempts`), "one attempt each")

	got := rc.got()
	require.Len(t, got, len(sent))
	var cases []swverifyCase
	var want []any
	graceOver, rejected := 0, 0
	for _, r := range got {
		legacy := r.header.Get("X-BoohPay-Signature")
		switch legacy {
		case legacySignature(oldSecret, r.body):
			// The old receiver accepts it: the whole header is what it computes.
		case legacySignature(newSecret, r.body):
			graceOver++ // only after the grace period: the old receiver was replaced by then
		default:
			rejected++
		}
		if slices.Contains(sent[afterRotation:], uuid.MustParse(r.header.Get("webhook-id"))) {
			cases = append(cases, newSwverifyCase(newSecret, r))
			want = append(want, nil)
		}
	}
	require.Zero(t, rejected)
	require.Equal(t, 10, graceOver, "X-BoohPay-Signature moves to the new secret only when the grace period ends")
	require.Len(t, cases, 20)
	verified := swverify(t, node, cases)
	require.Equal(t, want, verified, "every delivery after the rotation verifies with the new secret")
}

// Endpoint health: a streak of failures spanning DisableAfter disables the
// endpoint; its unfinished deliveries end FAILED ("endpoint disabled"),
// new events are still recorded but not delivered. Re-enabling clears the
// streak, and recover delivers every event it missed, once.
func TestEndpointDisabledAsFailingThenRecovered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var healthy atomic.Bool
	rc := newReceiver(t, respondWhenHealthy(&healthy, http.StatusInternalServerError))
	m, _ := b.merchant(rc.URL)
	ep, err := b.store.EndpointGetDefault(context.Background(), m.ID)
	require.NoError(t, err)
	start := time.Now().Add(-time.Second)
	cfg := testConfig()
	cfg.RetryBaseDelay = 100 * time.Millisecond
	cfg.RecoverySchedule = []time.Duration{time.Hour} // the tail must not be what ends them
	cfg.DisableAfter = 500 * time.Millisecond
	b.start(cfg)

	var events []uuid.UUID
	for {
		events = append(events, b.emitType(m, db.EventPaymentSucceeded))
		e, err := b.store.EndpointGet(context.Background(), m.ID, ep.ID)
		require.NoError(t, err)
		if e.Status == db.EndpointDisabled {
			require.Equal(t, db.DisabledFailing, *e.DisabledReason)
			require.NotNil(t, e.FailingSince)
			break
		}
		require.Less(t, len(events), 2000, "the endpoint was never disabled")
		time.Sleep(20 * time.Millisecond) // the traffic's pace
	}
	// Its queued deliveries stop: FAILED, no attempt left. An attempt that
	// was already on its way when the endpoint was disabled still ends (and
	// its answer is recorded as it came): wait until no delivery job runs,
	// so what follows counts only what re-enabling and recover cause.
	require.Eventually(t, func() bool {
		return b.count(`SELECT count(*) FROM webhook_deliveries WHERE status <> 'FAILED' OR next_retry_at IS NOT NULL`) == 0 &&
			b.count(`SELECT count(*) FROM river_job WHERE kind = $1 AND state = 'running'`, db.DeliveryArgs{}.Kind()) == 0
	}, time.Minute, 10*time.Millisecond)
	require.Positive(t, b.count(`SELECT count(*) FROM webhook_deliveries WHERE error_message = 'endpoint disabled'`))
	// New events are recorded, without a delivery.
	late := b.emitType(m, db.EventPaymentSucceeded)
	events = append(events, late)
	require.Zero(t, b.count(`SELECT count(*) FROM webhook_deliveries WHERE event_id = $1`, late))
	attemptsBefore := len(rc.got())

	healthy.Store(true)
	e, err := b.store.EndpointPatch(context.Background(), m.ID, ep.ID, db.EndpointUpdate{Disabled: ptr(false)})
	require.NoError(t, err)
	require.Equal(t, db.EndpointEnabled, e.Status)
	require.Nil(t, e.DisabledReason)
	require.Nil(t, e.FailingSince, "re-enabling clears the failure streak")
	require.Len(t, rc.got(), attemptsBefore, "re-enabling resends nothing by itself")

	r, err := b.store.EndpointRecover(context.Background(), m.ID, ep.ID, start, time.Now().Add(time.Second))
	require.NoError(t, err)
	require.Equal(t, len(events), r.Deliveries)
	require.Eventually(t, func() bool {
		return b.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'SUCCEEDED'`) == len(events)
	}, 30*time.Second, 10*time.Millisecond)
	delivered := map[string]int{}
	for _, got := range rc.got()[attemptsBefore:] {
		delivered[got.header.Get("webhook-id")]++
	}
	require.Len(t, delivered, len(events))
	for _, id := range events {
		require.Equal(t, 1, delivered[id.String()], "event %s delivered once", id)
	}
	// A second recover finds nothing left to deliver.
	r, err = b.store.EndpointRecover(context.Background(), m.ID, ep.ID, start, time.Now().Add(time.Second))
	require.NoError(t, err)
	require.Zero(t, r.Deliveries)
}
