package main

// The harness the reliability tests share (crash_test.go, shutdown_load_test.go,
// pgrestart_test.go, replicas_test.go): the real binary as a child process,
// a merchant endpoint that counts what it receives, a load of status changes,
// and the end-to-end check that every committed event was delivered.
//
// Each test has a short version, run by plain `go test` (and `make test`),
// and a long one run by `make soak` (BOOHPAY_SOAK=1). Bounds on waits are
// "does not hang" bounds, generous for a loaded 2-core machine; nothing here
// asserts speed.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db/dbtest"
)

// soakEnv selects the long versions (make soak).
const soakEnv = "BOOHPAY_SOAK"

func soaking() bool { return os.Getenv(soakEnv) != "" }

// pick returns short under plain go test and long under make soak.
func pick[T any](short, long T) T {
	if soaking() {
		return long
	}
	return short
}

// reportFigures logs a test's figures and, when BOOHPAY_FIGURES names a file
// (make soak sets it), appends them there as one line, for docs/RELIABILITY.md.
func reportFigures(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf("%s: %s", t.Name(), fmt.Sprintf(format, args...))
	t.Log(line)
	path := os.Getenv("BOOHPAY_FIGURES")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Logf("writing figures: %v", err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s\n", time.Now().UTC().Format(time.RFC3339), line)
}

// child is `boohpay serve` running as a child process.
type child struct {
	cmd    *exec.Cmd
	logs   *dbtest.Logs
	base   string // http://host:port once it listens
	exited chan struct{}
	err    error // Wait's result, once exited is closed
}

// startChild starts the binary with exactly env and waits until it answers
// /healthz (ROLE=worker: until its workers started).
func startChild(t *testing.T, env []string) *child {
	t.Helper()
	c := startChildNoWait(t, env)
	worker := false
	for _, kv := range env {
		worker = worker || kv == "ROLE=worker"
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-c.exited:
			t.Fatalf("serve exited during start-up: %v\nlog:\n%s", c.err, c.logs)
		default:
		}
		if worker {
			if c.logs.Msg("workers started") != nil {
				return c
			}
		} else if line := c.logs.Msg("listening"); line != nil {
			base := "http://" + line["addr"].(string)
			if res, err := http.Get(base + "/healthz"); err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					c.base = base
					return c
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start within 60 s; log:\n%s", c.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startChildNoWait starts the binary and returns at once.
func startChildNoWait(t *testing.T, env []string) *child {
	t.Helper()
	cmd, _, _ := command(t, env, "serve")
	c := &child{cmd: cmd, logs: &dbtest.Logs{}, exited: make(chan struct{})}
	cmd.Stderr = c.logs
	require.NoError(t, cmd.Start())
	go func() { c.err = cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.exited
	})
	return c
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the process outlived SIGKILL by 30 s")
	}
}

// terminate sends SIGTERM and returns the exit error (nil for exit 0); it
// fails the test if the process is still there after within.
func (c *child) terminate(t *testing.T, within time.Duration) error {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-c.exited:
		return c.err
	case <-time.After(within):
		t.Fatalf("no exit %s after SIGTERM; log:\n%s", within, c.logs)
		return nil
	}
}

// baseEnv is the environment every reliability child runs with.
func baseEnv(databaseURL string, extra ...string) []string {
	return append([]string{
		"DATABASE_URL=" + databaseURL,
		"HTTP_ADDR=127.0.0.1:0",
		"LOG_FORMAT=json",
		"WEBHOOK_ALLOW_PRIVATE_NETWORKS=true", // the endpoint is an httptest server on 127.0.0.1
		"RATE_LIMIT=0",                        // the load drives one key as fast as the service answers
	}, extra...)
}

// sink is a merchant's webhook endpoint. It checks each delivery's
// X-BoohPay-Signature (independently of package signing), counts receipts
// per event id (webhook-id), and answers 200 after a short random delay so
// that deliveries are in flight whenever the service is killed.
type sink struct {
	*httptest.Server
	secret   atomic.Pointer[string]
	maxDelay time.Duration
	// hold, when set, decides per request how long to hold it (overrides maxDelay).
	hold func() time.Duration
	// down makes the endpoint answer 503 to everything (an outage).
	down atomic.Bool

	mu       sync.Mutex
	received map[string]int // webhook-id → receipts
	badSig   int
	total    int
}

