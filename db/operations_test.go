package db_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// The runbook's example ids and times; the fixture gives them data.
var (
	runbookAcme     = uuid.MustParse("8d3f2a61-4c7b-4e15-9a0d-6f2b7c1e5a94")
	runbookPayment  = uuid.MustParse("01936b8d-52c4-7a1e-b3f0-2c9e8d7a6b51")
	runbookDelivery = uuid.MustParse("01936b90-0a1b-7c2d-9e3f-4a5b6c7d8e9f") // Acme's failure today
	runbookT        = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	runbookKribi    = uuid.MustParse("01a1f3c2-7d4e-7f50-8a61-b2c3d4e5f607") // an endpoint disabled as failing
)

// runbookFixture is what the runbook's statements find. Times are relative
// to now, except around runbookT.
type runbookFixture struct {
	dakar              uuid.UUID // its endpoint is down
	acmeFailedOld      uuid.UUID // FAILED 30 h ago: not today
	acmePendingDue     uuid.UUID
	dakarRetrying      uuid.UUID // PENDING, 4 failed attempts, retry due in seconds
	dakarStuck         uuid.UUID // PROCESSING for 10 minutes, no job
	dakarFailedAfterT  uuid.UUID
	dakarFailedBeforeT uuid.UUID
	erroringJob        int64
	queueJob           int64
}

// runbookStatement is one ```sql <name> block of docs/OPERATIONS.md.
type runbookStatement struct {
	name, sql string
}

func runbookStatements(t *testing.T) []runbookStatement {
	t.Helper()
	doc, err := os.ReadFile("../docs/OPERATIONS.md")
	require.NoError(t, err)
	require.NotRegexp(t, "(?m)^```sql\\s*$", string(doc), "every sql block needs a name (```sql name) so the test checks it")
	var out []runbookStatement
	for _, m := range regexp.MustCompile("(?ms)^```sql ([a-z0-9-]+)\n(.*?)^```").FindAllStringSubmatch(string(doc), -1) {
		out = append(out, runbookStatement{name: m[1], sql: m[2]})
	}
	require.NotEmpty(t, out)
	return out
}

type runbookResult struct {
	rows     []map[string]any
	affected int64
}

