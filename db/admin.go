package db

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// AdminAction is a row of admin_actions: one manual change an operator made,
// with the reason they gave.
type AdminAction struct {
	ID         int64      `json:"id"`
	Action     string     `json:"action"`
	ObjectID   uuid.UUID  `json:"object_id"`
	MerchantID uuid.UUID  `json:"merchant_id"`
	FromStatus string     `json:"from_status"`
	ToStatus   string     `json:"to_status"`
	Reason     string     `json:"reason"`
	EventID    *uuid.UUID `json:"event_id"`
	RequestID  *string    `json:"request_id"`
	CreatedAt  time.Time  `json:"created_at"`
}

// ActionPaymentStatusOverride is the admin_actions.action of a manual
// payment status change.
const ActionPaymentStatusOverride = "payment.status_override"

// PaymentOverrideParams describe a manual payment status change.
type PaymentOverrideParams struct {
	ID            uuid.UUID
	Status        string
	FailureReason *string // shown to the merchant, like a provider's
	Reason        string  // the operator's, kept in admin_actions only
	RequestID     string
}

// PaymentStatusOverride moves any merchant's payment to a new status on an
// operator's word. It is PaymentTransitionTx (same lock, same rules, same
// event, delivery row and job) plus the admin_actions row recording who
// asked (the request id) and why, all in one transaction. A move to the
// current status changes nothing and records nothing (changed=false).
//
// Returns ErrNotFound, or an EInvalidTransition error for an illegal move.
func (s *Store) PaymentStatusOverride(ctx context.Context, params PaymentOverrideParams) (p *Payment, action *AdminAction, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		// Lock first so from_status is the status the transition moves from.
		var from string
		if err := tx.QueryRow(ctx, `SELECT status FROM payments WHERE id = $1 FOR UPDATE`, params.ID).Scan(&from); err != nil {
			return notFound(err)
		}
		var changed bool
		p, changed, err = s.PaymentTransitionTx(ctx, tx, TransitionParams{
			MerchantID: uuid.Nil, ID: params.ID, Status: params.Status, FailureReason: params.FailureReason,
		})
		if err != nil || !changed {
			return err
		}
		var requestID *string
		if params.RequestID != "" {
			requestID = &params.RequestID
		}
		action, err = scanAdminAction(tx.QueryRow(ctx, `INSERT INTO admin_actions
				(action, object_id, merchant_id, from_status, to_status, reason, event_id, request_id)
			VALUES ($1, $2, $3, $4, $5, $6,
				(SELECT id FROM events WHERE object_id = $2 AND type = $7 ORDER BY created_at DESC, id DESC LIMIT 1),
				$8)
			RETURNING `+adminActionColumns,
			ActionPaymentStatusOverride, p.ID, p.MerchantID, from, p.Status, params.Reason,
			eventType("payment", p.Status), requestID))
		if err != nil {
			return fmt.Errorf("recording override of payment %s: %w", p.ID, err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return p, action, nil
}

const adminActionColumns = `id, action, object_id, merchant_id, from_status, to_status, reason, event_id, request_id, created_at`

func scanAdminAction(row pgx.Row) (*AdminAction, error) {
	var a AdminAction
	if err := row.Scan(&a.ID, &a.Action, &a.ObjectID, &a.MerchantID, &a.FromStatus, &a.ToStatus, &a.Reason,
		&a.EventID, &a.RequestID, &a.CreatedAt); err != nil {
		return nil, notFound(err)
	}
	return &a, nil
}

// AdminActionList returns the recorded actions on one object, oldest first.
func (s *Store) AdminActionList(ctx context.Context, objectID uuid.UUID) ([]*AdminAction, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+adminActionColumns+` FROM admin_actions WHERE object_id = $1 ORDER BY id`, objectID)
	if err != nil {
		return nil, fmt.Errorf("listing admin actions: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*AdminAction, error) { return scanAdminAction(row) })
}

// WebhookFailure is a row of the webhook_failures_recent view: a delivery
// that ended FAILED in the last 7 days, with its merchant's endpoint.
type WebhookFailure struct {
	DeliveryID     uuid.UUID  `json:"delivery_id"`
	MerchantID     uuid.UUID  `json:"merchant_id"`
	MerchantName   string     `json:"merchant_name"`
	WebhookURL     *string    `json:"webhook_url"`
	EventID        uuid.UUID  `json:"event_id"`
	EventType      string     `json:"event_type"`
	Attempts       int        `json:"attempts"`
	HTTPStatusCode *int       `json:"http_status_code"`
	ErrorMessage   *string    `json:"error_message"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	FailedAt       time.Time  `json:"failed_at"`
	CreatedAt      time.Time  `json:"created_at"`
}

// WebhookFailureListParams filter and page the recent failures.
type WebhookFailureListParams struct {
	MerchantID    uuid.UUID // uuid.Nil: every merchant
	Limit         int
	StartingAfter *uuid.UUID // a delivery_id from the previous page
}

// WebhookFailureList returns recent failures, most recently failed first,
// and whether more follow. A starting_after that is not a recent failure
// yields an empty page.
func (s *Store) WebhookFailureList(ctx context.Context, params WebhookFailureListParams) ([]*WebhookFailure, bool, error) {
	rows, err := s.Pool.Query(ctx, `SELECT delivery_id, merchant_id, merchant_name, webhook_url, event_id,
			event_type, attempts, http_status_code, error_message, last_attempt_at, failed_at, created_at
		FROM webhook_failures_recent
		WHERE ($1::uuid IS NULL OR merchant_id = $1)
		  AND ($3::uuid IS NULL OR (failed_at, delivery_id) <
			(SELECT failed_at, delivery_id FROM webhook_failures_recent WHERE delivery_id = $3))
		ORDER BY failed_at DESC, delivery_id DESC
		LIMIT $2`, anyMerchant(params.MerchantID), params.Limit+1, params.StartingAfter)
	if err != nil {
		return nil, false, fmt.Errorf("listing webhook failures: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*WebhookFailure, error) {
		var f WebhookFailure
		err := row.Scan(&f.DeliveryID, &f.MerchantID, &f.MerchantName, &f.WebhookURL, &f.EventID, &f.EventType,
			&f.Attempts, &f.HTTPStatusCode, &f.ErrorMessage, &f.LastAttemptAt, &f.FailedAt, &f.CreatedAt)
		return &f, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("listing webhook failures: %w", err)
	}
	if len(items) > params.Limit {
		return items[:params.Limit], true, nil
	}
	return items, false, nil
}
