package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/netguard"
	"github.com/boohpay/boohpay/signing"
)

// How retries start on time (within 0.5 s of due), from River
// v0.51's source:
//
//   - A failed job whose next run is at most the scheduler interval (5 s,
//     not configurable) away goes straight back to `available` with
//     scheduled_at set to that time (job_executor.go reportError; the same
//     for snoozes). The fetch query only takes jobs whose scheduled_at has
//     passed, so such a job starts at the first fetch after it is due.
//   - A run farther away goes to `retryable` (or `scheduled`), and only the
//     leader's scheduler, every 5 s, moves it to `available`: the 8 s and
//     16 s retries would start up to 5 s late.
//   - Fetches happen on insert notifications, when a worker slot frees, and
//     every FetchPollInterval (1 s by default, plus up to 10% jitter).
//
// So a delivery never asks River for a run more than maxAvailableDelay
// ahead. After a failure the ledger gets the true due time (next_retry_at),
// and NextRetry hands River min(due, now + 4 s). A run that starts before
// next_retry_at snoozes for the rest, again at most 4 s at a time; the last
// hop lands exactly on the due time, in `available`. Because each hop is
// computed from the absolute due time, early wake-ups never add lateness.
// The delivery queue is polled every 100 ms (Config.FetchPollInterval), so
// a retry starts at most ~110 ms plus one fetch after it is due. A 16 s
// retry costs three extra short runs (at 4, 8 and 12 s) that read one row
// and snooze.
const (
	maxAvailableDelay = 4 * time.Second
	// longWait: a run due farther than this goes through River's scheduler
	// first (up to 5 s late), aimed longWaitLead early, then hops the rest.
	longWait     = 30 * time.Second
	longWaitLead = 10 * time.Second
	// dueSlack absorbs clock differences between Postgres (which stamps a
	// new delivery's next_retry_at) and this process.
	dueSlack = 20 * time.Millisecond
	// fallbackRetryDelay is when River reruns a job that failed without
	// recording an attempt (a database error, a rescue after a crash); the
	// ledger then says what is due.
	fallbackRetryDelay = time.Second
	// maxRetryDelay caps the doubling (capped at 60 s).
	maxRetryDelay = 60 * time.Second
	// timeoutMargin is the job's time beyond the HTTP attempt: waiting for a
	// merchant slot and the ledger writes.
	timeoutMargin = 20 * time.Second

	responseBodyMax = 1 << 10  // stored per attempt
	drainMax        = 64 << 10 // read past that so the connection can be reused
	userAgent       = "BoohPay-Webhooks/1.0"
)

// Reasons an attempt failed; bounded, so they can label metrics.
const (
	reasonHTTPStatus = "http_status"
	reasonTimeout    = "timeout"
	reasonConnection = "connection"
	reasonRedirect   = "redirect"
	reasonBlocked    = "blocked"
)

// What an attempt led to; bounded, so they can label metrics.
const (
	outcomeSucceeded = "succeeded" // 2xx
	outcomeRetrying  = "retrying"  // failed; a fast retry or a recovery attempt is scheduled
	outcomeFailed    = "failed"    // failed; no attempt left
	outcomeRecovered = "recovered" // a recovery attempt succeeded
)

// DeliveryWorker works db.DeliveryArgs: each run makes one attempt to POST a
// delivery to its endpoint as it is now, and records it in the ledger.
//
// Attempts are counted by the ledger (cycle_attempts, recovery_attempts),
// never by River's job.Attempt: a run that fails on our side (the database,
// a shutdown) before reaching the merchant spends no attempt, and one whose
// ledger write failed is written again on the next run with the schedule it
// had. The fast cycle is 1 + WebhookMaxRetries attempts; after it, the
// delivery is FAILED and the sweep gives it one attempt per step of
// RecoverySchedule.
type DeliveryWorker struct {
	river.WorkerDefaults[db.DeliveryArgs]
	store   *db.Store
	log     *slog.Logger
	cfg     Config
	client  *http.Client
	limiter *merchantLimiter
	// Batches of many workers' statements: their reads of deliveries,
	// marks of slow attempts, and successes' ledger writes.
	targets   *batcher[uuid.UUID, *db.DeliveryTarget]
	marks     *batcher[db.ProcessingMark, struct{}]
	successes *batcher[db.AttemptRecord, bool]
	// unrecorded holds, per job id, an attempt that reached the merchant
	// but whose ledger write failed: the job's next run writes it first.
	unrecorded sync.Map
}

