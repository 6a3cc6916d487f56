package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// Delivery statuses, as operators read and write them in webhook_deliveries.
const (
	DeliveryPending    = "PENDING"    // due at next_retry_at
	DeliveryProcessing = "PROCESSING" // an attempt is in flight
	DeliverySucceeded  = "SUCCEEDED"
	DeliveryFailed     = "FAILED" // every attempt of the cycle failed
)

// DeliveryStatuses lists every status, for validating filters.
var DeliveryStatuses = []string{DeliveryPending, DeliveryProcessing, DeliverySucceeded, DeliveryFailed}

// Delivery is one row of the webhook_deliveries ledger: one event on its way
// to one merchant's endpoint. Payload holds the exact bytes sent and signed.
type Delivery struct {
	ID             uuid.UUID       `db:"id"`
	MerchantID     uuid.UUID       `db:"merchant_id"`
	EventID        uuid.UUID       `db:"event_id"`
	EventType      string          `db:"event_type"`
	Payload        json.RawMessage `db:"payload"`
	Status         string          `db:"status"`
	Attempts       int             `db:"attempts"`
	LastAttemptAt  *time.Time      `db:"last_attempt_at"`
	NextRetryAt    *time.Time      `db:"next_retry_at"`
	HTTPStatusCode *int            `db:"http_status_code"`
	ErrorMessage   *string         `db:"error_message"`
	DeliveredAt    *time.Time      `db:"delivered_at"`
	JobID          *int64          `db:"job_id"` // the River job of the current delivery cycle
	EndpointID     *uuid.UUID      `db:"endpoint_id"`
	// CycleAttempts counts the current fast cycle's recorded attempts;
	// past 1 + WEBHOOK_MAX_RETRIES, attempts are the recovery tail's, and
	// RecoveryAttempts counts those.
	CycleAttempts    int       `db:"cycle_attempts"`
	RecoveryAttempts int       `db:"recovery_attempts"`
	CreatedAt        time.Time `db:"created_at"`
	UpdatedAt        time.Time `db:"updated_at"`

	// AttemptLog is filled by DeliveryGet and DeliveryList only.
	AttemptLog []*DeliveryAttempt `db:"-"`
}

// DeliveryAttempt is one row of webhook_delivery_attempts: one HTTP attempt.
type DeliveryAttempt struct {
	Attempt      int       `json:"attempt"`
	StatusCode   *int      `json:"status_code"`
	DurationMS   int       `json:"duration_ms"`
	Error        *string   `json:"error"`
	ResponseBody *string   `json:"response_body"`
	CreatedAt    time.Time `json:"created_at"`
}

// MarshalJSON renders a delivery for the API. The ledger's attempts counter
// is attempt_count, because attempts is the list of attempts.
func (d *Delivery) MarshalJSON() ([]byte, error) {
	log := d.AttemptLog
	if log == nil {
		log = []*DeliveryAttempt{}
	}
	return json.Marshal(struct {
		ID             uuid.UUID          `json:"id"`
		Object         string             `json:"object"`
		EndpointID     *uuid.UUID         `json:"endpoint_id"`
		EventID        uuid.UUID          `json:"event_id"`
		EventType      string             `json:"event_type"`
		Status         string             `json:"status"`
		AttemptCount   int                `json:"attempt_count"`
		LastAttemptAt  *time.Time         `json:"last_attempt_at"`
		NextRetryAt    *time.Time         `json:"next_retry_at"`
		HTTPStatusCode *int               `json:"http_status_code"`
		ErrorMessage   *string            `json:"error_message"`
		DeliveredAt    *time.Time         `json:"delivered_at"`
		Payload        json.RawMessage    `json:"payload"`
		Attempts       []*DeliveryAttempt `json:"attempts"`
		CreatedAt      time.Time          `json:"created_at"`
		UpdatedAt      time.Time          `json:"updated_at"`
	}{d.ID, "webhook_delivery", d.EndpointID, d.EventID, d.EventType, d.Status, d.Attempts, d.LastAttemptAt, d.NextRetryAt,
		d.HTTPStatusCode, d.ErrorMessage, d.DeliveredAt, d.Payload, log, d.CreatedAt, d.UpdatedAt})
}

