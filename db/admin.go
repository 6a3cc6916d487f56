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
	ID         int64      `json:"id" db:"id"`
	Action     string     `json:"action" db:"action"`
	ObjectID   uuid.UUID  `json:"object_id" db:"object_id"`
	MerchantID uuid.UUID  `json:"merchant_id" db:"merchant_id"`
	FromStatus string     `json:"from_status" db:"from_status"`
	ToStatus   string     `json:"to_status" db:"to_status"`
	Reason     string     `json:"reason" db:"reason"`
	EventID    *uuid.UUID `json:"event_id" db:"event_id"`
	RequestID  *string    `json:"request_id" db:"request_id"`
	CreatedAt  time.Time  `json:"created_at" db:"created_at"`
}

// OverrideParams describe a manual status change of a payment or payout.
type OverrideParams struct {
	ID            uuid.UUID
	Status        string
	FailureReason *string // shown to the merchant, like a provider's
	Reason        string  // the operator's, kept in admin_actions only
	RequestID     string
}

// PaymentStatusOverride moves any merchant's payment to a new status on an
// operator's word. It is the one transition path with the admin actor (the
// provider's moves: an admin can do what a provider could, e.g. undo a
// refund or capture after a cancel) plus the admin_actions row recording
// who asked (the request id) and why, all in one transaction. A move to the
// current status changes nothing and records nothing (changed=false).
//
// Returns ErrNotFound, or an EInvalidTransition error for an illegal move.
func (s *Store) PaymentStatusOverride(ctx context.Context, params OverrideParams) (p *Payment, action *AdminAction, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		lp, err := paymentLockTx(ctx, tx, `p.id = $1`, params.ID)
		if err != nil {
			return err
		}
		from := lp.p.Status
		outcome, err := s.paymentMoveTx(ctx, tx, lp, paymentMove{Actor: ActorAdmin, Status: params.Status, FailureReason: params.FailureReason})
		p = lp.p
		if err != nil || outcome != OutcomeApplied {
			return err
		}
		action, err = adminActionCreateTx(ctx, tx, ActionPaymentStatusOverride, p.ID, p.MerchantID, from, p.Status,
			params.Reason, eventType(ObjectPayment, p.Status), params.RequestID)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return p, action, nil
}

// PayoutStatusOverride is PaymentStatusOverride for payouts; an admin may
// also fail a SUCCEEDED payout (a provider's word alone may not).
//
// Returns ErrNotFound, or an EInvalidTransition error for an illegal move.
func (s *Store) PayoutStatusOverride(ctx context.Context, params OverrideParams) (p *Payout, action *AdminAction, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		lp, err := payoutLockTx(ctx, tx, `p.id = $1`, params.ID)
		if err != nil {
			return err
		}
		from := lp.p.Status
		outcome, err := s.payoutMoveTx(ctx, tx, lp, ActorAdmin, params.Status, params.FailureReason)
		p = lp.p
		if err != nil || outcome != OutcomeApplied {
			return err
		}
		action, err = adminActionCreateTx(ctx, tx, ActionPayoutStatusOverride, p.ID, p.MerchantID, from, p.Status,
			params.Reason, eventType(ObjectPayout, p.Status), params.RequestID)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return p, action, nil
}

// ReviewResolveParams describe an operator closing a review.
type ReviewResolveParams struct {
	Object    string // ObjectPayment or ObjectPayout
	ID        uuid.UUID
	Note      string // what was done about it, kept in admin_actions
	RequestID string
}

// ReviewResolve clears the review of any merchant's payment or payout and
// records the operator's note with the review it closed in admin_actions,
// in one transaction. The status does not change (an override does that).
//
// Returns ErrNotFound, or an EConflict error when the object is not in review.
func (s *Store) ReviewResolve(ctx context.Context, params ReviewResolveParams) (obj any, action *AdminAction, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		var review *Review
		var status string
		var merchantID uuid.UUID
		var name string
		switch params.Object {
		case ObjectPayment:
			lp, err := paymentLockTx(ctx, tx, `p.id = $1`, params.ID)
			if err != nil {
				return err
			}
			review, status, merchantID, name = lp.p.Review, lp.p.Status, lp.p.MerchantID, ActionPaymentReviewResolve
			if review != nil {
				next := *lp.p
				next.Review = nil
				if err := s.paymentSaveTx(ctx, tx, lp, &next, ""); err != nil {
					return err
				}
			}
			obj = lp.p
		case ObjectPayout:
			lp, err := payoutLockTx(ctx, tx, `p.id = $1`, params.ID)
			if err != nil {
				return err
			}
			review, status, merchantID, name = lp.p.Review, lp.p.Status, lp.p.MerchantID, ActionPayoutReviewResolve
			if review != nil {
				next := *lp.p
				next.Review = nil
				if err := s.payoutSaveTx(ctx, tx, lp, &next, ""); err != nil {
					return err
				}
			}
			obj = lp.p
		default:
			return fmt.Errorf("review resolve: unknown object %q", params.Object)
		}
		if review == nil {
			return &Error{Code: EConflict, Message: "this " + params.Object + " is not in review"}
		}
		note := fmt.Sprintf("%s (review %s: %s)", params.Note, review.Reason, review.Detail)
		action, err = adminActionCreateTx(ctx, tx, name, params.ID, merchantID, status, status, clipRunes(note, 1000), "", params.RequestID)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return obj, action, nil
}