// pendingAttempt is an attempt whose ledger write failed.
type pendingAttempt struct {
	d       *db.Delivery
	rec     db.AttemptRecord
	a       *attempt
	n       int
	outcome string
}

func newDeliveryWorker(store *db.Store, log *slog.Logger, cfg Config) *DeliveryWorker {
	w := &DeliveryWorker{
		store:  store,
		log:    log,
		cfg:    cfg,
		client: NewHTTPClient(cfg.WebhookTimeout, cfg.AllowPrivateNetworks),
	}
	w.targets = newBatcher(store.DeliveryTargetMany)
	w.marks = newBatcher(store.DeliveryMarkProcessingMany)
	w.successes = newBatcher(store.DeliveryRecordSucceededMany)
	w.limiter = newMerchantLimiter(cfg.MerchantConcurrency, cfg.WebhookTimeout, w.wakeSnoozed)
	return w
}

// NewHTTPClient returns the client every attempt uses: no redirects, no
// proxy (it would dial past the SSRF check), and the dialer that refuses
// blocked addresses after DNS resolution unless allowPrivate. The bench's
// River + POST baseline uses it too.
func NewHTTPClient(timeout time.Duration, allowPrivate bool) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:       netguard.Dialer(timeout, allowPrivate).DialContext,
			ForceAttemptHTTP2: true,
			// One host may serve many merchants (a platform's endpoints):
			// idle connections are kept per host up to the total, so a
			// burst to one host does not close and re-dial connections
			// every worker just used.
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: timeout,
			// A merchant's headers are read whole before anything else;
			// Go's default allows 10 MB of them.
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Timeout bounds one run: the attempt plus the ledger around it. River's
// rescuer leaves a running job alone for this long.
func (w *DeliveryWorker) Timeout(*river.Job[db.DeliveryArgs]) time.Duration { return w.timeout() }

func (w *DeliveryWorker) timeout() time.Duration { return w.cfg.WebhookTimeout + timeoutMargin }

// NextRetry tells River when to run a job again after Work returned an
// error: the next hop towards the due time this run's Work set on the job
// (River hands both the same job), or soon when Work recorded no attempt.
func (w *DeliveryWorker) NextRetry(job *river.Job[db.DeliveryArgs]) time.Time {
	now := time.Now()
	if job.Args.RetryAt.IsZero() {
		return now.Add(fallbackRetryDelay)
	}
	return now.Add(hop(job.Args.RetryAt.Sub(now)))
}

// hop is how long River should hold a job that is due in wait (see the top
// of this file).
func hop(wait time.Duration) time.Duration {
	if wait > longWait {
		return wait - longWaitLead
	}
	return max(min(wait, maxAvailableDelay), 0)
}

// retryDelay is the wait after the nth failed attempt of a cycle:
// RetryBaseDelay × 2^(n-1), capped at 60 s.
func (c Config) retryDelay(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 30 {
		return maxRetryDelay
	}
	return min(c.RetryBaseDelay<<(n-1), maxRetryDelay)
}

func (w *DeliveryWorker) Work(ctx context.Context, job *river.Job[db.DeliveryArgs]) error {
	if p, ok := w.unrecorded.Load(job.ID); ok {
		return w.write(ctx, job, p.(*pendingAttempt))
	}
	if err := w.fault(faultLoad); err != nil {
		return fmt.Errorf("loading delivery %s: %w", job.Args.DeliveryID, err)
	}
	merchantID := job.Args.MerchantID
	if merchantID == uuid.Nil {
		// A job inserted before its args named the merchant: read it first.
		t, err := w.target(job)
		if err != nil {
			return w.unread(job, err)
		}
		merchantID = t.Delivery.MerchantID
	}
	// The merchant's slot comes first, so a merchant at its cap costs a
	// snooze and no query.
	release, snooze := w.limiter.acquire(ctx, merchantID, job.ID)
	if release == nil {
		return river.JobSnooze(snooze) // the merchant has enough attempts in flight
	}
	t, err := w.target(job)
	if err != nil {
		release(0)
		return w.unread(job, err)
	}
	if dueBy := time.Now().Add(dueSlack); !t.SendableBy(job.ID, dueBy) {
		release(0)
		return w.unsendable(ctx, job, t, dueBy)
	}
	d := t.Delivery
	// An attempt still in flight after processingMarkAfter is marked
	// PROCESSING, for operators; a quick one never is (the mark would cost
	// as much as the rest of the ledger's writes).
	started := time.Now()
	mark := time.AfterFunc(processingMarkAfter, func() {
		// Best effort: the mark only informs, and a failed one changes nothing.
		_, _ = w.marks.do(db.ProcessingMark{DeliveryID: d.ID, JobID: job.ID, PriorAttempts: d.Attempts, StartedAt: started})
	})
	a := w.send(ctx, t, started)
	mark.Stop()
	release(a.duration)
	if w.cfg.afterResponseFunc != nil {
		w.cfg.afterResponseFunc()
	}
	if ctx.Err() != nil {
		// Shutdown cut the attempt short: that says nothing about the
		// endpoint. The ledger stays as it was and River runs the job again.
		return ctx.Err()
	}
	return w.write(ctx, job, w.outcome(job, d, a))
}

