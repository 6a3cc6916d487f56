package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Payment is a merchant's payment, shaped as the API and webhooks show it.
type Payment struct {
	ID                uuid.UUID         `json:"id" db:"id"`
	Object            string            `json:"object" db:"-"`
	MerchantID        uuid.UUID         `json:"-" db:"merchant_id"`
	Amount            int64             `json:"amount" db:"amount"`
	Currency          string            `json:"currency" db:"currency"`
	Gateway           string            `json:"gateway" db:"gateway"`
	Status            string            `json:"status" db:"status"`
	Reference         *string           `json:"reference" db:"reference"`
	Description       *string           `json:"description" db:"description"`
	Metadata          map[string]string `json:"metadata" db:"metadata"`
	ProviderReference *string           `json:"provider_reference" db:"provider_reference"`
	FailureReason     *string           `json:"failure_reason" db:"failure_reason"`
	AmountReceived    *int64            `json:"amount_received" db:"amount_received"`
	AmountRefunded    int64             `json:"amount_refunded" db:"amount_refunded"`
	DisputeStatus     *string           `json:"dispute_status" db:"dispute_status"`
	Review            *Review           `json:"review" db:"review"`
	CreatedAt         time.Time         `json:"created_at" db:"created_at"`
	UpdatedAt         time.Time         `json:"updated_at" db:"updated_at"`
}

var paymentColumns = columnsOf[Payment]()

func scanPayment(row pgx.Row) (*Payment, error) {
	p := Payment{Object: "payment"}
	if err := row.Scan(paymentColumns.dest(&p)...); err != nil {
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

// PaymentCreateTx inserts a PENDING payment and emits payment.pending, in
// tx. A provider_reference binds the provider's object to it: provider
// events that arrived for that object before the payment existed (parked as
// unmatched) are applied now, in order, in the same transaction.
//
// Returns an EProviderReferenceTaken error when another payment of the
// gateway (any merchant's) already holds the provider_reference.
func (s *Store) PaymentCreateTx(ctx context.Context, tx pgx.Tx, params PaymentCreateParams) (*Payment, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	if ref := params.ProviderReference; ref != nil {
		if err := referenceClaimTx(ctx, tx, ObjectPayment, params.Gateway, *ref); err != nil {
			return nil, err
		}
	}
	metadata := params.Metadata
	if metadata == nil {
		metadata = map[string]string{}
	}
	p, err := scanPayment(tx.QueryRow(ctx, `
			INSERT INTO payments (id, merchant_id, amount, currency, gateway, status, reference, description, metadata, provider_reference)
			VALUES ($1, $2, $3, $4, $5, 'PENDING', $6, $7, $8, $9)
			RETURNING `+paymentColumns.String(),
		id, params.MerchantID, params.Amount, params.Currency, params.Gateway, params.Reference,
		params.Description, metadata, params.ProviderReference))
	if err != nil {
		return nil, referenceTaken(fmt.Errorf("inserting payment: %w", err))
	}
	if _, err := s.eventEmitTx(ctx, tx, p.MerchantID, EventPaymentPending, p.ID, p); err != nil {
		return nil, err
	}
	notePayment(tx, p, true) // metrics, once tx commits
	if p.ProviderReference != nil {
		lp := &lockedPayment{p: p}
		if err := s.parkedApplyTx(ctx, tx, lp, nil); err != nil {
			return nil, err
		}
		p = lp.p
	}
	return p, nil
}

// PaymentGet returns a merchant's payment, or ErrNotFound (also for another merchant's).
func (s *Store) PaymentGet(ctx context.Context, merchantID, id uuid.UUID) (*Payment, error) {
	return scanPayment(s.Pool.QueryRow(ctx, `SELECT `+paymentColumns.String()+` FROM payments WHERE id = $1 AND merchant_id = $2`, id, merchantID))
}

// PaymentList returns a page of a merchant's payments, newest first.
func (s *Store) PaymentList(ctx context.Context, merchantID uuid.UUID, params ListParams) ([]*Payment, bool, error) {
	return list(ctx, s, "payments", paymentColumns.String(), merchantID, params, "status", func(row pgx.CollectableRow) (*Payment, error) {
		return scanPayment(row)
	})
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