// TestOperationsRunbook runs every SQL statement of docs/OPERATIONS.md, as
// written there, against a database with data in it, and checks what each
// one answers. Each runs in its own transaction, rolled back afterwards.
func TestOperationsRunbook(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	f := seedRunbook(t, store)
	seedRunbookMoney(t, store)

	checks := map[string]func(t *testing.T, tx pgx.Tx, res runbookResult){
		"stats-24h": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			byKey := map[string]map[string]any{}
			for _, r := range res.rows {
				byKey[r["merchant_name"].(string)+"/"+r["status"].(string)] = r
				require.WithinDuration(t, time.Now(), r["last_created_at"].(time.Time), 24*time.Hour)
			}
			require.EqualValues(t, 1, byKey["Acme Shop/FAILED"]["deliveries"]) // the one of 30 h ago is out
			require.EqualValues(t, 6, byKey["Acme Shop/FAILED"]["attempts"])
			require.EqualValues(t, 3, byKey["Acme Shop/SUCCEEDED"]["deliveries"])
			require.EqualValues(t, 1, byKey["Acme Shop/PENDING"]["deliveries"])
			require.EqualValues(t, 1, byKey["Boutique Dakar/PENDING"]["retried"])
			require.EqualValues(t, 1, byKey["Boutique Dakar/PROCESSING"]["deliveries"])
		},
		"failed-today": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.Equal(t, []string{runbookDelivery.String()}, column(res, "id"))
			require.EqualValues(t, 503, res.rows[0]["http_status_code"])
		},
		"delivery-attempts": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.Equal(t, []string{"1", "2", "3", "4", "5", "6"}, column(res, "attempt"))
			require.Equal(t, "Service Unavailable", res.rows[5]["response"])
		},
		"failures-recent": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			ids := column(res, "delivery_id")
			require.Equal(t, runbookDelivery.String(), ids[0])
			require.Contains(t, ids, f.acmeFailedOld.String())
			var last time.Time
			for i, r := range res.rows {
				at := r["failed_at"].(time.Time)
				require.WithinDuration(t, time.Now(), at, 7*24*time.Hour)
				if i > 0 {
					require.False(t, at.After(last), "newest first")
				}
				last = at
			}
		},
		"replay-since": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.Positive(t, res.affected)
			require.Equal(t, "PENDING", deliveryStatus(t, tx, f.dakarFailedAfterT))
			require.Equal(t, "FAILED", deliveryStatus(t, tx, f.dakarFailedBeforeT))
			require.Zero(t, dbtest.Count(t, tx, `SELECT count(*) FROM webhook_deliveries WHERE status = 'FAILED' AND updated_at >= $1`, runbookT))
			// The sweep picks the replayed rows up: each gets a new job.
			_, _, err := store.DeliverySweepBatchTx(ctx, tx, 100)
			require.NoError(t, err)
			require.Equal(t, 1, dbtest.Count(t, tx, `SELECT count(*) FROM webhook_deliveries d JOIN river_job j ON j.id = d.job_id
				WHERE d.id = $1 AND j.kind = 'webhook_delivery' AND j.state = 'available'`, f.dakarFailedAfterT))
		},
		"endpoints-down": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.Equal(t, []string{"Boutique Dakar"}, column(res, "merchant_name"))
			r := res.rows[0]
			require.EqualValues(t, 4, r["consecutive_failures"])
			require.Nil(t, r["last_success_at"])
			require.Equal(t, "dial tcp 203.0.113.7:443: connect: connection refused", r["last_error"])
			require.EqualValues(t, 2, r["backlog"])
			// Acme had failures but its last attempt got through: degraded, not down.
			require.Equal(t, 1, dbtest.Count(t, tx, `SELECT count(*) FROM webhook_endpoint_health WHERE merchant_id = $1 AND state = 'degraded'`, runbookAcme))
		},
		"recovering": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.Equal(t, []string{f.acmeFailedOld.String()}, column(res, "id"))
			require.Equal(t, "Acme Shop", res.rows[0]["merchant_name"])
		},
		"merchant-endpoints": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.Len(t, res.rows, 2)
			require.Equal(t, []string{"true", "false"}, column(res, "is_default"))
			require.Equal(t, []string{"https://acme.example.com/hooks", "https://acme.example.com/payouts"}, column(res, "url"))
		},
		"endpoints-disabled": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.Equal(t, []string{runbookKribi.String()}, column(res, "endpoint_id"))
			require.Equal(t, "Kribi Market", res.rows[0]["merchant_name"])
		},
		"reenable-endpoint": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.EqualValues(t, 1, res.affected)
			require.Equal(t, 1, dbtest.Count(t, tx, `SELECT count(*) FROM webhook_endpoints WHERE id = $1 AND status = 'enabled'
				AND failing_since IS NULL`, runbookKribi))
		},
		"queue-lag": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.Equal(t, db.DeliveryQueue, res.rows[0]["queue"])
			require.EqualValues(t, 1, res.rows[0]["due"])
			require.GreaterOrEqual(t, interval(t, res.rows[0]["lag"]), 5*time.Minute)
		},
		"delivery-backlog": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.Len(t, res.rows, 1)
			r := res.rows[0]
			require.EqualValues(t, 1, r["due"])
			require.EqualValues(t, 1, r["waiting_retry"])
			require.EqualValues(t, 1, r["processing"])
			require.GreaterOrEqual(t, interval(t, r["lag"]), 2*time.Minute)
			require.EqualValues(t, 1, r["recovering"])
		},
		"stuck-processing": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.Equal(t, []string{f.dakarStuck.String()}, column(res, "id"))
			require.Nil(t, res.rows[0]["job_state"])
		},
		"pending": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.Equal(t, []string{f.acmePendingDue.String(), f.dakarRetrying.String()}, column(res, "id"))
		},
		"payment-history": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.Equal(t, []string{"payment.pending", "payment.succeeded"}, column(res, "type"))
			require.Equal(t, []string{"SUCCEEDED", "SUCCEEDED"}, column(res, "delivery_status"))
		},
		"payment-overrides": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.Len(t, res.rows, 1)
			require.Equal(t, "PENDING", res.rows[0]["from_status"])
			require.Equal(t, "SUCCEEDED", res.rows[0]["to_status"])
			require.Equal(t, "Moneroo support confirmed by phone, ticket 4411", res.rows[0]["reason"])
		},
		"set-endpoint": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.EqualValues(t, 1, res.affected)
			var url, secret string
			require.NoError(t, tx.QueryRow(ctx, `SELECT webhook_url, webhook_secret FROM merchants WHERE id = $1`, runbookAcme).Scan(&url, &secret))
			require.Equal(t, "https://merchant.example.com/webhooks", url)
			require.Equal(t, "secret-key", secret)
		},
		"jobs-erroring": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.Equal(t, []string{fmt.Sprint(f.erroringJob)}, column(res, "id"))
			require.Equal(t, "sweeping: deadlock detected", res.rows[0]["last_error"])
		},
		"ledger-size": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			names := column(res, "table_name")
			sort.Strings(names)
			require.Equal(t, []string{"events", "payments", "payouts", "river_job", "webhook_deliveries", "webhook_delivery_attempts"}, names)
		},
		"in-review": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.Equal(t, []string{"payout", "payment"}, column(res, "object"), "newest review first")
			require.Equal(t, []string{db.ReviewFailureAfterSuccess, db.ReviewAmountMismatch}, column(res, "reason"))
			require.Equal(t, "Kribi Market", res.rows[1]["merchant_name"])
			require.Equal(t, "pi_3QPmY2Lkdi0aZb1xRunbk", res.rows[1]["provider_reference"])
		},
		"provider-attention": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			var got []string
			for _, r := range res.rows {
				got = append(got, fmt.Sprintf("%s %s %d", r["provider"], r["result"], r["events"]))
			}
			require.Equal(t, []string{"moneroo conflict 1", "stripe amount_mismatch 1", "stripe unmatched 1"}, got)
		},
		"provider-object-history": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.Equal(t, []string{"payment_intent.succeeded"}, column(res, "event_type"))
			require.Equal(t, []string{db.OutcomeAmountMismatch}, column(res, "result"))
		},
		"unmatched": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.Equal(t, []string{"pi_3QPmY2Lkdi0aZb1xNobody"}, column(res, "object_ref"))
		},
		"retention-due": func(t *testing.T, tx pgx.Tx, res runbookResult) {
			require.EqualValues(t, 1, res.rows[0]["attempts_due"])
			require.EqualValues(t, 1, res.rows[0]["deliveries_due"])
		},
	}

	statements := runbookStatements(t)
	seen := map[string]bool{}
	for _, st := range statements {
		require.False(t, seen[st.name], "two blocks named %s", st.name)
		seen[st.name] = true
		check, ok := checks[st.name]
		require.True(t, ok, "docs/OPERATIONS.md block %q has no check in TestOperationsRunbook", st.name)
		t.Run(st.name, func(t *testing.T) {
			tx, err := store.Pool.Begin(ctx)
			require.NoError(t, err)
			defer tx.Rollback(ctx) //nolint:errcheck
			rows, err := tx.Query(ctx, st.sql)
			require.NoError(t, err)
			var res runbookResult
			names := make([]string, len(rows.FieldDescriptions()))
			for i, fd := range rows.FieldDescriptions() {
				names[i] = fd.Name
			}
			for rows.Next() {
				values, err := rows.Values()
				require.NoError(t, err)
				row := map[string]any{}
				for i, v := range values {
					row[names[i]] = v
				}
				res.rows = append(res.rows, row)
			}
			require.NoError(t, rows.Err(), "running:\n%s", st.sql)
			res.affected = rows.CommandTag().RowsAffected()
			check(t, tx, res)
		})
	}
	for name := range checks {
		require.True(t, seen[name], "TestOperationsRunbook checks %q, which docs/OPERATIONS.md no longer has", name)
	}
}