var deliveryColumns = columnsOf[Delivery]()

func scanDelivery(row pgx.Row, extra ...any) (*Delivery, error) {
	var d Delivery
	if err := row.Scan(deliveryColumns.dest(&d, extra...)...); err != nil {
		return nil, notFound(err)
	}
	return &d, nil
}

// DeliveryGet returns a merchant's delivery with its attempts, or ErrNotFound.
func (s *Store) DeliveryGet(ctx context.Context, merchantID, id uuid.UUID) (*Delivery, error) {
	d, err := scanDelivery(s.Pool.QueryRow(ctx, `SELECT `+deliveryColumns.String()+` FROM webhook_deliveries
		WHERE id = $1 AND merchant_id = $2`, id, merchantID))
	if err != nil {
		return nil, err
	}
	if err := s.deliveryAttachAttempts(ctx, s.Pool, []*Delivery{d}); err != nil {
		return nil, err
	}
	return d, nil
}

// DeliveryList returns a page of a merchant's deliveries with their
// attempts, newest first (Filter: status; Where: endpoint_id, event_id).
func (s *Store) DeliveryList(ctx context.Context, merchantID uuid.UUID, params ListParams) ([]*Delivery, bool, error) {
	items, hasMore, err := list(ctx, s, "webhook_deliveries", deliveryColumns.String(), merchantID, params, "status",
		func(row pgx.CollectableRow) (*Delivery, error) { return scanDelivery(row) })
	if err != nil {
		return nil, false, err
	}
	if err := s.deliveryAttachAttempts(ctx, s.Pool, items); err != nil {
		return nil, false, err
	}
	return items, hasMore, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// deliveryAttachAttempts loads the attempts of ds in one query.
func (s *Store) deliveryAttachAttempts(ctx context.Context, q querier, ds []*Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	byID := make(map[uuid.UUID]*Delivery, len(ds))
	ids := make([]uuid.UUID, len(ds))
	for i, d := range ds {
		byID[d.ID] = d
		ids[i] = d.ID
		d.AttemptLog = []*DeliveryAttempt{}
	}
	rows, err := q.Query(ctx, `SELECT delivery_id, attempt, status_code, duration_ms, error, response_body, created_at
		FROM webhook_delivery_attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, id`, ids)
	if err != nil {
		return fmt.Errorf("listing delivery attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var a DeliveryAttempt
		if err := rows.Scan(&id, &a.Attempt, &a.StatusCode, &a.DurationMS, &a.Error, &a.ResponseBody, &a.CreatedAt); err != nil {
			return fmt.Errorf("listing delivery attempts: %w", err)
		}
		byID[id].AttemptLog = append(byID[id].AttemptLog, &a)
	}
	return rows.Err()
}

// DeliveryRetry starts a fresh delivery cycle for a SUCCEEDED or FAILED
// delivery: in one transaction it resets the row to PENDING, due now, and
// inserts the cycle's River job. The total attempts count and the attempt
// history are kept.
//
// Returns ErrNotFound, or an EConflict error while the delivery is still
// PENDING or PROCESSING (its current cycle is not over).
func (s *Store) DeliveryRetry(ctx context.Context, merchantID, id uuid.UUID) (*Delivery, error) {
	var d *Delivery
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var status string
		err := tx.QueryRow(ctx, `SELECT status FROM webhook_deliveries WHERE id = $1 AND merchant_id = $2 FOR UPDATE`,
			id, merchantID).Scan(&status)
		if err != nil {
			return notFound(err)
		}
		if status != DeliverySucceeded && status != DeliveryFailed {
			return &Error{Code: EConflict, Message: fmt.Sprintf(
				"the delivery is %s: only a SUCCEEDED or FAILED delivery can be retried", status)}
		}
		res, err := s.river.InsertTx(ctx, tx, DeliveryArgs{DeliveryID: id, MerchantID: merchantID}, nil)
		if err != nil {
			return fmt.Errorf("inserting delivery job: %w", err)
		}
		d, err = scanDelivery(tx.QueryRow(ctx, `UPDATE webhook_deliveries
			SET status = 'PENDING', next_retry_at = now(), delivered_at = NULL, job_id = $2, updated_at = now()
			WHERE id = $1 RETURNING `+deliveryColumns.String(), id, res.Job.ID))
		if err != nil {
			return fmt.Errorf("resetting delivery %s: %w", id, err)
		}
		return s.deliveryAttachAttempts(ctx, tx, []*Delivery{d})
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// DeliveryTarget is what the worker needs for one attempt: the delivery and
// its endpoint as it is now (not as it was at event time).
type DeliveryTarget struct {
	Delivery *Delivery
	URL      string
	// EndpointState is the endpoint's status (enabled, disabled), or
	// "deleted" when it was deleted or the merchant has none.
	EndpointState string
	// Secret signs the attempt; Previous too while its rotation grace
	// period lasts. Both empty for an unsigned endpoint (set by SQL
	// without a secret).
	Secret, Previous string
}

// EndpointDeleted is DeliveryTarget.EndpointState for a gone endpoint.
const EndpointDeleted = "deleted"

// DeliveryTargetMany reads deliveries with their endpoints' current URL,
// state and signing secrets: one target per id, in order, nil for a
// delivery that does not exist. It writes nothing: whether a job may send
// is DeliveryTarget.SendableBy, and a slow attempt is marked PROCESSING by
// DeliveryMarkProcessingMany.
//
// One statement for many workers' reads (the jobs package batches them as
// it batches successes' outcomes). Deliveries used to be claimed here too
// (PROCESSING, one statement each, then one per batch): that write, a
// non-HOT update of every index of the ledger, and the wait for its commit
// were the largest part of a delivery's cost (docs/BENCHMARKS.md), for a
// status that lasted a few milliseconds.
func (s *Store) DeliveryTargetMany(ctx context.Context, ids []uuid.UUID) ([]*DeliveryTarget, error) {
	rows, err := s.Pool.Query(ctx, deliveryTargetSQL, ids)
	if err != nil {
		return nil, fmt.Errorf("reading %d deliveries: %w", len(ids), err)
	}
	defer rows.Close()
	out := make([]*DeliveryTarget, len(ids))
	for rows.Next() {
		var url, state, secret, previous *string
		var i int
		d, err := scanDelivery(rows, &url, &state, &secret, &previous, &i)
		if err != nil {
			return nil, fmt.Errorf("reading %d deliveries: %w", len(ids), err)
		}
		t := &DeliveryTarget{Delivery: d, EndpointState: EndpointDeleted}
		if state != nil {
			t.EndpointState = *state
		}
		if url != nil {
			t.URL = *url
		}
		if secret != nil {
			t.Secret = *secret
		}
		if previous != nil {
			t.Previous = *previous
		}
		out[i-1] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading %d deliveries: %w", len(ids), err)
	}
	return out, nil
}

// deliveryTargetSQL: each requested row, numbered from 1, with its endpoint.
var deliveryTargetSQL = `SELECT ` + deliveryColumns.Of("d") + `,
		e.url, CASE WHEN e.deleted_at IS NULL THEN e.status END, e.secret,
		CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END,
		u.n
	FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)
	JOIN webhook_deliveries d ON d.id = u.id
	LEFT JOIN webhook_endpoints e ON e.id = d.endpoint_id`

// SendableBy reports whether job jobID may make an attempt at t's delivery
// now (dueBy: the caller's clock plus its slack): the job owns the row's
// cycle (job_id); the row is PENDING or PROCESSING, or FAILED with a
// recovery attempt scheduled; it is due by dueBy; and its endpoint is
// enabled.
func (t *DeliveryTarget) SendableBy(jobID int64, dueBy time.Time) bool {
	d := t.Delivery
	return d.JobID != nil && *d.JobID == jobID && t.EndpointState == EndpointEnabled &&
		d.Status != DeliverySucceeded && !(d.Status == DeliveryFailed && d.NextRetryAt == nil) &&
		(d.NextRetryAt == nil || !d.NextRetryAt.After(dueBy))
}

// ProcessingMark names an attempt that is still in flight: the delivery,
// the job making it, the ledger's attempts count when it started, and when.
type ProcessingMark struct {
	DeliveryID    uuid.UUID
	JobID         int64
	PriorAttempts int
	StartedAt     time.Time
}

// DeliveryMarkProcessingMany marks deliveries whose attempt has been in
// flight for a while PROCESSING, with last_attempt_at its start, so that
// operators see what a slow or hanging endpoint holds. Only rows still
// where the attempt found them are marked (the job's cycle, the same
// attempts count, not SUCCEEDED): a mark that comes after the attempt's
// outcome changes nothing. Its commit does not wait for its WAL flush: a
// mark lost to a crash leaves the row as it was before the attempt, and
// the sweep and River's rescue treat both alike. It returns one empty
// value per mark.
func (s *Store) DeliveryMarkProcessingMany(ctx context.Context, marks []ProcessingMark) ([]struct{}, error) {
	n := len(marks)
	ids, jobIDs, prior, started := make([]uuid.UUID, n), make([]int64, n), make([]int32, n), make([]time.Time, n)
	for i, m := range marks {
		ids[i], jobIDs[i], prior[i], started[i] = m.DeliveryID, m.JobID, int32(m.PriorAttempts), m.StartedAt
	}
	_, err := s.Pool.Exec(ctx, `WITH async AS (SELECT set_config('synchronous_commit', 'off', true)),
		u AS (SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::int[], $4::timestamptz[]) AS u(id, job_id, prior, started))
		UPDATE webhook_deliveries d SET status = 'PROCESSING', last_attempt_at = u.started, updated_at = now()
		FROM u, async
		WHERE d.id = u.id AND d.job_id = u.job_id AND d.attempts = u.prior AND d.status IN ('PENDING', 'FAILED')`,
		ids, jobIDs, prior, started)
	if err != nil {
		return nil, fmt.Errorf("marking %d deliveries PROCESSING: %w", n, err)
	}
	return make([]struct{}, n), nil
}

// DeliveryEndUnsent ends a delivery of job jobID FAILED without an attempt,
// because its endpoint was disabled or deleted. It reports false when the
// row is no longer this job's.
func (s *Store) DeliveryEndUnsent(ctx context.Context, id uuid.UUID, jobID int64, endpointState string) (bool, error) {
	msg := errEndpointDisabled
	if endpointState == EndpointDeleted {
		msg = errEndpointDeleted
	}
	tag, err := s.Pool.Exec(ctx, `UPDATE webhook_deliveries
		SET status = 'FAILED', next_retry_at = NULL, error_message = $3, updated_at = now()
		WHERE id = $1 AND job_id = $2 AND status <> 'SUCCEEDED'`, id, jobID, msg)
	if err != nil {
		return false, fmt.Errorf("ending delivery %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// AttemptRecord is the outcome of one attempt and the status it leads to.
type AttemptRecord struct {
	DeliveryID uuid.UUID
	JobID      int64
	Status     string // SUCCEEDED, PENDING (a retry is due at NextRetryAt) or FAILED
	// NextRetryAt is when the next attempt is due: a fast retry (PENDING),
	// or a recovery attempt (FAILED); nil when none is left.
	NextRetryAt *time.Time
	// PriorAttempts is the ledger's attempts before this one: the write
	// applies only on top of it, so an attempt is never counted twice.
	PriorAttempts int
	// Recovery marks an attempt of the recovery tail, not of the fast cycle.
	Recovery bool
	// StartedAt is when the attempt started: the row's last_attempt_at.
	StartedAt time.Time
	// DisableAfter disables the endpoint when this attempt failed and every
	// attempt has failed for this long (WEBHOOK_DISABLE_AFTER); 0 never does.
	DisableAfter time.Duration
	StatusCode   *int // nil when no response came
	Duration     time.Duration
	Error        *string // nil on success
	ResponseBody *string // the first 1 KiB
}

// AttemptResult is what recording an attempt did.
type AttemptResult struct {
	Recorded bool // false: the row was no longer the job's, nothing was written
	// EndpointDisabled: this failure disabled the endpoint, and its
	// unfinished deliveries, this one included, ended FAILED.
	EndpointDisabled bool
}

// DeliveryRecordAttemptTx writes one attempt's outcome in tx: the ledger
// row (attempt counters, status, the last status code and error,
// delivered_at or next_retry_at), its webhook_delivery_attempts row, and
// the endpoint's health: a success ends its failure streak; a failure
// starts one, or, when the streak has lasted DisableAfter, disables the
// endpoint and ends its unfinished deliveries FAILED ("endpoint disabled").
func (s *Store) DeliveryRecordAttemptTx(ctx context.Context, tx pgx.Tx, r AttemptRecord) (AttemptResult, error) {
	var res AttemptResult
	var endpointID *uuid.UUID
	// One statement: the ledger row, its attempt row and, on a success,
	// the end of the endpoint's failure streak (which writes only when
	// there is one, so a busy endpoint's row is not locked by every
	// attempt).
	err := tx.QueryRow(ctx, `WITH d AS (
			UPDATE webhook_deliveries SET
				status = $3,
				attempts = attempts + 1,
				cycle_attempts = cycle_attempts + CASE WHEN $7 THEN 0 ELSE 1 END,
				recovery_attempts = recovery_attempts + CASE WHEN $7 THEN 1 ELSE 0 END,
				next_retry_at = $4,
				last_attempt_at = $11,
				http_status_code = $5,
				error_message = $6,
				delivered_at = CASE WHEN $3 = 'SUCCEEDED' THEN now() ELSE delivered_at END,
				updated_at = now()
			WHERE id = $1 AND job_id = $2 AND attempts = $8
			RETURNING id, attempts, endpoint_id
		), attempt AS (
			INSERT INTO webhook_delivery_attempts (delivery_id, attempt, status_code, duration_ms, error, response_body)
			SELECT id, attempts, $5, $9, $6, $10 FROM d
		), healthy AS (
			UPDATE webhook_endpoints SET failing_since = NULL, updated_at = now()
			WHERE $3 = 'SUCCEEDED' AND id = (SELECT endpoint_id FROM d) AND failing_since IS NOT NULL
		)
		SELECT endpoint_id FROM d`,
		r.DeliveryID, r.JobID, r.Status, r.NextRetryAt, r.StatusCode, r.Error, r.Recovery, r.PriorAttempts,
		r.Duration.Milliseconds(), r.ResponseBody, r.StartedAt).Scan(&endpointID)
	if err != nil {
		if notFound(err) == ErrNotFound {
			return res, nil
		}
		return res, fmt.Errorf("recording attempt of delivery %s: %w", r.DeliveryID, err)
	}
	res.Recorded = true
	if endpointID == nil || r.Status == DeliverySucceeded {
		return res, nil
	}
	// A failure starts the endpoint's failure streak, or, once the streak
	// has lasted DisableAfter, disables the endpoint.
	err = tx.QueryRow(ctx, `UPDATE webhook_endpoints SET
			failing_since = coalesce(failing_since, now()),
			status = CASE WHEN failing_since IS NULL THEN status ELSE 'disabled' END,
			disabled_reason = CASE WHEN failing_since IS NULL THEN disabled_reason ELSE 'failing' END,
			updated_at = now()
		WHERE id = $1 AND (failing_since IS NULL
			OR (status = 'enabled' AND $2::bigint > 0 AND failing_since <= now() - $2::bigint * interval '1 microsecond'))
		RETURNING status = 'disabled' AND failing_since < now()`, *endpointID, r.DisableAfter.Microseconds()).Scan(&res.EndpointDisabled)
	if err != nil && notFound(err) != ErrNotFound {
		return res, fmt.Errorf("recording failure streak of endpoint %s: %w", *endpointID, err)
	}
	if res.EndpointDisabled {
		return res, endpointEndDeliveriesTx(ctx, tx, *endpointID, errEndpointDisabled)
	}
	return res, nil
}

// DeliveryRecordSucceededMany writes the outcomes of successful attempts
// (Status SUCCEEDED), in one transaction and one statement whatever their
// number: what DeliveryRecordAttemptTx writes for a success, for each, so
// that many workers' ledger writes share one commit (and one WAL flush).
// Only successes are written this way: a failure's write decides when its
// retry runs and may disable an endpoint, and goes alone. It returns, per
// record, whether it was written (false: the row was no longer the job's).
func (s *Store) DeliveryRecordSucceededMany(ctx context.Context, recs []AttemptRecord) ([]bool, error) {
	n := len(recs)
	ids, jobIDs, prior := make([]uuid.UUID, n), make([]int64, n), make([]int32, n)
	codes, durations, started := make([]*int32, n), make([]int64, n), make([]time.Time, n)
	recovery, bodies := make([]bool, n), make([]*string, n)
	for i, r := range recs {
		if r.Status != DeliverySucceeded {
			return nil, fmt.Errorf("recording attempt of delivery %s: %s is not a success", r.DeliveryID, r.Status)
		}
		ids[i], jobIDs[i], prior[i] = r.DeliveryID, r.JobID, int32(r.PriorAttempts)
		if r.StatusCode != nil {
			c := int32(*r.StatusCode)
			codes[i] = &c
		}
		durations[i], recovery[i], bodies[i], started[i] = r.Duration.Milliseconds(), r.Recovery, r.ResponseBody, r.StartedAt
	}
	var written []uuid.UUID
	err := s.InTxRetrying(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `WITH u AS (
				SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::int[], $4::int[], $5::bigint[], $6::bool[], $7::text[],
						$8::timestamptz[])
					AS u(id, job_id, prior, status_code, duration_ms, recovery, body, started)),
			d AS (UPDATE webhook_deliveries d SET
					status = 'SUCCEEDED',
					attempts = d.attempts + 1,
					cycle_attempts = d.cycle_attempts + CASE WHEN u.recovery THEN 0 ELSE 1 END,
					recovery_attempts = d.recovery_attempts + CASE WHEN u.recovery THEN 1 ELSE 0 END,
					next_retry_at = NULL,
					last_attempt_at = u.started,
					http_status_code = u.status_code,
					error_message = NULL,
					delivered_at = now(),
					updated_at = now()
				FROM u
				WHERE d.id = u.id AND d.job_id = u.job_id AND d.attempts = u.prior
				RETURNING d.id, d.attempts, d.endpoint_id),
			a AS (INSERT INTO webhook_delivery_attempts (delivery_id, attempt, status_code, duration_ms, response_body)
				SELECT d.id, d.attempts, u.status_code, u.duration_ms, u.body FROM d JOIN u ON u.id = d.id),
			-- A success ends its endpoint's failure streak; written only
			-- when there is one, so a busy endpoint's row is not locked by
			-- every batch.
			e AS (UPDATE webhook_endpoints SET failing_since = NULL, updated_at = now()
				WHERE id IN (SELECT endpoint_id FROM d) AND failing_since IS NOT NULL)
			SELECT id FROM d`, ids, jobIDs, prior, codes, durations, recovery, bodies, started)
		if err != nil {
			return err
		}
		written, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("recording %d successful attempts: %w", n, err)
	}
	done := make(map[uuid.UUID]bool, len(written))
	for _, id := range written {
		done[id] = true
	}
	out := make([]bool, n)
	for i, id := range ids {
		out[i] = done[id]
	}
	return out, nil
}

// DeliverySweepSQL selects the sweep's candidates ($1: the batch size). Its
// WHERE is webhook_deliveries_sweep_idx's predicate, so its cost follows the
// rows in flight, not the ledger's size (the bench's growth mode shows its
// plan).
const DeliverySweepSQL = `SELECT d.id, d.merchant_id, d.job_id FROM webhook_deliveries d
		WHERE (d.status IN ('PENDING', 'PROCESSING') OR (d.status = 'FAILED' AND d.next_retry_at IS NOT NULL))
			AND (d.status = 'PROCESSING' OR d.next_retry_at IS NULL OR d.next_retry_at <= now())
			AND NOT EXISTS (SELECT 1 FROM river_job j WHERE j.id = d.job_id
				AND j.state NOT IN ('completed', 'cancelled', 'discarded'))
		ORDER BY d.next_retry_at
		LIMIT $1
		FOR UPDATE OF d SKIP LOCKED`

// DeliverySweepBatch runs DeliverySweepBatchTx in its own transaction.
func (s *Store) DeliverySweepBatch(ctx context.Context, limit int) (enqueued int, full bool, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		enqueued, full, err = s.DeliverySweepBatchTx(ctx, tx, limit)
		return err
	})
	return enqueued, full, err
}

// DeliverySweepBatchTx gives up to limit deliveries that need a job one, in
// tx: PENDING rows that are due (operator replays, rows written by SQL,
// orphans), FAILED rows whose recovery attempt is due, and PROCESSING rows,
// whose job is gone (no river_job row, or one that is completed, cancelled
// or discarded). Each gets a new River job (InsertManyTx, in tx);
// PROCESSING rows go back to PENDING, due now; FAILED rows stay FAILED (the
// worker makes their one recovery attempt).
// Rows are locked FOR UPDATE SKIP LOCKED, so concurrent sweepers split the
// work and never give one row two jobs. It returns how many jobs it
// inserted, and whether the batch was full (there may be more).
func (s *Store) DeliverySweepBatchTx(ctx context.Context, tx pgx.Tx, limit int) (enqueued int, full bool, err error) {
	rows, err := tx.Query(ctx, DeliverySweepSQL, limit)
	if err != nil {
		return 0, false, fmt.Errorf("selecting deliveries to sweep: %w", err)
	}
	type candidate struct {
		id, merchantID uuid.UUID
		jobID          *int64
	}
	candidates, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (candidate, error) {
		var c candidate
		return c, row.Scan(&c.id, &c.merchantID, &c.jobID)
	})
	if err != nil {
		return 0, false, fmt.Errorf("selecting deliveries to sweep: %w", err)
	}
	full = len(candidates) == limit
	if len(candidates) == 0 {
		return 0, false, nil
	}
	// The NOT EXISTS above ran on the statement's snapshot. A row that
	// another sweeper gave a job and committed while this statement waited
	// comes back locked but with the other sweeper's job_id, whose river_job
	// row that snapshot could not see. Now that the rows are locked, look
	// again in a new statement (a new snapshot) and drop the live ones.
	jobIDs := make([]int64, 0, len(candidates))
	for _, c := range candidates {
		if c.jobID != nil {
			jobIDs = append(jobIDs, *c.jobID)
		}
	}
	live := map[int64]bool{}
	if len(jobIDs) > 0 {
		rows, err := tx.Query(ctx, `SELECT id FROM river_job WHERE id = ANY($1)
			AND state NOT IN ('completed', 'cancelled', 'discarded')`, jobIDs)
		if err != nil {
			return 0, false, fmt.Errorf("checking sweep candidates' jobs: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return 0, false, fmt.Errorf("checking sweep candidates' jobs: %w", err)
		}
		for _, id := range ids {
			live[id] = true
		}
	}
	var ids []uuid.UUID
	var params []river.InsertManyParams
	for _, c := range candidates {
		if c.jobID != nil && live[*c.jobID] {
			continue
		}
		ids = append(ids, c.id)
		params = append(params, river.InsertManyParams{Args: DeliveryArgs{DeliveryID: c.id, MerchantID: c.merchantID}})
	}
	if len(params) == 0 {
		return 0, full, nil
	}
	res, err := s.river.InsertManyTx(ctx, tx, params)
	if err != nil {
		return 0, false, fmt.Errorf("inserting sweep jobs: %w", err)
	}
	newJobIDs := make([]int64, len(res))
	for i, r := range res {
		newJobIDs[i] = r.Job.ID
	}
	if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries d SET job_id = u.job_id,
			status = CASE WHEN d.status = 'FAILED' THEN 'FAILED' ELSE 'PENDING' END,
			next_retry_at = CASE WHEN d.status = 'PROCESSING' OR d.next_retry_at IS NULL THEN now() ELSE d.next_retry_at END,
			updated_at = now()
		FROM unnest($1::uuid[], $2::bigint[]) AS u(id, job_id)
		WHERE d.id = u.id`, ids, newJobIDs); err != nil {
		return 0, false, fmt.Errorf("attaching sweep jobs: %w", err)
	}
	return len(params), full, nil
}
