package jobs

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// testBundle is a fresh database, a store on it, and (once started) a River
// client working every job.
type testBundle struct {
	t      *testing.T
	pool   *pgxpool.Pool
	store  *db.Store
	client *river.Client[pgx.Tx]
}

// testConfig is fast: 10 ms base retry delay, 1 s attempt timeout, private
// addresses allowed (httptest servers are on 127.0.0.1), no recovery tail
// (the tests of the tail set one).
func testConfig() Config {
	return Config{
		RecoverySchedule:     []time.Duration{},
		RetryBaseDelay:       10 * time.Millisecond,
		WebhookTimeout:       time.Second,
		AllowPrivateNetworks: true,
		SweepInterval:        time.Hour, // tests that sweep set it
	}
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	store := dbtest.Store(t)
	return &testBundle{t: t, pool: store.Pool, store: store}
}

// start starts a River client with cfg and stops it when the test ends.
func (b *testBundle) start(cfg Config) *river.Client[pgx.Tx] {
	b.t.Helper()
	return b.startWith(cfg, testLogger(b.t))
}

// startLogged starts a client whose attempt log lines go to log.
func (b *testBundle) startLogged(cfg Config, log *attemptLog) *river.Client[pgx.Tx] {
	b.t.Helper()
	return b.startWith(cfg, slog.New(log))
}

func (b *testBundle) startWith(cfg Config, log *slog.Logger) *river.Client[pgx.Tx] {
	b.t.Helper()
	client, err := NewClient(b.store, log, cfg)
	require.NoError(b.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(b.t, client.Start(ctx))
	b.t.Cleanup(func() {
		stopCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
		defer stop()
		_ = client.StopAndCancel(stopCtx)
		cancel()
	})
	b.client = client
	return client
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// attemptLog is a slog.Handler that keeps the worker's "webhook attempt"
// lines: outcome and failure reason, the labels metrics use.
type attemptLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *attemptLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *attemptLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *attemptLog) WithGroup(string) slog.Handler            { return l }

func (l *attemptLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "webhook attempt" {
		return nil
	}
	var outcome, reason string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "outcome":
			outcome = a.Value.String()
		case "reason":
			reason = a.Value.String()
		}
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimSuffix(outcome+"/"+reason, "/"))
	return nil
}

func (l *attemptLog) outcomes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// merchant creates a merchant with url as its endpoint and returns it with its secret.
func (b *testBundle) merchant(url string) (*db.Merchant, string) {
	b.t.Helper()
	nm, err := b.store.MerchantCreate(context.Background(), "Merchant "+uuid.NewString()[:8], url)
	require.NoError(b.t, err)
	var secret string
	if nm.Merchant.WebhookSecret != nil {
		secret = *nm.Merchant.WebhookSecret
	}
	return nm.Merchant, secret
}

// rotate rotates m's default endpoint secret with grace and returns the new secret.
func (b *testBundle) rotate(m *db.Merchant, grace time.Duration) string {
	b.t.Helper()
	e, err := b.store.EndpointGetDefault(context.Background(), m.ID)
	require.NoError(b.t, err)
	e, err = b.store.EndpointRotateSecret(context.Background(), m.ID, e.ID, grace)
	require.NoError(b.t, err)
	return e.NewSecret
}

// emit records a webhook.test event for m and returns its delivery's id.
func (b *testBundle) emit(m *db.Merchant) uuid.UUID {
	b.t.Helper()
	e, err := b.store.EventEmit(context.Background(), m.ID, "webhook.test", map[string]string{"hello": "world"})
	require.NoError(b.t, err)
	var id uuid.UUID
	require.NoError(b.t, b.pool.QueryRow(context.Background(),
		`SELECT id FROM webhook_deliveries WHERE event_id = $1`, e.ID).Scan(&id))
	return id
}

// ledgerRow is the webhook_deliveries row as operators read it.
type ledgerRow struct {
	Status         string
	Attempts       int
	HTTPStatusCode *int
	ErrorMessage   *string
	DeliveredAt    *time.Time
	NextRetryAt    *time.Time
	JobID          *int64
	Payload        []byte
	EventID        uuid.UUID
}