// processingMarkAfter is how long an attempt is in flight before its
// delivery is marked PROCESSING.
const processingMarkAfter = time.Second

// target reads the job's delivery and its endpoint in the next batch of
// reads (db.Store.DeliveryTargetMany); db.ErrNotFound when it is gone.
func (w *DeliveryWorker) target(job *river.Job[db.DeliveryArgs]) (*db.DeliveryTarget, error) {
	t, err := w.targets.do(job.Args.DeliveryID)
	if err == nil && t == nil {
		err = db.ErrNotFound
	}
	return t, err
}

// unread says what a run whose delivery could not be read does.
func (w *DeliveryWorker) unread(job *river.Job[db.DeliveryArgs], err error) error {
	if errors.Is(err, db.ErrNotFound) {
		return nil // the row was deleted: nothing to send
	}
	return fmt.Errorf("loading delivery %s: %w", job.Args.DeliveryID, err)
}

// unsendable says what a run whose delivery is not its to send by dueBy
// does, from the row as it was read.
func (w *DeliveryWorker) unsendable(ctx context.Context, job *river.Job[db.DeliveryArgs], t *db.DeliveryTarget, dueBy time.Time) error {
	d := t.Delivery
	// Only the current cycle's job sends, and nothing is sent again once the
	// ledger says SUCCEEDED or FAILED (unless a recovery attempt is due): a
	// re-run of a delivered job (a lost completion, a retry from River UI)
	// must not POST twice.
	if d.JobID == nil || *d.JobID != job.ID || d.Status == db.DeliverySucceeded ||
		d.Status == db.DeliveryFailed && d.NextRetryAt == nil {
		return nil
	}
	// Not due by dueBy, the time SendableBy was asked about: a second reading
	// of the clock could fall between the two and send nothing at all.
	if d.NextRetryAt != nil && d.NextRetryAt.After(dueBy) {
		if d.Status == db.DeliveryFailed {
			return nil // a recovery attempt not yet due: the sweep brings it
		}
		return river.JobSnooze(hop(time.Until(*d.NextRetryAt)))
	}
	if t.EndpointState != db.EndpointEnabled {
		_, err := w.store.DeliveryEndUnsent(ctx, d.ID, job.ID, t.EndpointState)
		return err
	}
	return nil
}

// outcome decides what an attempt leads to. Attempt n of the fast cycle
// (n counted by the ledger) that fails is retried after retryDelay(n) while
// n <= WebhookMaxRetries; the last one, and each recovery attempt, leave the
// delivery FAILED with next_retry_at at the next step of RecoverySchedule,
// or none when the schedule is used up.
func (w *DeliveryWorker) outcome(job *river.Job[db.DeliveryArgs], d *db.Delivery, a *attempt) *pendingAttempt {
	n := d.CycleAttempts + 1
	recovery := n > w.cfg.WebhookMaxRetries+1
	rec := db.AttemptRecord{DeliveryID: d.ID, JobID: job.ID, StartedAt: a.started, Duration: a.duration, Recovery: recovery,
		PriorAttempts: d.Attempts, DisableAfter: w.cfg.DisableAfter}
	if a.statusCode != 0 {
		rec.StatusCode = &a.statusCode
	}
	if a.body != "" {
		rec.ResponseBody = &a.body
	}
	outcome := outcomeSucceeded
	switch {
	case a.err == nil:
		rec.Status = db.DeliverySucceeded
		if recovery {
			outcome = outcomeRecovered
		}
	case !recovery && n <= w.cfg.WebhookMaxRetries:
		due := time.Now().Add(w.cfg.retryDelay(n))
		rec.Status, rec.NextRetryAt, outcome = db.DeliveryPending, &due, outcomeRetrying
	default:
		rec.Status, outcome = db.DeliveryFailed, outcomeFailed
		step := d.RecoveryAttempts
		if recovery {
			step++
		}
		if step < len(w.cfg.RecoverySchedule) {
			due := time.Now().Add(w.cfg.RecoverySchedule[step])
			rec.NextRetryAt, outcome = &due, outcomeRetrying
		}
	}
	if a.err != nil {
		msg := a.err.Error()
		rec.Error = &msg
	}
	return &pendingAttempt{d: d, rec: rec, a: a, n: d.Attempts + 1, outcome: outcome}
}

