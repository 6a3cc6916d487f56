package db

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/boohpay/boohpay/signing"
)

// Merchant is an account that owns payments, payouts and webhook endpoints.
// WebhookURL and the secrets are its default endpoint's (see Endpoint).
type Merchant struct {
	ID                             uuid.UUID  `db:"id"`
	Name                           string     `db:"name"`
	WebhookURL                     *string    `db:"webhook_url"`
	WebhookSecret                  *string    `db:"webhook_secret"`
	PreviousWebhookSecret          *string    `db:"previous_webhook_secret"`
	PreviousWebhookSecretExpiresAt *time.Time `db:"previous_webhook_secret_expires_at"`
	CreatedAt                      time.Time  `db:"created_at"`
	UpdatedAt                      time.Time  `db:"updated_at"`
}

var merchantColumns = columnsOf[Merchant]()

func scanMerchant(row pgx.Row) (*Merchant, error) {
	var m Merchant
	if err := row.Scan(merchantColumns.dest(&m)...); err != nil {
		return nil, notFound(err)
	}
	return &m, nil
}

// NewMerchant is what MerchantCreate returns: the merchant and its first API
// key in clear, which is shown once and stored only as a hash.
type NewMerchant struct {
	Merchant *Merchant
	APIKey   string
}

// MerchantCreate creates a merchant with one API key, and a signing secret
// when webhookURL is set.
func (s *Store) MerchantCreate(ctx context.Context, name, webhookURL string) (*NewMerchant, error) {
	var url, secret *string
	if webhookURL != "" {
		sec := signing.NewSecret()
		url, secret = &webhookURL, &sec
	}
	var out NewMerchant
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		m, err := scanMerchant(tx.QueryRow(ctx, `INSERT INTO merchants (name, webhook_url, webhook_secret)
			VALUES ($1, $2, $3) RETURNING `+merchantColumns.String(), name, url, secret))
		if err != nil {
			return fmt.Errorf("inserting merchant: %w", err)
		}
		key, err := apiKeyCreateTx(ctx, tx, m.ID, nil)
		if err != nil {
			return err
		}
		out = NewMerchant{Merchant: m, APIKey: key.Key}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}
