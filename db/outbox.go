package db

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// The outbox: what an event turns into. In the event's transaction, one
// webhook_deliveries row per matching endpoint and one River job per row;
// the jobs package works them. The delivery queue's tuning lives here too,
// beside the insert it paces, so the service and the bench's baselines
// (bench/baseline.go) use the same numbers.
const (
	// DeliveryQueue is the River queue delivery jobs run in, apart from
	// other jobs, so the workers can poll it often without polling
	// everything else that often.
	DeliveryQueue = "webhooks"
	// DeliveryWorkers is the delivery concurrency per process (WORKERS' default).
	DeliveryWorkers = 100
	// DeliveryFetchPollInterval is how often the delivery queue is polled:
	// a due retry waits at most this long past River's notifications.
	DeliveryFetchPollInterval = 100 * time.Millisecond
	// DeliveryFetchCooldown is the least time between two fetches of the
	// delivery queue. River's default (100 ms) would hold a freshly
	// committed event back for up to that long.
	DeliveryFetchCooldown = 5 * time.Millisecond
	// DeliveryNotifyCooldown paces the inserting client's notifications to
	// the workers (at most one per queue per cooldown); River's 100 ms
	// default would put up to 100 ms between a commit and its delivery.
	DeliveryNotifyCooldown = time.Millisecond
)

// DeliveryArgs is the River job that delivers one webhook_deliveries row.
// It carries ids only: the body lives in our tables, not in River's
// GIN-indexed args. The merchant's id lets the worker take the merchant's
// slot before it reads or claims anything (jobs inserted before it was
// added carry none, and the worker reads it first). Inserted here, by the
// outbox; worked by jobs.
type DeliveryArgs struct {
	DeliveryID uuid.UUID `json:"delivery_id"`
	MerchantID uuid.UUID `json:"merchant_id"`
	// RetryAt is not stored: a run that recorded a failed attempt sets it
	// to the retry's due time, for the worker's NextRetry, which River
	// calls with the same job right after the run.
	RetryAt time.Time `json:"-"`
}

// Kind is the River job kind.
func (DeliveryArgs) Kind() string { return "webhook_delivery" }

// InsertOpts puts delivery jobs in DeliveryQueue. MaxAttempts is far above
// any retry schedule: the worker, not River, decides from its schedule when a
// delivery has FAILED, so River never discards a delivery job on its own.
func (DeliveryArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: DeliveryQueue, MaxAttempts: 100}
}

// eventEmitTx records an event and fans it out, all in tx: one delivery
// (and its River job) per enabled endpoint of the merchant whose
// enabled_events match typ. Either the status change, the event, its
// deliveries and their jobs commit together, or none does. With no matching
// endpoint the event is recorded and nothing is delivered. objectID is
// uuid.Nil for events about no object; data is the body's "data".
func (s *Store) eventEmitTx(ctx context.Context, tx pgx.Tx, merchantID uuid.UUID, typ string, objectID uuid.UUID, data any) (*Event, error) {
	e, endpoints, err := s.eventInsertTx(ctx, tx, merchantID, typ, objectID, data, true)
	if err != nil || len(endpoints) == 0 {
		return e, err
	}
	if _, err := s.deliveriesCreateTx(ctx, tx, []*Event{e}, endpoints); err != nil {
		return nil, err
	}
	return e, nil
}

// deliveriesCreateTx inserts one PENDING delivery per (events[i],
// endpoints[i]) and its River job, in tx; events has one entry, or one per
// endpoint. It returns the deliveries' ids.
func (s *Store) deliveriesCreateTx(ctx context.Context, tx pgx.Tx, events []*Event, endpoints []uuid.UUID) ([]uuid.UUID, error) {
	n := len(endpoints)
	ids := make([]uuid.UUID, n)
	eventOf := func(i int) *Event {
		if len(events) == 1 {
			return events[0]
		}
		return events[i]
	}
	for i := range ids {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	jobIDs := make([]int64, n)
	if n == 1 {
		res, err := s.river.InsertTx(ctx, tx, DeliveryArgs{DeliveryID: ids[0], MerchantID: eventOf(0).MerchantID}, nil)
		if err != nil {
			return nil, fmt.Errorf("inserting delivery job: %w", err)
		}
		jobIDs[0] = res.Job.ID
	} else {
		params := make([]river.InsertManyParams, n)
		for i, id := range ids {
			params[i] = river.InsertManyParams{Args: DeliveryArgs{DeliveryID: id, MerchantID: eventOf(i).MerchantID}}
		}
		res, err := s.river.InsertManyTx(ctx, tx, params)
		if err != nil {
			return nil, fmt.Errorf("inserting delivery jobs: %w", err)
		}
		for i, r := range res {
			jobIDs[i] = r.Job.ID
		}
	}
	if n == 1 {
		e := eventOf(0)
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries
				(id, merchant_id, event_id, event_type, payload, status, next_retry_at, job_id, endpoint_id, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, 'PENDING', now(), $6, $7, now(), now())`,
			ids[0], e.MerchantID, e.ID, e.Type, string(e.Payload), jobIDs[0], endpoints[0]); err != nil {
			return nil, fmt.Errorf("inserting delivery: %w", err)
		}
		return ids, nil
	}
	eventIDs := make([]uuid.UUID, n)
	for i := range eventIDs {
		eventIDs[i] = eventOf(i).ID
	}
	// The payload is copied from events in SQL: one statement whatever n.
	if _, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries
			(id, merchant_id, event_id, event_type, payload, status, next_retry_at, job_id, endpoint_id, created_at, updated_at)
		SELECT u.id, ev.merchant_id, ev.id, ev.type, ev.payload, 'PENDING', now(), u.job_id, u.endpoint_id, now(), now()
		FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[]) AS u(id, event_id, job_id, endpoint_id)
		JOIN events ev ON ev.id = u.event_id`, ids, eventIDs, jobIDs, endpoints); err != nil {
		return nil, fmt.Errorf("inserting deliveries: %w", err)
	}
	return ids, nil
}