// seedRunbook writes two merchants' deliveries, attempts, events, a payment
// with an override, and River jobs.
func seedRunbook(t *testing.T, store *db.Store) *runbookFixture {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	f := &runbookFixture{dakar: uuid.MustParse("2b7e4f10-93c5-4d8a-b6e1-0c5f9a3d7e28")}
	rc, err := river.NewClient(riverpgxv5.New(store.Pool), &river.Config{})
	require.NoError(t, err)

	exec := func(tx pgx.Tx, sql string, args ...any) {
		t.Helper()
		_, err := tx.Exec(ctx, sql, args...)
		require.NoError(t, err, sql)
	}
	type delivery struct {
		id          uuid.UUID
		merchant    uuid.UUID
		eventType   string
		objectID    *uuid.UUID
		status      string
		created     time.Time
		updated     time.Time // also last_attempt_at, delivered_at when SUCCEEDED
		nextRetry   *time.Time
		attempts    int
		code        *int
		errMsg      *string
		jobID       *int64
		attemptRows []attemptRow
	}
	insert := func(tx pgx.Tx, d delivery) uuid.UUID {
		t.Helper()
		if d.id == uuid.Nil {
			d.id = uuid.Must(uuid.NewV7())
		}
		eventID := uuid.Must(uuid.NewV7())
		payload := fmt.Sprintf(`{"id":%q,"event":%q,"timestamp":%q,"data":{}}`, eventID, d.eventType, d.created.UTC().Format(time.RFC3339Nano))
		exec(tx, `INSERT INTO events (id, merchant_id, type, object_id, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			eventID, d.merchant, d.eventType, d.objectID, payload, d.created)
		var delivered *time.Time
		if d.status == db.DeliverySucceeded {
			delivered = &d.updated
		}
		var lastAttempt *time.Time
		if d.attempts > 0 || d.status == db.DeliveryProcessing {
			lastAttempt = &d.updated
		}
		exec(tx, `INSERT INTO webhook_deliveries (id, merchant_id, event_id, event_type, payload, status, attempts,
				last_attempt_at, next_retry_at, http_status_code, error_message, delivered_at, job_id, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			d.id, d.merchant, eventID, d.eventType, payload, d.status, d.attempts, lastAttempt, d.nextRetry,
			d.code, d.errMsg, delivered, d.jobID, d.created, d.updated)
		for i, a := range d.attemptRows {
			exec(tx, `INSERT INTO webhook_delivery_attempts (delivery_id, attempt, status_code, duration_ms, error, response_body, created_at)
				VALUES ($1, $2, $3, 40, $4, $5, $6)`, d.id, i+1, a.code, a.err, a.body, a.at)
		}
		return d.id
	}
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	ptr := func(v int) *int { return &v }
	str := func(s string) *string { return &s }

	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
		exec(tx, `INSERT INTO merchants (id, name, webhook_url, webhook_secret) VALUES
			($1, 'Acme Shop', 'https://acme.example.com/hooks', 'whsec_acme'),
			($2, 'Boutique Dakar', 'https://dakar.example.com/hooks', 'whsec_dakar')`, runbookAcme, f.dakar)

		// Acme: a failure today, one 30 h ago, a success since, a delivery due.
		var failing []attemptRow
		for i := range 6 {
			failing = append(failing, attemptRow{code: ptr(503), err: str("HTTP 503"), body: str("Service Unavailable"),
				at: ago(20*time.Minute - time.Duration(i)*time.Minute)})
		}
		insert(tx, delivery{id: runbookDelivery, merchant: runbookAcme, eventType: "payment.failed", status: db.DeliveryFailed,
			created: now, updated: now, attempts: 6, code: ptr(503), errMsg: str("HTTP 503"), attemptRows: failing})
		f.acmeFailedOld = insert(tx, delivery{merchant: runbookAcme, eventType: "payment.failed", status: db.DeliveryFailed,
			created: ago(30 * time.Hour), updated: ago(30 * time.Hour), attempts: 6, code: ptr(500), errMsg: str("HTTP 500"),
			nextRetry: timePtr(now.Add(4 * time.Hour))}) // in the recovery tail
		// Acme's second endpoint; Kribi's, disabled as failing.
		exec(tx, `INSERT INTO webhook_endpoints (merchant_id, url, enabled_events, secret)
			VALUES ($1, 'https://acme.example.com/payouts', '{payout.succeeded,payout.failed}', 'whsec_acme2')`, runbookAcme)
		exec(tx, `INSERT INTO merchants (name) VALUES ('Kribi Market')`)
		exec(tx, `INSERT INTO webhook_endpoints (id, merchant_id, is_default, url, secret, status, disabled_reason, failing_since)
			SELECT $1, id, true, 'https://kribi.example.com/hooks', 'whsec_kribi', 'disabled', 'failing', now() - interval '73 hours'
			FROM merchants WHERE name = 'Kribi Market'`, runbookKribi)
		insert(tx, delivery{merchant: runbookAcme, eventType: "payout.succeeded", status: db.DeliverySucceeded,
			created: ago(2 * time.Minute), updated: ago(time.Minute), attempts: 1, code: ptr(200),
			attemptRows: []attemptRow{{code: ptr(200), body: str("ok"), at: ago(time.Minute)}}})
		job, err := rc.InsertTx(ctx, tx, db.DeliveryArgs{DeliveryID: uuid.New()}, &river.InsertOpts{ScheduledAt: ago(5 * time.Minute)})
		require.NoError(t, err)
		f.queueJob = job.Job.ID
		f.acmePendingDue = insert(tx, delivery{merchant: runbookAcme, eventType: "payment.pending", status: db.DeliveryPending,
			created: ago(3 * time.Minute), updated: ago(3 * time.Minute), nextRetry: timePtr(ago(2 * time.Minute)), jobID: &f.queueJob})

		// Acme's payment: created, then overridden to SUCCEEDED; both events delivered.
		exec(tx, `INSERT INTO payments (id, merchant_id, amount, currency, gateway, status, created_at, updated_at)
			VALUES ($1, $2, 5000, 'XAF', 'moneroo', 'SUCCEEDED', $3, $4)`, runbookPayment, runbookAcme, ago(time.Hour), ago(50*time.Minute))
		insert(tx, delivery{merchant: runbookAcme, eventType: "payment.pending", objectID: &runbookPayment, status: db.DeliverySucceeded,
			created: ago(time.Hour), updated: ago(time.Hour), attempts: 1, code: ptr(200)})
		insert(tx, delivery{merchant: runbookAcme, eventType: "payment.succeeded", objectID: &runbookPayment, status: db.DeliverySucceeded,
			created: ago(50 * time.Minute), updated: ago(50 * time.Minute), attempts: 1, code: ptr(200)})
		exec(tx, `INSERT INTO admin_actions (action, object_id, merchant_id, from_status, to_status, reason, event_id, request_id, created_at)
			SELECT 'payment.status_override', $1, $2, 'PENDING', 'SUCCEEDED', 'Moneroo support confirmed by phone, ticket 4411', id, 'req-1', created_at
			FROM events WHERE object_id = $1 AND type = 'payment.succeeded'`, runbookPayment, runbookAcme)

		// Delivered 40 days ago: retention's.
		insert(tx, delivery{merchant: runbookAcme, eventType: "payment.pending", status: db.DeliverySucceeded,
			created: ago(40 * 24 * time.Hour), updated: ago(40 * 24 * time.Hour), attempts: 1, code: ptr(200),
			attemptRows: []attemptRow{{code: ptr(200), at: ago(40 * 24 * time.Hour)}}})

		// Dakar: its endpoint refuses connections; failures either side of T.
		var refused []attemptRow
		for i := range 4 {
			refused = append(refused, attemptRow{err: str("dial tcp 203.0.113.7:443: connect: connection refused"),
				at: ago(time.Duration(40-10*i) * time.Second)})
		}
		f.dakarRetrying = insert(tx, delivery{merchant: f.dakar, eventType: "payment.succeeded", status: db.DeliveryPending,
			created: ago(45 * time.Second), updated: ago(10 * time.Second), nextRetry: timePtr(now.Add(8 * time.Second)),
			attempts: 4, errMsg: refused[3].err, attemptRows: refused})
		f.dakarStuck = insert(tx, delivery{merchant: f.dakar, eventType: "payment.pending", status: db.DeliveryProcessing,
			created: ago(11 * time.Minute), updated: ago(10 * time.Minute)})
		f.dakarFailedAfterT = insert(tx, delivery{merchant: f.dakar, eventType: "payment.failed", status: db.DeliveryFailed,
			created: runbookT.Add(30 * time.Minute), updated: runbookT.Add(time.Hour), attempts: 6, errMsg: str("HTTP 502"), code: ptr(502)})
		f.dakarFailedBeforeT = insert(tx, delivery{merchant: f.dakar, eventType: "payment.failed", status: db.DeliveryFailed,
			created: runbookT.Add(-2 * time.Hour), updated: runbookT.Add(-time.Hour), attempts: 6, errMsg: str("HTTP 502"), code: ptr(502)})

		// A periodic job that keeps erroring.
		sweep, err := rc.InsertTx(ctx, tx, runbookSweepArgs{}, nil)
		require.NoError(t, err)
		f.erroringJob = sweep.Job.ID
		exec(tx, `UPDATE river_job SET state = 'discarded', attempt = 1, attempted_at = now(), finalized_at = now(),
			errors = ARRAY['{"at":"2026-11-26T09:00:00Z","attempt":1,"error":"sweeping: deadlock detected","trace":""}'::jsonb]
			WHERE id = $1`, f.erroringJob)
		return nil
	}))
	return f
}