func newSink(t *testing.T, maxDelay time.Duration) *sink {
	s := &sink{maxDelay: maxDelay, received: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if s.down.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	delay := time.Duration(0)
	if s.hold != nil {
		delay = s.hold()
	} else if s.maxDelay > 0 {
		delay = time.Duration(rand.Int64N(int64(s.maxDelay)))
	}
	select {
	case <-time.After(delay):
	case <-r.Context().Done():
		return // the worker gave up (or died): not a receipt
	}
	ok := true
	if secret := s.secret.Load(); secret != nil {
		mac := hmac.New(sha256.New, []byte(*secret))
		mac.Write(body)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		ok = false
		for _, sig := range strings.Fields(r.Header.Get("X-BoohPay-Signature")) {
			ok = ok || hmac.Equal([]byte(sig), []byte(want))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		s.badSig++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	s.total++
	s.received[r.Header.Get("webhook-id")]++
	w.WriteHeader(http.StatusOK)
}

// counts returns the receipts per event id, the total, and how many
// deliveries carried a bad signature.
func (s *sink) counts() (map[string]int, int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.received))
	for k, v := range s.received {
		out[k] = v
	}
	return out, s.total, s.badSig
}

// newMerchant creates a merchant whose endpoint is the sink, through the
// CLI, and returns its API key; the sink learns the signing secret.
func newMerchant(t *testing.T, databaseURL string, s *sink) string {
	t.Helper()
	out, err := runCmd(t, map[string]string{"DATABASE_URL": databaseURL, "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true"},
		"merchant", "create", "--name", "Reliability", "--webhook-url", s.URL+"/hooks")
	require.NoError(t, err)
	var nm struct {
		APIKey        string `json:"api_key"`
		WebhookSecret string `json:"webhook_secret"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &nm))
	s.secret.Store(&nm.WebhookSecret)
	return nm.APIKey
}

// load drives status changes through the API: each worker creates a sandbox
// payment or payout and walks it through a random legal path with
// /simulate (and /cancel). Errors (the service is down, restarting, or its
// database is) are counted and the worker moves on.
type load struct {
	key    string
	bases  []*atomic.Pointer[string] // the services to spread requests over
	client *http.Client

	ok, failed atomic.Int64
	// statusCodes counts answers by HTTP status.
	mu          sync.Mutex
	statusCodes map[int]int
	// onAnswer, when set, sees every answer (pgrestart checks its shape).
	onAnswer func(code int, body []byte, took time.Duration)
}

func newLoad(key string, bases ...*atomic.Pointer[string]) *load {
	return &load{
		key:         key,
		bases:       bases,
		client:      &http.Client{Timeout: 30 * time.Second}, // a hang shows as an error, not a stuck test
		statusCodes: map[int]int{},
	}
}

// run runs workers until ctx ends and returns once they all stopped.
func (l *load) run(ctx context.Context, workers int) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				l.walk(ctx, i+n)
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// Legal paths from PENDING (db/transition.go's moves).
var (
	paymentPaths = [][]string{
		{"AUTHORIZED", "SUCCEEDED", "REFUNDED"},
		{"SUCCEEDED"},
		{"FAILED"},
		{"AUTHORIZED", "CANCELLED"},
		{"cancel"},
	}
	payoutPaths = [][]string{
		{"PROCESSING", "SUCCEEDED"},
		{"FAILED"},
		{"PROCESSING", "FAILED"},
	}
)

func (l *load) walk(ctx context.Context, n int) {
	base := l.bases[n%len(l.bases)].Load()
	if base == nil {
		time.Sleep(20 * time.Millisecond)
		return
	}
	kind, create, path := "payments", `{"amount":5000,"currency":"XAF","gateway":"sandbox"}`, paymentPaths[rand.IntN(len(paymentPaths))]
	if n%4 == 3 {
		kind, create, path = "payouts", `{"amount":2500,"currency":"XOF","provider":"sandbox","recipient":{"phone":"+221700000000"}}`, payoutPaths[rand.IntN(len(payoutPaths))]
	}
	code, body := l.do(ctx, http.MethodPost, *base+"/v1/"+kind, create)
	if code != http.StatusCreated {
		time.Sleep(20 * time.Millisecond) // down or unavailable: do not spin
		return
	}
	var obj struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &obj) != nil || obj.ID == "" {
		return
	}
	for _, step := range path {
		if ctx.Err() != nil {
			return
		}
		// Each request goes to whichever service is current: a restart
		// between two steps is part of the load.
		if b := l.bases[rand.IntN(len(l.bases))].Load(); b != nil {
			base = b
		}
		url, reqBody := *base+"/v1/"+kind+"/"+obj.ID+"/simulate", `{"status":"`+step+`"}`
		if step == "cancel" {
			url, reqBody = *base+"/v1/"+kind+"/"+obj.ID+"/cancel", ""
		}
		if code, _ := l.do(ctx, http.MethodPost, url, reqBody); code != http.StatusOK {
			return
		}
	}
}

func (l *load) do(ctx context.Context, method, url, body string) (int, []byte) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+l.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	res, err := l.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			l.failed.Add(1)
			if l.onAnswer != nil {
				l.onAnswer(0, []byte(err.Error()), time.Since(start))
			}
		}
		return 0, nil
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		l.failed.Add(1)
		return 0, nil
	}
	l.mu.Lock()
	l.statusCodes[res.StatusCode]++
	l.mu.Unlock()
	if l.onAnswer != nil {
		l.onAnswer(res.StatusCode, b, time.Since(start))
	}
	if res.StatusCode < 300 {
		l.ok.Add(1)
	} else {
		l.failed.Add(1)
	}
	return res.StatusCode, b
}

func (l *load) codes() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int]int{}
	for k, v := range l.statusCodes {
		out[k] = v
	}
	return out
}

// deliveryFigures is what requireAllDelivered found.
type deliveryFigures struct {
	Events     int // committed events
	Receipts   int // deliveries the endpoint accepted, duplicates included
	Duplicates int // Receipts - Events: at-least-once at work
	MaxCopies  int // the most receipts of one event
	// DuplicateCauses counts the extra receipts by what made the delivery
	// job run its attempt again (duplicateCauses).
	DuplicateCauses map[string]int
}

// duplicateCauses sorts the extra receipts of each event received more
// than once by what River's job for its delivery went through, as its
// errors tell:
//   - rescued: the job was left running (its process killed mid-attempt,
//     after the merchant's 2xx and before the ledger write) and rescued;
//   - ledger: the attempt's ledger write failed (the database went away
//     after the 2xx) and the job ran again;
//   - other: anything else (shown in full in the test log).
func duplicateCauses(t *testing.T, pool *pgxpool.Pool, copies map[string]int) map[string]int {
	t.Helper()
	causes := map[string]int{"rescued": 0, "ledger": 0, "other": 0}
	var dup []string
	for id, n := range copies {
		if n > 1 {
			dup = append(dup, id)
		}
	}
	if len(dup) == 0 {
		return causes
	}
	rows, err := pool.Query(context.Background(), `SELECT d.event_id::text, coalesce(array_to_string(
			ARRAY(SELECT e->>'error' FROM unnest(j.errors) e), ' | '), '')
		FROM webhook_deliveries d LEFT JOIN river_job j ON j.id = d.job_id
		WHERE d.event_id::text = ANY($1)`, dup)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var id, errs string
		require.NoError(t, rows.Scan(&id, &errs))
		cause := "other"
		switch {
		case strings.Contains(errs, "rescued"):
			cause = "rescued"
		case strings.Contains(errs, "recording attempt"):
			cause = "ledger"
		default:
			if causes["other"] < 10 {
				t.Logf("duplicate of event %s (%d receipts), job errors: %q", id, copies[id], errs)
			}
		}
		causes[cause] += copies[id] - 1
	}
	require.NoError(t, rows.Err())
	return causes
}

func (f deliveryFigures) causes() string {
	return fmt.Sprintf("rescued:%d,ledger:%d,other:%d", f.DuplicateCauses["rescued"], f.DuplicateCauses["ledger"], f.DuplicateCauses["other"])
}

// requireAllDelivered waits (at most within) until every committed event has
// its delivery SUCCEEDED in the ledger and the endpoint received it at least
// once, then checks the outbox invariants and returns the figures:
//   - every event has exactly one delivery (the merchant has an endpoint);
//   - every payment's and payout's last event names its current status (the
//     status change and its event committed together);
//   - no delivery carried a bad signature.
func requireAllDelivered(t *testing.T, pool *pgxpool.Pool, s *sink, within time.Duration) deliveryFigures {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(within)
	var events []string
	var missing []string
	for {
		rows, err := pool.Query(ctx, `SELECT id::text FROM events`)
		require.NoError(t, err)
		events = events[:0]
		for rows.Next() {
			var id string
			require.NoError(t, rows.Scan(&id))
			events = append(events, id)
		}
		require.NoError(t, rows.Err())
		var notDone int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE status <> 'SUCCEEDED'`).Scan(&notDone))
		got, _, _ := s.counts()
		missing = missing[:0]
		for _, id := range events {
			if got[id] == 0 {
				missing = append(missing, id)
			}
		}
		if notDone == 0 && len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %d deliveries not SUCCEEDED, %d of %d events never received\n%s",
				within, notDone, len(missing), len(events), ledgerDiagnosis(ctx, pool))
		}
		time.Sleep(100 * time.Millisecond)
	}

	var withoutDelivery, extraDeliveries, badFinal int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM events e
		WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)`).Scan(&withoutDelivery))
	require.Zero(t, withoutDelivery, "every committed event has its delivery row")
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT event_id FROM webhook_deliveries
		GROUP BY event_id HAVING count(*) > 1) x`).Scan(&extraDeliveries))
	require.Zero(t, extraDeliveries, "one delivery row per event")
	// The last event of each object names its status: no status change
	// committed without its event, no event without its change.
	require.NoError(t, pool.QueryRow(ctx, `
		WITH objects AS (SELECT id, status FROM payments UNION ALL SELECT id, status FROM payouts),
		last AS (SELECT DISTINCT ON (object_id) object_id, payload::jsonb->'data'->>'status' AS status
			FROM events WHERE object_id IS NOT NULL ORDER BY object_id, created_at DESC, id DESC)
		SELECT count(*) FROM objects o LEFT JOIN last l ON l.object_id = o.id
		WHERE l.status IS DISTINCT FROM o.status`).Scan(&badFinal))
	require.Zero(t, badFinal, "every payment's and payout's last event names its current status")

	got, total, bad := s.counts()
	require.Zero(t, bad, "deliveries with a bad signature")
	f := deliveryFigures{Events: len(events), Receipts: total}
	for _, id := range events {
		f.MaxCopies = max(f.MaxCopies, got[id])
	}
	f.Duplicates = total - len(events)
	f.DuplicateCauses = duplicateCauses(t, pool, got)
	// Receipts of events that are not in the database would be phantoms.
	known := make(map[string]bool, len(events))
	for _, id := range events {
		known[id] = true
	}
	for id := range got {
		require.True(t, known[id], "the endpoint received event %s, which was never committed", id)
	}
	return f
}