func (b *testBundle) ledger(id uuid.UUID) ledgerRow {
	b.t.Helper()
	var r ledgerRow
	require.NoError(b.t, b.pool.QueryRow(context.Background(), `SELECT status, attempts, http_status_code,
			error_message, delivered_at, next_retry_at, job_id, payload, event_id
		FROM webhook_deliveries WHERE id = $1`, id).
		Scan(&r.Status, &r.Attempts, &r.HTTPStatusCode, &r.ErrorMessage, &r.DeliveredAt, &r.NextRetryAt, &r.JobID, &r.Payload, &r.EventID))
	return r
}

// waitStatus waits until the delivery's ledger row has status.
func (b *testBundle) waitStatus(id uuid.UUID, status string, within time.Duration) ledgerRow {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := b.ledger(id)
		if r.Status == status {
			return r
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("delivery %s: status %s after %s, want %s (attempts %d, error %v)",
				id, r.Status, within, status, r.Attempts, deref(r.ErrorMessage))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (b *testBundle) count(query string, args ...any) int {
	b.t.Helper()
	return dbtest.Count(b.t, b.pool, query, args...)
}

func (b *testBundle) jobState(jobID int64) string {
	b.t.Helper()
	var state string
	require.NoError(b.t, b.pool.QueryRow(context.Background(), `SELECT state FROM river_job WHERE id = $1`, jobID).Scan(&state))
	return state
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// receiver is a merchant endpoint: it records every request and answers
// with respond (200 when nil).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*received
	respond  func(n int, w http.ResponseWriter, r *http.Request) // n counts from 1
}

type received struct {
	at     time.Time
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.requests = append(rc.requests, &received{at: at, header: r.Header.Clone(), body: body})
		n := len(rc.requests)
		rc.mu.Unlock()
		if rc.respond != nil {
			rc.respond(n, w, r)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() []*received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]*received(nil), rc.requests...)
}

func respondStatus(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// respondFrom answers fail to every request before the nth, then ok.
func respondFrom(nth, fail, ok int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		if n < nth {
			w.WriteHeader(fail)
			return
		}
		w.WriteHeader(ok)
	}
}

// respondWhenHealthy answers fail until healthy is set, then 200.
func respondWhenHealthy(healthy *atomic.Bool, fail int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		if healthy.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(fail)
	}
}

// The signatures are checked by this independent implementation of the two signature schemes (docs/WEBHOOKS.md),
// not by package signing.