type attemptRow struct {
	code *int
	err  *string
	body *string
	at   time.Time
}

// runbookSweepArgs has the sweep's kind without importing jobs (which imports db).
type runbookSweepArgs struct{}

func (runbookSweepArgs) Kind() string { return "webhook_sweep" }

func timePtr(t time.Time) *time.Time { return &t }

// column returns one column of the rows as strings (UUIDs spelled out).
func column(res runbookResult, name string) []string {
	var out []string
	for _, r := range res.rows {
		switch v := r[name].(type) {
		case [16]byte:
			out = append(out, uuid.UUID(v).String())
		default:
			out = append(out, fmt.Sprint(v))
		}
	}
	return out
}

func interval(t *testing.T, v any) time.Duration {
	t.Helper()
	iv, ok := v.(pgtype.Interval)
	require.True(t, ok, "want an interval, got %T", v)
	require.Zero(t, iv.Months)
	return time.Duration(iv.Days)*24*time.Hour + time.Duration(iv.Microseconds)*time.Microsecond
}

func deliveryStatus(t *testing.T, tx pgx.Tx, id uuid.UUID) string {
	t.Helper()
	var s string
	require.NoError(t, tx.QueryRow(context.Background(), `SELECT status FROM webhook_deliveries WHERE id = $1`, id).Scan(&s))
	return s
}

