package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/jobs"
)

// webhookEndpointBody is the merchant's webhook endpoint as the API shows
// it. Secret is there only in the answer that generated it: the first PUT
// and each rotation.
type webhookEndpointBody struct {
	Object string  `json:"object"`
	URL    *string `json:"url"`
	Secret string  `json:"secret,omitempty"`
	// PreviousSecretExpiresAt is when a rotated-out secret stops signing;
	// null outside a rotation's grace period.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

func newWebhookEndpointBody(m *db.Merchant, secret string) webhookEndpointBody {
	b := webhookEndpointBody{Object: "webhook_endpoint", URL: m.WebhookURL, Secret: secret, UpdatedAt: m.UpdatedAt}
	if exp := m.PreviousWebhookSecretExpiresAt; m.PreviousWebhookSecret != nil && exp != nil && exp.After(time.Now()) {
		b.PreviousSecretExpiresAt = exp
	}
	return b
}

func handleWebhookEndpointGet() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.JSON(http.StatusOK, newWebhookEndpointBody(merchantOf(c), ""))
	}
}

type webhookEndpointRequest struct {
	URL *string `json:"url"`
}

// handleWebhookEndpointPut sets the endpoint URL. It must be http(s) and,
// unless WEBHOOK_ALLOW_PRIVATE_NETWORKS, not resolve to a private address
// (checked again when each delivery dials). The first set generates the
// signing secret and shows it, once.
func handleWebhookEndpointPut(store *db.Store, allowPrivateNetworks bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req webhookEndpointRequest
		if _, err := decodeJSON(c, &req); err != nil {
			return err
		}
		if req.URL == nil || strings.TrimSpace(*req.URL) == "" {
			return invalidField("url", "url is required")
		}
		ctx := c.Request().Context()
		if err := jobs.ValidateURL(ctx, *req.URL, allowPrivateNetworks); err != nil {
			return invalidField("url", "url: "+err.Error())
		}
		m, secret, err := store.MerchantSetWebhookURL(ctx, merchantOf(c).ID, *req.URL)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, newWebhookEndpointBody(m, secret))
	}
}

// handleWebhookEndpointRotateSecret generates a new signing secret and
// shows it, once; the previous one keeps signing for 24 h, so deliveries
// carry both signatures while the merchant switches.
func handleWebhookEndpointRotateSecret(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		m, secret, err := store.MerchantRotateWebhookSecret(c.Request().Context(), merchantOf(c).ID)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, newWebhookEndpointBody(m, secret))
	}
}

// handleWebhookEndpointTest sends a webhook.test event and answers 201 with
// its delivery, to follow at GET /v1/webhook-deliveries/{id}. It takes no
// body, and accepts Idempotency-Key like every POST create.
func handleWebhookEndpointTest(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req struct{}
		body, err := decodeJSON(c, &req)
		if err != nil {
			return err
		}
		merchantID := merchantOf(c).ID
		return createIdempotent(c, store, body, func(tx pgx.Tx) (any, error) {
			return store.DeliverySendTestTx(c.Request().Context(), tx, merchantID)
		})
	}
}
