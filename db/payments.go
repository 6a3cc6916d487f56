package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Payment statuses.
const (
	PaymentPending    = "PENDING"
	PaymentAuthorized = "AUTHORIZED"
	PaymentSucceeded  = "SUCCEEDED"
	PaymentFailed     = "FAILED"
	PaymentCancelled  = "CANCELLED"
	PaymentRefunded   = "REFUNDED"
)

// paymentTransitions lists the legal moves; anything else is invalid_transition.
var paymentTransitions = map[string][]string{
	PaymentPending:    {PaymentAuthorized, PaymentSucceeded, PaymentFailed, PaymentCancelled},
	PaymentAuthorized: {PaymentSucceeded, PaymentFailed, PaymentCancelled},
	PaymentSucceeded:  {PaymentRefunded},
}

// Payment is a merchant's payment, shaped as the API and webhooks show it.
type Payment struct {
	ID                uuid.UUID         `json:"id"`
	Object            string            `json:"object"`
	MerchantID        uuid.UUID         `json:"-"`
	Amount            int64             `json:"amount"`
	Currency          string            `json:"currency"`
	Gateway           string            `json:"gateway"`
	Status            string            `json:"status"`
	Reference         *string           `json:"reference"`
	Description       *string           `json:"description"`
	Metadata          map[string]string `json:"metadata"`
	ProviderReference *string           `json:"provider_reference"`
	FailureReason     *string           `json:"failure_reason"`
	CreatedAt         time.Time         `json:"created_at"`
	UpdatedAt         time.Time         `json:"updated_at"`
}

const paymentColumns = `id, merchant_id, amount, currency, gateway, status, reference, description,
	metadata, provider_reference, failure_reason, created_at, updated_at`

func scanPayment(row pgx.Row, extra ...any) (*Payment, error) {
	p := Payment{Object: "payment"}
	dest := append([]any{&p.ID, &p.MerchantID, &p.Amount, &p.Currency, &p.Gateway, &p.Status, &p.Reference,
		&p.Description, &p.Metadata, &p.ProviderReference, &p.FailureReason, &p.CreatedAt, &p.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, notFound(err)
	}
	if p.Metadata == nil {
		p.Metadata = map[string]string{}
	}
	return &p, nil
}

// PaymentCreateParams are a new payment's fields, already validated.
type PaymentCreateParams struct {
	MerchantID        uuid.UUID
	Amount            int64
	Currency          string
	Gateway           string
	Reference         *string
	Description       *string
	Metadata          map[string]string
	ProviderReference *string
}

// PaymentCreateTx inserts a PENDING payment and emits payment.pending, in tx.
func (s *Store) PaymentCreateTx(ctx context.Context, tx pgx.Tx, params PaymentCreateParams) (*Payment, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	metadata := params.Metadata
	if metadata == nil {
		metadata = map[string]string{}
	}
	p, err := scanPayment(tx.QueryRow(ctx, `
			INSERT INTO payments (id, merchant_id, amount, currency, gateway, status, reference, description, metadata, provider_reference)
			VALUES ($1, $2, $3, $4, $5, 'PENDING', $6, $7, $8, $9)
			RETURNING `+paymentColumns,
		id, params.MerchantID, params.Amount, params.Currency, params.Gateway, params.Reference,
		params.Description, metadata, params.ProviderReference))
	if err != nil {
		return nil, fmt.Errorf("inserting payment: %w", err)
	}
	if _, err := s.eventEmitTx(ctx, tx, p.MerchantID, "payment.pending", p.ID, p); err != nil {
		return nil, err
	}
	notePayment(tx, p, true) // metrics, once tx commits
	return p, nil
}

// PaymentGet returns a merchant's payment, or ErrNotFound (also for another merchant's).
func (s *Store) PaymentGet(ctx context.Context, merchantID, id uuid.UUID) (*Payment, error) {
	return scanPayment(s.Pool.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments WHERE id = $1 AND merchant_id = $2`, id, merchantID))
}

// PaymentList returns a page of a merchant's payments, newest first.
func (s *Store) PaymentList(ctx context.Context, merchantID uuid.UUID, params ListParams) ([]*Payment, bool, error) {
	return list(ctx, s, "payments", paymentColumns, merchantID, params, "status", func(row pgx.CollectableRow) (*Payment, error) {
		return scanPayment(row)
	})
}

// PaymentFindByProviderReference finds a payment by the provider's id for it.
func (s *Store) PaymentFindByProviderReference(ctx context.Context, gateway, ref string) (*Payment, error) {
	return scanPayment(s.Pool.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments
		WHERE gateway = $1 AND provider_reference = $2 ORDER BY id DESC LIMIT 1`, gateway, ref))
}