// ledgerDiagnosis summarizes the ledger and River for a failure message.
func ledgerDiagnosis(ctx context.Context, pool *pgxpool.Pool) string {
	var b strings.Builder
	rows, err := pool.Query(ctx, `SELECT d.status, coalesce(j.state::text, 'no job'), count(*)
		FROM webhook_deliveries d LEFT JOIN river_job j ON j.id = d.job_id
		WHERE d.status <> 'SUCCEEDED' GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	for rows.Next() {
		var status, state string
		var n int
		if rows.Scan(&status, &state, &n) == nil {
			fmt.Fprintf(&b, "  ledger %s, job %s: %d\n", status, state, n)
		}
	}
	jobs, err := pool.Query(ctx, `SELECT j.state::text, j.attempt, j.max_attempts, (j.scheduled_at - now())::text,
			coalesce(j.errors[array_upper(j.errors, 1)]->>'error', '') || ' attempted ' || coalesce((now() - j.attempted_at)::text, '-') || ' ago by ' || coalesce(array_to_string(j.attempted_by, ','), '-') || ' queue ' || j.queue || ' ledger attempts ' || d.attempts || ' next_retry_in ' || coalesce((d.next_retry_at - now())::text, '-') || ' snoozes ' || coalesce(j.metadata->>'snoozes', '-'),
			d.next_retry_at IS NOT NULL
		FROM webhook_deliveries d JOIN river_job j ON j.id = d.job_id
		WHERE d.status <> 'SUCCEEDED' LIMIT 5`)
	if err == nil {
		for jobs.Next() {
			var state, in, lastErr string
			var attempt, maxAttempts int
			var retryAt bool
			if jobs.Scan(&state, &attempt, &maxAttempts, &in, &lastErr, &retryAt) == nil {
				fmt.Fprintf(&b, "  job %s attempt %d/%d due in %s next_retry_at set %v last error %q\n", state, attempt, maxAttempts, in, retryAt, lastErr)
			}
		}
		jobs.Close()
	}
	var leader string
	_ = pool.QueryRow(ctx, `SELECT coalesce(string_agg(leader_id || ' until ' || expires_at::text, ', '), 'none') FROM river_leader`).Scan(&leader)
	fmt.Fprintf(&b, "  river leader: %s\n", leader)
	return b.String()
}

// openPool opens a pool for the test's own checks.
func openPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// requireNoSecretsIn checks a process's log for the merchant's API key and
// webhook secret.
func requireNoSecretsIn(t *testing.T, log string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" {
			require.NotContains(t, log, s, "a secret reached the log")
		}
	}
}