func legacySignature(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func standardSignature(secret, id, timestamp string, body []byte) string {
	key := []byte(secret)
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		decoded, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			panic(err)
		}
		key = decoded
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestDeliverySendsSignedPayload(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"received":true}`))
	})
	m, secret := b.merchant(rc.URL + "/hooks")
	require.True(t, strings.HasPrefix(secret, "whsec_"))
	id := b.emit(m)
	b.start(testConfig())

	row := b.waitStatus(id, db.DeliverySucceeded, 10*time.Second)
	require.Equal(t, 1, row.Attempts)
	require.Equal(t, 200, *row.HTTPStatusCode)
	require.Nil(t, row.ErrorMessage)
	require.NotNil(t, row.DeliveredAt)
	require.Nil(t, row.NextRetryAt)
	require.Eventually(t, func() bool { return b.jobState(*row.JobID) == "completed" },
		10*time.Second, 10*time.Millisecond, "River completes the job after the ledger commit")

	got := rc.got()
	require.Len(t, got, 1)
	r := got[0]
	var eventPayload []byte
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT payload FROM events WHERE id = $1`, row.EventID).Scan(&eventPayload))
	require.Equal(t, string(eventPayload), string(r.body), "the body is the stored payload, byte for byte")
	require.Equal(t, string(row.Payload), string(r.body))

	h := r.header
	require.Equal(t, "application/json", h.Get("Content-Type"))
	require.Equal(t, "BoohPay-Webhooks/1.0", h.Get("User-Agent"))
	require.Equal(t, "webhook.test", h.Get("X-BoohPay-Event"))
	require.Equal(t, id.String(), h.Get("X-BoohPay-Delivery"))
	require.Equal(t, row.EventID.String(), h.Get("webhook-id"))
	ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	require.NoError(t, err)
	require.InDelta(t, time.Now().Unix(), ts, 60)
	require.Equal(t, legacySignature(secret, r.body), h.Get("X-BoohPay-Signature"))
	require.Equal(t, standardSignature(secret, h.Get("webhook-id"), h.Get("webhook-timestamp"), r.body), h.Get("webhook-signature"))

	var attempt, status, durationMS int
	var body string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT attempt, status_code, duration_ms, response_body
		FROM webhook_delivery_attempts WHERE delivery_id = $1`, id).Scan(&attempt, &status, &durationMS, &body))
	require.Equal(t, 1, attempt)
	require.Equal(t, 200, status)
	require.GreaterOrEqual(t, durationMS, 0)
	require.Equal(t, `{"received":true}`, body)
}

// An attempt still in flight after a second is marked PROCESSING, with
// last_attempt_at its start, so operators see what a slow endpoint holds;
// its outcome then replaces the mark.
func TestDeliverySlowAttemptIsMarkedProcessing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	answer := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(answer) }) }
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		<-answer
		w.WriteHeader(http.StatusOK)
	})
	t.Cleanup(release) // before the receiver's Close, which waits for the handler
	m, _ := b.merchant(rc.URL)
	id := b.emit(m)
	cfg := testConfig()
	cfg.WebhookTimeout = time.Minute // the attempt is in flight until the test answers
	b.start(cfg)

	b.waitStatus(id, db.DeliveryProcessing, 30*time.Second)
	got := rc.got()
	require.Len(t, got, 1, "marked while its one attempt is in flight")
	var last time.Time
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT last_attempt_at FROM webhook_deliveries WHERE id = $1`, id).Scan(&last))
	require.False(t, last.After(got[0].at), "last_attempt_at %v is the attempt's start, before its arrival %v", last, got[0].at)
	release()
	row := b.waitStatus(id, db.DeliverySucceeded, 30*time.Second)
	require.Equal(t, 1, row.Attempts)
}

func TestDeliveryOperatorSecretAndURLBySQL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	m, _ := b.merchant("")
	// The old service's operator statement, verbatim but for the URL and id.
	_, err := b.pool.Exec(context.Background(), `UPDATE merchants SET webhook_url = '`+rc.URL+`/webhooks', webhook_secret = 'secret-key' WHERE id = '`+m.ID.String()+`'`)
	require.NoError(t, err)
	id := b.emit(m)
	b.start(testConfig())

	b.waitStatus(id, db.DeliverySucceeded, 10*time.Second)
	r := rc.got()[0]
	require.Equal(t, legacySignature("secret-key", r.body), r.header.Get("X-BoohPay-Signature"))
	// A plain secret's own bytes are the Standard Webhooks key.
	mac := hmac.New(sha256.New, []byte("secret-key"))
	mac.Write([]byte(r.header.Get("webhook-id") + "." + r.header.Get("webhook-timestamp") + "." + string(r.body)))
	require.Equal(t, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)), r.header.Get("webhook-signature"))
}

func TestDeliveryRotationSignsWithBothSecrets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	m, oldSecret := b.merchant(rc.URL)
	newSecret := b.rotate(m, 24*time.Hour)
	require.NotEqual(t, oldSecret, newSecret)
	first := b.emit(m)
	b.start(testConfig())
	b.waitStatus(first, db.DeliverySucceeded, 10*time.Second)

	r := rc.got()[0]
	id, ts := r.header.Get("webhook-id"), r.header.Get("webhook-timestamp")
	require.Equal(t, standardSignature(newSecret, id, ts, r.body)+" "+standardSignature(oldSecret, id, ts, r.body),
		r.header.Get("webhook-signature"), "during the grace period both secrets sign, the new one first")
	require.Equal(t, legacySignature(oldSecret, r.body), r.header.Get("X-BoohPay-Signature"),
		"the old single-valued header stays on the previous secret until the grace period ends")

	// Once the grace period is over only the new secret signs.
	_, err := b.pool.Exec(context.Background(), `UPDATE merchants SET previous_webhook_secret_expires_at = now() - interval '1 second' WHERE id = $1`, m.ID)
	require.NoError(t, err)
	second := b.emit(m)
	b.waitStatus(second, db.DeliverySucceeded, 10*time.Second)
	r = rc.got()[1]
	id, ts = r.header.Get("webhook-id"), r.header.Get("webhook-timestamp")
	require.Equal(t, standardSignature(newSecret, id, ts, r.body), r.header.Get("webhook-signature"))
	require.Equal(t, legacySignature(newSecret, r.body), r.header.Get("X-BoohPay-Signature"))
}

func TestDeliveryUsesCurrentEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	old := newReceiver(t, respondStatus(http.StatusServiceUnavailable))
	current := newReceiver(t, nil)
	m, _ := b.merchant(old.URL)
	id := b.emit(m)
	cfg := testConfig()
	cfg.RetryBaseDelay = 300 * time.Millisecond
	b.start(cfg)
	require.Eventually(t, func() bool { return len(old.got()) == 1 }, 10*time.Second, 5*time.Millisecond)
	// The merchant moves its endpoint before the retry: the retry goes to
	// the URL as it is now, not as it was at event time.
	_, err := b.store.EndpointSetDefaultURL(context.Background(), m.ID, current.URL)
	require.NoError(t, err)
	row := b.waitStatus(id, db.DeliverySucceeded, 10*time.Second)
	require.Equal(t, 2, row.Attempts)
	require.Len(t, old.got(), 1)
	require.Len(t, current.got(), 1)
}

func TestDeliveryFailsAfterExactlySixAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("boom\x00\xff"))
	})
	m, _ := b.merchant(rc.URL)
	id := b.emit(m)
	b.start(testConfig())

	row := b.waitStatus(id, db.DeliveryFailed, 20*time.Second)
	require.Equal(t, 6, row.Attempts)
	require.Equal(t, 500, *row.HTTPStatusCode)
	require.Equal(t, "HTTP 500", *row.ErrorMessage)
	require.Nil(t, row.NextRetryAt)
	require.Nil(t, row.DeliveredAt)
	// River finalizes the job just after the ledger commit.
	require.Eventually(t, func() bool { return b.jobState(*row.JobID) == "cancelled" }, time.Minute, 10*time.Millisecond,
		"River does not run a FAILED delivery's job again")

	// Give a 7th attempt every chance to (wrongly) happen.
	time.Sleep(300 * time.Millisecond)
	got := rc.got()
	require.Len(t, got, 6)
	for _, r := range got {
		require.Equal(t, got[0].body, r.body, "the body is identical on every attempt")
		require.Equal(t, got[0].header.Get("webhook-id"), r.header.Get("webhook-id"))
	}
	rows, err := b.pool.Query(context.Background(), `SELECT attempt, status_code, error, response_body
		FROM webhook_delivery_attempts WHERE delivery_id = $1 ORDER BY id`, id)
	require.NoError(t, err)
	type attemptRow struct {
		Attempt    int
		StatusCode int
		Error      string
		Body       string
	}
	attempts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[attemptRow])
	require.NoError(t, err)
	require.Len(t, attempts, 6)
	for i, a := range attempts {
		require.Equal(t, attemptRow{i + 1, 500, "HTTP 500", "boom\uFFFD"}, a)
	}
}

func TestDeliveryRetriesUntilSuccess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, respondFrom(3, http.StatusBadGateway, http.StatusNoContent))
	m, _ := b.merchant(rc.URL)
	id := b.emit(m)
	b.start(testConfig())

	row := b.waitStatus(id, db.DeliverySucceeded, 10*time.Second)
	require.Equal(t, 3, row.Attempts)
	require.Equal(t, 204, *row.HTTPStatusCode)
	require.Nil(t, row.ErrorMessage, "success clears the last error")
	require.Equal(t, 3, b.count(`SELECT count(*) FROM webhook_delivery_attempts WHERE delivery_id = $1`, id))
	require.Equal(t, 2, b.count(`SELECT count(*) FROM webhook_delivery_attempts WHERE delivery_id = $1 AND error = 'HTTP 502'`, id))
}

