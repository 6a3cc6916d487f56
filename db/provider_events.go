package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Results of a provider event, as provider_events.result records them.
const (
	ProviderEventApplied           = "applied"            // the status changed
	ProviderEventUnchanged         = "unchanged"          // already in that status
	ProviderEventIgnored           = "ignored"            // an event we do not act on
	ProviderEventInvalidTransition = "invalid_transition" // refused by the state machine
	ProviderEventAmountMismatch    = "amount_mismatch"    // the provider's amount is not the payment's
)

// ProviderEvent is one authentic inbound provider call, kept raw.
type ProviderEvent struct {
	ID         int64
	Provider   string
	EventKey   string
	EventType  string
	ObjectType *string
	ObjectID   *uuid.UUID
	Result     string
	Detail     *string
	Payload    string
	ReceivedAt time.Time
}

// ProviderEventCreateParams describe an inbound provider call.
type ProviderEventCreateParams struct {
	Provider   string
	EventKey   string // unique per provider: what makes a replay a replay
	EventType  string
	ObjectType string    // "payment", "payout", or "" when the event concerns none of ours
	ObjectID   uuid.UUID // uuid.Nil when ObjectType is ""
	Payload    []byte    // the raw body; valid UTF-8 without NUL (Postgres text)
}

// ProviderEventCreateTx records a provider event in tx, its result still
// 'received' until ProviderEventSetResultTx. When (provider, event_key) is
// already recorded it inserts nothing and returns created=false: a replay,
// or a concurrent duplicate, whose insert the unique index holds until the
// first transaction ends (and which then sees the first one's row).
func (s *Store) ProviderEventCreateTx(ctx context.Context, tx pgx.Tx, params ProviderEventCreateParams) (id int64, created bool, err error) {
	var objectType *string
	var objectID *uuid.UUID
	if params.ObjectType != "" {
		objectType, objectID = &params.ObjectType, &params.ObjectID
	}
	err = tx.QueryRow(ctx, `INSERT INTO provider_events (provider, event_key, event_type, object_type, object_id, result, payload)
		VALUES ($1, $2, $3, $4, $5, 'received', $6)
		ON CONFLICT (provider, event_key) DO NOTHING
		RETURNING id`,
		params.Provider, params.EventKey, params.EventType, objectType, objectID, string(params.Payload)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("recording %s event %q: %w", params.Provider, params.EventKey, err)
	}
	return id, true, nil
}

// ProviderEventSetResultTx records, in tx, what the event did.
func (s *Store) ProviderEventSetResultTx(ctx context.Context, tx pgx.Tx, id int64, result string, detail *string) error {
	if _, err := tx.Exec(ctx, `UPDATE provider_events SET result = $2, detail = $3 WHERE id = $1`, id, result, detail); err != nil {
		return fmt.Errorf("recording result of provider event %d: %w", id, err)
	}
	return nil
}

// ProviderEventGet returns the event recorded for (provider, key), or ErrNotFound.
func (s *Store) ProviderEventGet(ctx context.Context, provider, key string) (*ProviderEvent, error) {
	var e ProviderEvent
	err := s.Pool.QueryRow(ctx, `SELECT id, provider, event_key, event_type, object_type, object_id, result, detail, payload, received_at
		FROM provider_events WHERE provider = $1 AND event_key = $2`, provider, key).Scan(
		&e.ID, &e.Provider, &e.EventKey, &e.EventType, &e.ObjectType, &e.ObjectID, &e.Result, &e.Detail, &e.Payload, &e.ReceivedAt)
	if err != nil {
		return nil, notFound(err)
	}
	return &e, nil
}

// PaymentFindForProvider finds the payment a provider's event is about,
// among that gateway's payments only: by our id when the provider echoes it
// back (metadata, eBilling's reference), else by the provider's own id for it.
// id may be uuid.Nil and ref "" when the event carries none.
//
// Returns ErrNotFound.
func (s *Store) PaymentFindForProvider(ctx context.Context, gateway string, id uuid.UUID, ref string) (*Payment, error) {
	if id != uuid.Nil {
		p, err := scanPayment(s.Pool.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments
			WHERE id = $1 AND gateway = $2`, id, gateway))
		if !errors.Is(err, ErrNotFound) {
			return p, err
		}
	}
	if ref == "" {
		return nil, ErrNotFound
	}
	return s.PaymentFindByProviderReference(ctx, gateway, ref)
}

// PayoutFindForProvider is PaymentFindForProvider for payouts.
//
// Returns ErrNotFound.
func (s *Store) PayoutFindForProvider(ctx context.Context, provider string, id uuid.UUID, ref string) (*Payout, error) {
	if id != uuid.Nil {
		p, err := scanPayout(s.Pool.QueryRow(ctx, `SELECT `+payoutColumns+` FROM payouts
			WHERE id = $1 AND provider = $2`, id, provider))
		if !errors.Is(err, ErrNotFound) {
			return p, err
		}
	}
	if ref == "" {
		return nil, ErrNotFound
	}
	return s.PayoutFindByProviderReference(ctx, provider, ref)
}