// write records an attempt's outcome in the ledger and tells River what
// comes next: nothing (succeeded), a retry (an error, with NextRetry), or
// the end of the cycle (failed: the job is cancelled with the last error;
// a recovery attempt, if any, is the sweep's). When the write fails, the
// attempt is kept for the job's next run, which writes it before anything
// else: the attempt counts once, and the schedule stays the one it set.
func (w *DeliveryWorker) write(ctx context.Context, job *river.Job[db.DeliveryArgs], p *pendingAttempt) error {
	var res db.AttemptResult
	// River's completer marks the job done after Work returns. A crash in
	// between re-runs it, and Work's check above then sees SUCCEEDED and
	// sends nothing. (Completing the job in this transaction instead, with
	// JobCompleteTx, cost a quarter of the worker's CPU and about half the
	// throughput: docs/BENCHMARKS.md.) A crash before this commit re-runs
	// the job, which POSTs again: receivers dedupe on webhook-id. So a
	// database that cannot serve for a moment is waited for (within the
	// job's timeout) rather than answered with a second POST; past that,
	// the attempt is kept for the next run (unrecorded).
	err := w.fault(faultRecord)
	switch {
	case err != nil:
	case p.rec.Status == db.DeliverySucceeded:
		res.Recorded, err = w.successes.do(p.rec)
	default:
		err = w.store.InTxRetrying(ctx, func(tx pgx.Tx) error {
			var err error
			res, err = w.store.DeliveryRecordAttemptTx(ctx, tx, p.rec)
			return err
		})
	}
	if err != nil {
		w.unrecorded.Store(job.ID, p)
		return fmt.Errorf("recording attempt %d of delivery %s: %w", p.n, p.rec.DeliveryID, err)
	}
	w.unrecorded.Delete(job.ID)
	if !res.Recorded {
		// The row moved on meanwhile (an operator, a newer cycle), or this
		// is a rewrite whose first try had committed after all: the row
		// says what is next, so run again when this attempt said.
		if p.rec.Status == db.DeliveryPending {
			job.Args.RetryAt = *p.rec.NextRetryAt
			return fmt.Errorf("attempt %d of delivery %s already recorded", p.n, p.rec.DeliveryID)
		}
		return nil
	}
	w.attemptDone(ctx, p)
	switch {
	case res.EndpointDisabled:
		return river.JobCancel(fmt.Errorf("attempt %d failed and disabled the endpoint: %s", p.n, errText(p.rec.Error)))
	case p.rec.Status == db.DeliveryPending:
		job.Args.RetryAt = *p.rec.NextRetryAt
		return fmt.Errorf("attempt %d failed, retrying at %s: %w", p.n, p.rec.NextRetryAt.Format(time.RFC3339Nano), p.a.err)
	case p.rec.Status == db.DeliveryFailed:
		return river.JobCancel(fmt.Errorf("attempt %d failed, no fast retries left: %w", p.n, p.a.err))
	}
	return nil
}

func errText(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Fault points for tests (Config.faultFunc): where our own side can fail.
const (
	faultLoad   = "load"   // reading the delivery, before any POST
	faultRecord = "record" // writing the attempt to the ledger
)

func (w *DeliveryWorker) fault(point string) error {
	if w.cfg.faultFunc == nil {
		return nil
	}
	return w.cfg.faultFunc(point)
}

// attemptDone is told every recorded attempt's outcome: succeeded, retrying
// or failed; for a failure its reason (http_status, timeout, connection,
// redirect, blocked); and its duration. Metrics hook in here.
func (w *DeliveryWorker) attemptDone(ctx context.Context, p *pendingAttempt) {
	a, n, outcome := p.a, p.n, p.outcome
	w.cfg.Metrics.DeliveryAttempt(outcome, a.reason, a.duration)
	level := slog.LevelDebug
	switch outcome {
	case outcomeRetrying:
		level = slog.LevelInfo
	case outcomeFailed:
		level = slog.LevelWarn
	}
	if !w.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("delivery_id", p.d.ID.String()),
		slog.String("merchant_id", p.d.MerchantID.String()),
		slog.String("event_type", p.d.EventType),
		slog.Int("attempt", n),
		slog.Bool("recovery", p.rec.Recovery),
		slog.String("outcome", outcome),
		slog.Float64("duration_ms", durationMS(a.duration)),
	}
	if a.statusCode != 0 {
		attrs = append(attrs, slog.Int("http_status", a.statusCode))
	}
	if a.err != nil {
		attrs = append(attrs, slog.String("reason", a.reason), slog.String("error", a.err.Error()))
	}
	w.log.LogAttrs(ctx, level, "webhook attempt", attrs...)
}