// InReview is a row of the objects_in_review view: a payment or payout
// whose review is set.
type InReview struct {
	Object            string    `json:"object"`
	ID                uuid.UUID `json:"id"`
	MerchantID        uuid.UUID `json:"merchant_id"`
	MerchantName      string    `json:"merchant_name"`
	Provider          string    `json:"provider"`
	Status            string    `json:"status"`
	Amount            int64     `json:"amount"`
	Currency          string    `json:"currency"`
	ProviderReference *string   `json:"provider_reference"`
	Review            Review    `json:"review"`
}

// ReviewListParams filter and page the objects in review.
type ReviewListParams struct {
	Object        string // "" for both
	Limit         int
	StartingAfter *uuid.UUID
}

// ReviewList returns objects in review, newest review first, and whether
// more follow.
func (s *Store) ReviewList(ctx context.Context, params ReviewListParams) ([]*InReview, bool, error) {
	rows, err := s.Pool.Query(ctx, `SELECT object, id, merchant_id, merchant_name, provider, status, amount, currency,
			provider_reference, reason, coalesce(detail, ''), review_at
		FROM objects_in_review
		WHERE ($1 = '' OR object = $1)
		  AND ($3::uuid IS NULL OR (review_at, id) < (SELECT review_at, id FROM objects_in_review WHERE id = $3))
		ORDER BY review_at DESC, id DESC
		LIMIT $2`, params.Object, params.Limit+1, params.StartingAfter)
	if err != nil {
		return nil, false, fmt.Errorf("listing reviews: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*InReview, error) {
		var r InReview
		err := row.Scan(&r.Object, &r.ID, &r.MerchantID, &r.MerchantName, &r.Provider, &r.Status, &r.Amount, &r.Currency,
			&r.ProviderReference, &r.Review.Reason, &r.Review.Detail, &r.Review.At)
		return &r, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("listing reviews: %w", err)
	}
	if len(items) > params.Limit {
		return items[:params.Limit], true, nil
	}
	return items, false, nil
}

func adminActionCreateTx(ctx context.Context, tx pgx.Tx, action string, objectID, merchantID uuid.UUID,
	from, to, reason, eventType, requestID string) (*AdminAction, error) {
	a, err := scanAdminAction(tx.QueryRow(ctx, `INSERT INTO admin_actions
			(action, object_id, merchant_id, from_status, to_status, reason, event_id, request_id)
		VALUES ($1, $2, $3, $4, $5, $6,
			(SELECT id FROM events WHERE object_id = $2 AND type = $7 ORDER BY created_at DESC, id DESC LIMIT 1),
			NULLIF($8, ''))
		RETURNING `+adminActionColumns.String(),
		action, objectID, merchantID, from, to, reason, eventType, requestID))
	if err != nil {
		return nil, fmt.Errorf("recording %s of %s: %w", action, objectID, err)
	}
	return a, nil
}

func clipRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

var adminActionColumns = columnsOf[AdminAction]()

func scanAdminAction(row pgx.Row) (*AdminAction, error) {
	var a AdminAction
	if err := row.Scan(adminActionColumns.dest(&a)...); err != nil {
		return nil, notFound(err)
	}
	return &a, nil
}

// WebhookFailure is a row of the webhook_failures_recent view: a delivery
// that ended FAILED in the last 7 days, with its merchant's endpoint.
type WebhookFailure struct {
	DeliveryID     uuid.UUID  `json:"delivery_id" db:"delivery_id"`
	MerchantID     uuid.UUID  `json:"merchant_id" db:"merchant_id"`
	MerchantName   string     `json:"merchant_name" db:"merchant_name"`
	WebhookURL     *string    `json:"webhook_url" db:"webhook_url"`
	EventID        uuid.UUID  `json:"event_id" db:"event_id"`
	EventType      string     `json:"event_type" db:"event_type"`
	Attempts       int        `json:"attempts" db:"attempts"`
	HTTPStatusCode *int       `json:"http_status_code" db:"http_status_code"`
	ErrorMessage   *string    `json:"error_message" db:"error_message"`
	LastAttemptAt  *time.Time `json:"last_attempt_at" db:"last_attempt_at"`
	FailedAt       time.Time  `json:"failed_at" db:"failed_at"`
	CreatedAt      time.Time  `json:"created_at" db:"created_at"`
}

var webhookFailureColumns = columnsOf[WebhookFailure]()

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
	rows, err := s.Pool.Query(ctx, `SELECT `+webhookFailureColumns.String()+`
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
		err := row.Scan(webhookFailureColumns.dest(&f)...)
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