func TestDeliveryFailureClasses(t *testing.T) {
	t.Parallel()
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })

	tests := []struct {
		name string
		// endpoint returns the URL to deliver to and the receiver whose
		// requests to count (nil: none).
		endpoint     func(t *testing.T) (string, *receiver)
		allowPrivate bool
		wantHits     int
		wantStatus   *int
		wantError    string
		wantReason   string
	}{
		{"5xx", answering(http.StatusServiceUnavailable), true, 1, ptr(503), "HTTP 503", reasonHTTPStatus},
		{"4xx", answering(http.StatusNotFound), true, 1, ptr(404), "HTTP 404", reasonHTTPStatus},
		{"3xx is not followed", func(t *testing.T) (string, *receiver) {
			target := newReceiver(t, nil)
			return newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL, http.StatusFound)
			}).URL, target
		}, true, 0, ptr(302), "HTTP 302: redirects are not followed", reasonRedirect},
		{"refused connection", func(t *testing.T) (string, *receiver) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			addr := ln.Addr().String()
			require.NoError(t, ln.Close())
			return "http://" + addr, nil
		}, true, 0, nil, "connection refused", reasonConnection},
		{"timeout", func(t *testing.T) (string, *receiver) {
			rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				select {
				case <-hang:
				case <-r.Context().Done():
				}
			})
			return rc.URL, rc
		}, true, 1, nil, "no response within 1s", reasonTimeout},
		{"DNS failure", func(*testing.T) (string, *receiver) {
			return "http://does-not-exist.invalid/hooks", nil
		}, true, 0, nil, "no such host", reasonConnection},
		{"blocked address", answering(http.StatusOK), false, 0, nil, "blocked: ", reasonBlocked},
		{"blocked name", func(t *testing.T) (string, *receiver) {
			url, rc := answering(http.StatusOK)(t)
			return strings.Replace(url, "127.0.0.1", "localhost", 1), rc
		}, false, 0, nil, "blocked: ", reasonBlocked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			m, _ := b.merchant("")
			url, counted := tt.endpoint(t)
			// Set by SQL: the set-time check would refuse the blocked ones.
			_, err := b.pool.Exec(context.Background(), `UPDATE merchants SET webhook_url = $2, webhook_secret = 'secret-key' WHERE id = $1`, m.ID, url)
			require.NoError(t, err)
			id := b.emit(m)
			cfg := testConfig()
			cfg.WebhookMaxRetries = -1 // one attempt: the failure is final
			cfg.AllowPrivateNetworks = tt.allowPrivate
			if tt.wantReason != reasonTimeout {
				// A failure of its own must come before our timeout, however
				// slow a loaded machine answers, resolves or connects.
				cfg.WebhookTimeout = time.Minute
			}
			attempts := &attemptLog{}
			b.startLogged(cfg, attempts)

			row := b.waitStatus(id, db.DeliveryFailed, 2*time.Minute)
			require.Equal(t, 1, row.Attempts)
			require.Equal(t, tt.wantStatus, row.HTTPStatusCode)
			require.Contains(t, *row.ErrorMessage, tt.wantError)
			require.Equal(t, 1, b.count(`SELECT count(*) FROM webhook_delivery_attempts WHERE delivery_id = $1 AND error = $2`, id, *row.ErrorMessage))
			// Logged just after the ledger commit.
			require.Eventually(t, func() bool { return len(attempts.outcomes()) > 0 }, time.Minute, 5*time.Millisecond)
			require.Equal(t, []string{outcomeFailed + "/" + tt.wantReason}, attempts.outcomes())
			if counted != nil {
				require.Len(t, counted.got(), tt.wantHits)
			}
		})
	}
}

// answering is an endpoint that answers code.
func answering(code int) func(t *testing.T) (string, *receiver) {
	return func(t *testing.T) (string, *receiver) {
		rc := newReceiver(t, respondStatus(code))
		return rc.URL, rc
	}
}

func ptr[T any](v T) *T { return &v }