// attempt is one HTTP attempt's outcome.
type attempt struct {
	started    time.Time
	duration   time.Duration
	statusCode int    // 0 when no response came
	body       string // the response's first 1 KiB, as valid UTF-8
	reason     string // why it failed (reason* constants); "" on success
	err        error  // nil on a 2xx
}

// send makes one attempt: POST the stored payload, byte for byte, with the
// headers docs/WEBHOOKS.md lists, within WebhookTimeout.
func (w *DeliveryWorker) send(ctx context.Context, t *db.DeliveryTarget, start time.Time) *attempt {
	a := w.post(ctx, t, start)
	a.started, a.duration = start, time.Since(start)
	if a.err != nil {
		a.err = boundedError{a.err}
	}
	return a
}

func (w *DeliveryWorker) post(ctx context.Context, t *db.DeliveryTarget, start time.Time) *attempt {
	d := t.Delivery
	if t.URL == "" {
		return &attempt{reason: reasonConnection, err: errors.New("the endpoint has no URL")}
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return &attempt{reason: reasonConnection, err: fmt.Errorf("invalid webhook URL: %w", err)}
	}
	setHeaders(req.Header, t, start.Unix())
	resp, err := w.client.Do(req)
	if err != nil {
		return &attempt{reason: failureReason(err), err: describe(err, w.cfg.WebhookTimeout)}
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, responseBodyMax))
	_, _ = io.CopyN(io.Discard, resp.Body, drainMax)
	a := &attempt{statusCode: resp.StatusCode, body: cleanText(head)}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
	case code >= 300 && code < 400:
		a.reason = reasonRedirect
		a.err = fmt.Errorf("HTTP %d: redirects are not followed (Location: %q)", code, resp.Header.Get("Location"))
	default:
		a.reason = reasonHTTPStatus
		a.err = fmt.Errorf("HTTP %d", code)
	}
	return a
}

// setHeaders sets every delivery header. During a rotation's grace period,
// webhook-signature lists one signature per secret, space-separated, the
// current secret's first, while X-BoohPay-Signature stays on the previous
// secret: that header is single-valued, and its receivers (the old
// service's) compare it whole and know only the secret they were given, so
// it moves to the new secret only when the grace period ends. The Standard
// Webhooks header names are sent in lower case, as that spec writes them.
func setHeaders(h http.Header, t *db.DeliveryTarget, timestamp int64) {
	d := t.Delivery
	id := d.EventID.String()
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", userAgent)
	h.Set("X-BoohPay-Event", d.EventType)
	h.Set("X-BoohPay-Delivery", d.ID.String())
	h["webhook-id"] = []string{id}
	h["webhook-timestamp"] = []string{strconv.FormatInt(timestamp, 10)}
	if t.Secret == "" {
		return // a URL set by SQL without a secret: nothing to sign with
	}
	legacy := t.Secret
	standard := []string{signing.Standard(t.Secret, id, timestamp, d.Payload)}
	if t.Previous != "" {
		legacy = t.Previous
		standard = append(standard, signing.Standard(t.Previous, id, timestamp, d.Payload))
	}
	h.Set("X-BoohPay-Signature", signing.Legacy(legacy, d.Payload))
	h["webhook-signature"] = []string{strings.Join(standard, " ")}
}

// failureReason classifies a request that got no response.
func failureReason(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, netguard.ErrBlocked):
		return reasonBlocked
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return reasonTimeout
	}
	return reasonConnection
}

// describe words a failed request for the ledger's error_message.
func describe(err error, timeout time.Duration) error {
	switch failureReason(err) {
	case reasonBlocked:
		return fmt.Errorf("blocked: %w", err)
	case reasonTimeout:
		return fmt.Errorf("no response within %s", timeout)
	}
	return fmt.Errorf("connection failed: %w", err)
}

// cleanText makes a response body storable as Postgres text: see boundText.
func cleanText(b []byte) string { return boundText(string(b)) }

// durationMS is a duration for a log line: milliseconds, with a unit in its
// key (slog's durations print as bare nanoseconds in JSON).
func durationMS(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
