package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Recipient is who a payout pays.
type Recipient struct {
	Phone   *string `json:"phone,omitempty"`
	Name    *string `json:"name,omitempty"`
	Account *string `json:"account,omitempty"`
}

// Payout is a merchant's payout, shaped as the API and webhooks show it.
type Payout struct {
	ID                uuid.UUID `json:"id" db:"id"`
	Object            string    `json:"object" db:"-"`
	MerchantID        uuid.UUID `json:"-" db:"merchant_id"`
	Amount            int64     `json:"amount" db:"amount"`
	Currency          string    `json:"currency" db:"currency"`
	Provider          string    `json:"provider" db:"provider"`
	Status            string    `json:"status" db:"status"`
	Recipient         Recipient `json:"recipient" db:"recipient"`
	Reference         *string   `json:"reference" db:"reference"`
	ProviderReference *string   `json:"provider_reference" db:"provider_reference"`
	FailureReason     *string   `json:"failure_reason" db:"failure_reason"`
	Review            *Review   `json:"review" db:"review"`
	CreatedAt         time.Time `json:"created_at" db:"created_at"`
	UpdatedAt         time.Time `json:"updated_at" db:"updated_at"`
}

var payoutColumns = columnsOf[Payout]()

func scanPayout(row pgx.Row) (*Payout, error) {
	p := Payout{Object: "payout"}
	if err := row.Scan(payoutColumns.dest(&p)...); err != nil {
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

// PayoutCreateTx inserts a PENDING payout and emits payout.pending, in tx;
// like PaymentCreateTx, a provider_reference applies the provider events
// parked under it.
//
// Returns an EProviderReferenceTaken error when another payout of the
// provider already holds the provider_reference.
func (s *Store) PayoutCreateTx(ctx context.Context, tx pgx.Tx, params PayoutCreateParams) (*Payout, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	if ref := params.ProviderReference; ref != nil {
		if err := referenceClaimTx(ctx, tx, ObjectPayout, params.Provider, *ref); err != nil {
			return nil, err
		}
	}
	p, err := scanPayout(tx.QueryRow(ctx, `
			INSERT INTO payouts (id, merchant_id, amount, currency, provider, status, recipient, reference, provider_reference)
			VALUES ($1, $2, $3, $4, $5, 'PENDING', $6, $7, $8)
			RETURNING `+payoutColumns.String(),
		id, params.MerchantID, params.Amount, params.Currency, params.Provider, params.Recipient,
		params.Reference, params.ProviderReference))
	if err != nil {
		return nil, referenceTaken(fmt.Errorf("inserting payout: %w", err))
	}
	if _, err := s.eventEmitTx(ctx, tx, p.MerchantID, EventPayoutPending, p.ID, p); err != nil {
		return nil, err
	}
	notePayout(tx, p) // metrics, once tx commits
	if p.ProviderReference != nil {
		lp := &lockedPayout{p: p}
		if err := s.parkedApplyTx(ctx, tx, nil, lp); err != nil {
			return nil, err
		}
		p = lp.p
	}
	return p, nil
}

// PayoutGet returns a merchant's payout, or ErrNotFound.
func (s *Store) PayoutGet(ctx context.Context, merchantID, id uuid.UUID) (*Payout, error) {
	return scanPayout(s.Pool.QueryRow(ctx, `SELECT `+payoutColumns.String()+` FROM payouts WHERE id = $1 AND merchant_id = $2`, id, merchantID))
}

// PayoutList returns a page of a merchant's payouts, newest first.
func (s *Store) PayoutList(ctx context.Context, merchantID uuid.UUID, params ListParams) ([]*Payout, bool, error) {
	return list(ctx, s, "payouts", payoutColumns.String(), merchantID, params, "status", func(row pgx.CollectableRow) (*Payout, error) {
		return scanPayout(row)
	})
}

// MarshalJSON keeps "object" set even on a zero-built Payout.
func (p *Payout) MarshalJSON() ([]byte, error) {
	type plain Payout
	c := plain(*p)
	c.Object = "payout"
	return json.Marshal(c)
}