// seedRunbookMoney gives the review and provider_events statements their
// data, through the real provider path: a Stripe success for the wrong
// amount, an event for a PaymentIntent nobody has, and a Moneroo payout
// reported failed after it succeeded. Its merchant has no endpoint, so the
// delivery statements see nothing new.
func seedRunbookMoney(t *testing.T, store *db.Store) {
	t.Helper()
	ctx := context.Background()
	nm, err := store.MerchantCreate(ctx, "Kribi Market", "")
	require.NoError(t, err)
	pi, po := "pi_3QPmY2Lkdi0aZb1xRunbk", "po_runbook_1"
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := store.PaymentCreateTx(ctx, tx, db.PaymentCreateParams{MerchantID: nm.Merchant.ID, Amount: 5000,
			Currency: "XAF", Gateway: "stripe", ProviderReference: &pi}); err != nil {
			return err
		}
		phone := "+24166000000"
		_, err := store.PayoutCreateTx(ctx, tx, db.PayoutCreateParams{MerchantID: nm.Merchant.ID, Amount: 20000,
			Currency: "XAF", Provider: "moneroo", ProviderReference: &po, Recipient: db.Recipient{Phone: &phone}})
		return err
	}))
	apply := func(in db.ProviderEventInput, want string) {
		t.Helper()
		in.Payload = []byte(`{}`)
		res, err := store.ProviderEventApply(ctx, &in)
		require.NoError(t, err)
		require.Equal(t, want, res.Outcome)
	}
	stripe := func(key, ref, amount string) db.ProviderEventInput {
		return db.ProviderEventInput{Provider: "stripe", Key: key, Type: "payment_intent.succeeded", Object: db.ObjectPayment,
			Action: db.ProviderActionSucceed, Ref: ref, Currency: "xaf", Unit: db.UnitMinor, Amount: amount}
	}
	moneroo := func(event, action string) db.ProviderEventInput {
		return db.ProviderEventInput{Provider: "moneroo", Key: po + ":" + event, Type: event, Object: db.ObjectPayout,
			Action: action, Ref: po, Currency: "XAF", Unit: db.UnitMajor, Amount: "20000"}
	}
	apply(stripe("evt_runbook_1", pi, "500"), db.OutcomeAmountMismatch)
	apply(stripe("evt_runbook_2", "pi_3QPmY2Lkdi0aZb1xNobody", "5000"), db.OutcomeUnmatched)
	apply(moneroo("payout.success", db.ProviderActionSucceed), db.OutcomeApplied)
	apply(moneroo("payout.failed", db.ProviderActionFail), db.OutcomeConflict)
}
