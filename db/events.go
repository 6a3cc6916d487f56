package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Event is something that happened to a merchant's object. Payload is the
// exact webhook body: {"id","event","timestamp","data"}.
type Event struct {
	ID         uuid.UUID       `db:"id"`
	MerchantID uuid.UUID       `db:"merchant_id"`
	Type       string          `db:"type"`
	ObjectID   *uuid.UUID      `db:"object_id"`
	Payload    json.RawMessage `db:"payload"`
	CreatedAt  time.Time       `db:"created_at"`
}

// MarshalJSON renders an event for the API: the body's data under a Stripe-like envelope.
func (e *Event) MarshalJSON() ([]byte, error) {
	var body struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(e.Payload, &body); err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		ID        uuid.UUID       `json:"id"`
		Object    string          `json:"object"`
		Type      string          `json:"type"`
		Data      json.RawMessage `json:"data"`
		CreatedAt time.Time       `json:"created_at"`
	}{e.ID, "event", e.Type, body.Data, e.CreatedAt})
}

var eventColumns = columnsOf[Event]()

func scanEvent(row pgx.Row) (*Event, error) {
	var e Event
	if err := row.Scan(eventColumns.dest(&e)...); err != nil {
		return nil, notFound(err)
	}
	return &e, nil
}

// eventInsertTx inserts an event in tx. With fanOut, the same statement
// returns the endpoints it must be delivered to (see eventEmitTx), so the
// fan-out costs no extra round trip.
func (s *Store) eventInsertTx(ctx context.Context, tx pgx.Tx, merchantID uuid.UUID, typ string, objectID uuid.UUID, data any, fanOut bool) (*Event, []uuid.UUID, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	payload, err := json.Marshal(struct {
		ID        uuid.UUID `json:"id"`
		Event     string    `json:"event"`
		Timestamp string    `json:"timestamp"`
		Data      any       `json:"data"`
	}{id, typ, now.Format(time.RFC3339Nano), data})
	if err != nil {
		return nil, nil, fmt.Errorf("encoding event: %w", err)
	}
	var obj *uuid.UUID
	if objectID != uuid.Nil {
		obj = &objectID
	}
	e := &Event{ID: id, MerchantID: merchantID, Type: typ, ObjectID: obj, Payload: payload, CreatedAt: now}
	const insert = `INSERT INTO events (id, merchant_id, type, object_id, payload, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`
	if !fanOut {
		if _, err := tx.Exec(ctx, insert, id, merchantID, typ, obj, string(payload), now); err != nil {
			return nil, nil, fmt.Errorf("inserting event: %w", err)
		}
		return e, nil, nil
	}
	rows, err := tx.Query(ctx, `WITH ev AS (`+insert+`)
		SELECT id FROM webhook_endpoints
		WHERE merchant_id = $2 AND status = 'enabled' AND deleted_at IS NULL
			AND ('*' = ANY (enabled_events) OR $3 = ANY (enabled_events))
		ORDER BY id`, id, merchantID, typ, obj, string(payload), now)
	if err != nil {
		return nil, nil, fmt.Errorf("inserting event: %w", err)
	}
	endpoints, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, nil, fmt.Errorf("inserting event: %w", err)
	}
	return e, endpoints, nil
}

// EventGet returns a merchant's event, or ErrNotFound.
func (s *Store) EventGet(ctx context.Context, merchantID, id uuid.UUID) (*Event, error) {
	return scanEvent(s.Pool.QueryRow(ctx, `SELECT `+eventColumns.String()+` FROM events WHERE id = $1 AND merchant_id = $2`, id, merchantID))
}

// EventList returns a page of a merchant's events, newest first (Filter: type).
func (s *Store) EventList(ctx context.Context, merchantID uuid.UUID, params ListParams) ([]*Event, bool, error) {
	return list(ctx, s, "events", eventColumns.String(), merchantID, params, "type", func(row pgx.CollectableRow) (*Event, error) {
		return scanEvent(row)
	})
}

// EventEmit records an event outside any status change, with its
// deliveries, in its own transaction.
func (s *Store) EventEmit(ctx context.Context, merchantID uuid.UUID, typ string, data any) (*Event, error) {
	var e *Event
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		e, err = s.eventEmitTx(ctx, tx, merchantID, typ, uuid.Nil, data)
		return err
	})
	return e, err
}