// TransitionParams describe a status change.
type TransitionParams struct {
	// MerchantID scopes the change to one merchant's object; uuid.Nil means
	// any (provider webhooks and admin overrides, which found the object first).
	MerchantID    uuid.UUID
	ID            uuid.UUID
	Status        string
	FailureReason *string
}

// PaymentTransitionTx is the one path by which a payment's status changes.
// In tx it locks the row, checks the move, updates it and emits the event
// (with its delivery row and River job). A move to the current status is a
// no-op: it returns changed=false and emits nothing. Concurrent callers
// serialize on the row lock, so each real transition emits exactly one event.
//
// Returns ErrNotFound, or an EInvalidTransition error for an illegal move.
func (s *Store) PaymentTransitionTx(ctx context.Context, tx pgx.Tx, params TransitionParams) (p *Payment, changed bool, err error) {
	p, err = scanPayment(tx.QueryRow(ctx, `SELECT p.id, p.merchant_id, p.amount, p.currency, p.gateway, p.status,
			p.reference, p.description, p.metadata, p.provider_reference, p.failure_reason, p.created_at, p.updated_at
		FROM payments p
		WHERE p.id = $1 AND ($2::uuid IS NULL OR p.merchant_id = $2)
		FOR UPDATE OF p`, params.ID, anyMerchant(params.MerchantID)))
	if err != nil {
		return nil, false, err
	}
	if p.Status == params.Status {
		return p, false, nil
	}
	if !legal(paymentTransitions, p.Status, params.Status) {
		return p, false, invalidTransition("payment", p.Status, params.Status)
	}
	p, err = scanPayment(tx.QueryRow(ctx, `UPDATE payments SET status = $2,
			failure_reason = COALESCE($3, failure_reason), updated_at = now()
		WHERE id = $1 RETURNING `+paymentColumns, p.ID, params.Status, params.FailureReason))
	if err != nil {
		return nil, false, fmt.Errorf("updating payment %s: %w", params.ID, err)
	}
	if _, err := s.eventEmitTx(ctx, tx, p.MerchantID, eventType("payment", p.Status), p.ID, p); err != nil {
		return nil, false, err
	}
	notePayment(tx, p, false) // metrics, once tx commits
	return p, true, nil
}

// PaymentTransition runs PaymentTransitionTx in its own transaction.
func (s *Store) PaymentTransition(ctx context.Context, params TransitionParams) (p *Payment, changed bool, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		p, changed, err = s.PaymentTransitionTx(ctx, tx, params)
		return err
	})
	return p, changed, err
}

func legal(table map[string][]string, from, to string) bool {
	for _, s := range table[from] {
		if s == to {
			return true
		}
	}
	return false
}

func invalidTransition(object, from, to string) error {
	return &Error{Code: EInvalidTransition, Param: "status",
		Message: fmt.Sprintf("a %s cannot move from %s to %s", object, from, to)}
}

// eventType names the event of a status: payment + SUCCEEDED → payment.succeeded.
func eventType(object, status string) string {
	b := []byte(object + "." + status)
	for i := len(object) + 1; i < len(b); i++ {
		if b[i] >= 'A' && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}

// MarshalJSON keeps "object" set even on a zero-built Payment.
func (p *Payment) MarshalJSON() ([]byte, error) {
	type plain Payment
	c := plain(*p)
	c.Object = "payment"
	return json.Marshal(c)
}
