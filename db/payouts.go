package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Payout statuses.
const (
	PayoutPending    = "PENDING"
	PayoutProcessing = "PROCESSING"
	PayoutSucceeded  = "SUCCEEDED"
	PayoutFailed     = "FAILED"
)

var payoutTransitions = map[string][]string{
	PayoutPending:    {PayoutProcessing, PayoutSucceeded, PayoutFailed},
	PayoutProcessing: {PayoutSucceeded, PayoutFailed},
}

// Recipient is who a payout pays.
type Recipient struct {
	Phone   *string `json:"phone,omitempty"`
	Name    *string `json:"name,omitempty"`
	Account *string `json:"account,omitempty"`
}

// Payout is a merchant's payout, shaped as the API and webhooks show it.
type Payout struct {
	ID                uuid.UUID `json:"id"`
	Object            string    `json:"object"`
	MerchantID        uuid.UUID `json:"-"`
	Amount            int64     `json:"amount"`
	Currency          string    `json:"currency"`
	Provider          string    `json:"provider"`
	Status            string    `json:"status"`
	Recipient         Recipient `json:"recipient"`
	Reference         *string   `json:"reference"`
	ProviderReference *string   `json:"provider_reference"`
	FailureReason     *string   `json:"failure_reason"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
}

const payoutColumns = `id, merchant_id, amount, currency, provider, status, recipient, reference,
	provider_reference, failure_reason, created_at, updated_at`

func scanPayout(row pgx.Row, extra ...any) (*Payout, error) {
	p := Payout{Object: "payout"}
	dest := append([]any{&p.ID, &p.MerchantID, &p.Amount, &p.Currency, &p.Provider, &p.Status, &p.Recipient,
		&p.Reference, &p.ProviderReference, &p.FailureReason, &p.CreatedAt, &p.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, notFound(err)
	}
	return &p, nil
}

// PayoutCreateParams are a new payout's fields, already validated.
type PayoutCreateParams struct {
	MerchantID        uuid.UUID
	Amount            int64
	Currency          string
	Provider          string
	Recipient         Recipient
	Reference         *string
	ProviderReference *string
}

// PayoutCreateTx inserts a PENDING payout and emits payout.pending, in tx.
func (s *Store) PayoutCreateTx(ctx context.Context, tx pgx.Tx, params PayoutCreateParams) (*Payout, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	p, err := scanPayout(tx.QueryRow(ctx, `
			INSERT INTO payouts (id, merchant_id, amount, currency, provider, status, recipient, reference, provider_reference)
			VALUES ($1, $2, $3, $4, $5, 'PENDING', $6, $7, $8)
			RETURNING `+payoutColumns,
		id, params.MerchantID, params.Amount, params.Currency, params.Provider, params.Recipient,
		params.Reference, params.ProviderReference))
	if err != nil {
		return nil, fmt.Errorf("inserting payout: %w", err)
	}
	if _, err := s.eventEmitTx(ctx, tx, p.MerchantID, "payout.pending", p.ID, p); err != nil {
		return nil, err
	}
	notePayout(tx, p) // metrics, once tx commits
	return p, nil
}

// PayoutGet returns a merchant's payout, or ErrNotFound.
func (s *Store) PayoutGet(ctx context.Context, merchantID, id uuid.UUID) (*Payout, error) {
	return scanPayout(s.Pool.QueryRow(ctx, `SELECT `+payoutColumns+` FROM payouts WHERE id = $1 AND merchant_id = $2`, id, merchantID))
}

// PayoutList returns a page of a merchant's payouts, newest first.
func (s *Store) PayoutList(ctx context.Context, merchantID uuid.UUID, params ListParams) ([]*Payout, bool, error) {
	return list(ctx, s, "payouts", payoutColumns, merchantID, params, "status", func(row pgx.CollectableRow) (*Payout, error) {
		return scanPayout(row)
	})
}

// PayoutFindByProviderReference finds a payout by the provider's id for it.
func (s *Store) PayoutFindByProviderReference(ctx context.Context, provider, ref string) (*Payout, error) {
	return scanPayout(s.Pool.QueryRow(ctx, `SELECT `+payoutColumns+` FROM payouts
		WHERE provider = $1 AND provider_reference = $2 ORDER BY id DESC LIMIT 1`, provider, ref))
}

// PayoutTransitionTx is the one path by which a payout's status changes;
// see PaymentTransitionTx.
func (s *Store) PayoutTransitionTx(ctx context.Context, tx pgx.Tx, params TransitionParams) (p *Payout, changed bool, err error) {
	p, err = scanPayout(tx.QueryRow(ctx, `SELECT p.id, p.merchant_id, p.amount, p.currency, p.provider, p.status,
			p.recipient, p.reference, p.provider_reference, p.failure_reason, p.created_at, p.updated_at
		FROM payouts p
		WHERE p.id = $1 AND ($2::uuid IS NULL OR p.merchant_id = $2)
		FOR UPDATE OF p`, params.ID, anyMerchant(params.MerchantID)))
	if err != nil {
		return nil, false, err
	}
	if p.Status == params.Status {
		return p, false, nil
	}
	if !legal(payoutTransitions, p.Status, params.Status) {
		return p, false, invalidTransition("payout", p.Status, params.Status)
	}
	p, err = scanPayout(tx.QueryRow(ctx, `UPDATE payouts SET status = $2,
			failure_reason = COALESCE($3, failure_reason), updated_at = now()
		WHERE id = $1 RETURNING `+payoutColumns, p.ID, params.Status, params.FailureReason))
	if err != nil {
		return nil, false, fmt.Errorf("updating payout %s: %w", params.ID, err)
	}
	if _, err := s.eventEmitTx(ctx, tx, p.MerchantID, eventType("payout", p.Status), p.ID, p); err != nil {
		return nil, false, err
	}
	notePayout(tx, p) // metrics, once tx commits
	return p, true, nil
}

// PayoutTransition runs PayoutTransitionTx in its own transaction.
func (s *Store) PayoutTransition(ctx context.Context, params TransitionParams) (p *Payout, changed bool, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		p, changed, err = s.PayoutTransitionTx(ctx, tx, params)
		return err
	})
	return p, changed, err
}

// MarshalJSON keeps "object" set even on a zero-built Payout.
func (p *Payout) MarshalJSON() ([]byte, error) {
	type plain Payout
	c := plain(*p)
	c.Object = "payout"
	return json.Marshal(c)
}
