package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/boohpay/boohpay/signing"
)

// Merchant is an account that owns payments, payouts and a webhook endpoint.
type Merchant struct {
	ID                             uuid.UUID
	Name                           string
	WebhookURL                     *string
	WebhookSecret                  *string
	PreviousWebhookSecret          *string
	PreviousWebhookSecretExpiresAt *time.Time
	CreatedAt                      time.Time
	UpdatedAt                      time.Time
}

const merchantColumns = `id, name, webhook_url, webhook_secret, previous_webhook_secret,
	previous_webhook_secret_expires_at, created_at, updated_at`

func scanMerchant(row pgx.Row) (*Merchant, error) {
	var m Merchant
	err := row.Scan(&m.ID, &m.Name, &m.WebhookURL, &m.WebhookSecret, &m.PreviousWebhookSecret,
		&m.PreviousWebhookSecretExpiresAt, &m.CreatedAt, &m.UpdatedAt)
	if err != nil {
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
			VALUES ($1, $2, $3) RETURNING `+merchantColumns, name, url, secret))
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

// MerchantGetByID returns ErrNotFound when no merchant has id.
func (s *Store) MerchantGetByID(ctx context.Context, id uuid.UUID) (*Merchant, error) {
	return scanMerchant(s.Pool.QueryRow(ctx, `SELECT `+merchantColumns+` FROM merchants WHERE id = $1`, id))
}

// WebhookSecretGrace is how long a rotated-out secret keeps signing.
const WebhookSecretGrace = 24 * time.Hour

// MerchantSetWebhookURL sets the merchant's webhook URL (already validated).
// The first time an endpoint is set, a signing secret is generated and
// returned as newSecret, to be shown once; later calls keep the secret and
// return "".
func (s *Store) MerchantSetWebhookURL(ctx context.Context, id uuid.UUID, url string) (m *Merchant, newSecret string, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		var secret *string
		if err := tx.QueryRow(ctx, `SELECT webhook_secret FROM merchants WHERE id = $1 FOR UPDATE`, id).Scan(&secret); err != nil {
			return notFound(err)
		}
		if secret == nil || *secret == "" {
			newSecret = signing.NewSecret()
			secret = &newSecret
		}
		m, err = scanMerchant(tx.QueryRow(ctx, `UPDATE merchants SET webhook_url = $2, webhook_secret = $3, updated_at = now()
			WHERE id = $1 RETURNING `+merchantColumns, id, url, *secret))
		if err != nil {
			return fmt.Errorf("setting webhook url of merchant %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return m, newSecret, nil
}

// MerchantRotateWebhookSecret replaces the signing secret with a new one,
// returned to be shown once. The replaced secret keeps signing, alongside
// the new one, for WebhookSecretGrace.
//
// Returns ErrNotFound, or an EConflict error when the merchant has no
// secret yet (no endpoint was ever set).
func (s *Store) MerchantRotateWebhookSecret(ctx context.Context, id uuid.UUID) (*Merchant, string, error) {
	secret := signing.NewSecret()
	m, err := scanMerchant(s.Pool.QueryRow(ctx, `UPDATE merchants SET
			previous_webhook_secret = webhook_secret,
			previous_webhook_secret_expires_at = now() + $3::bigint * interval '1 second',
			webhook_secret = $2,
			updated_at = now()
		WHERE id = $1 AND webhook_secret IS NOT NULL AND webhook_secret <> ''
		RETURNING `+merchantColumns, id, secret, int64(WebhookSecretGrace/time.Second)))
	if errors.Is(err, ErrNotFound) {
		if _, err := s.MerchantGetByID(ctx, id); err != nil {
			return nil, "", err
		}
		return nil, "", &Error{Code: EConflict, Message: "no webhook endpoint is set: PUT /v1/webhook-endpoint first"}
	}
	if err != nil {
		return nil, "", fmt.Errorf("rotating webhook secret of merchant %s: %w", id, err)
	}
	return m, secret, nil
}
