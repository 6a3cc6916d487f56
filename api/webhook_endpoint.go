package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/netguard"
)

// The old service's single-endpoint routes, kept for existing integrations:
// each works on the merchant's default endpoint (the one
// merchants.webhook_url / webhook_secret hold) through the same store
// functions as /v1/webhook-endpoints/{id}.

// noDefaultEndpointBody is GET /v1/webhook-endpoint's answer for a
// merchant without a default endpoint, as the old service gave it.
type noDefaultEndpointBody struct {
	Object                  string    `json:"object"`
	URL                     *string   `json:"url"`
	PreviousSecretExpiresAt *string   `json:"previous_secret_expires_at"`
	UpdatedAt               time.Time `json:"updated_at"`
}

func handleWebhookEndpointGet(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		e, err := store.EndpointGetDefault(c.Request().Context(), merchantOf(c).ID)
		if err == db.ErrNotFound {
			return c.JSON(http.StatusOK, noDefaultEndpointBody{Object: "webhook_endpoint", UpdatedAt: merchantOf(c).UpdatedAt})
		}
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, e)
	}
}

type webhookEndpointRequest struct {
	URL *string `json:"url"`
}

// handleWebhookEndpointPut sets the default endpoint's URL, creating the
// endpoint if needed. The first set generates the signing secret and shows
// it, once.
func handleWebhookEndpointPut(store *db.Store, allowPrivateNetworks bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req webhookEndpointRequest
		if _, err := decodeJSON(c, &req); err != nil {
			return err
		}
		if err := checkEndpointURL(c, req.URL, allowPrivateNetworks); err != nil {
			return err
		}
		e, err := store.EndpointSetDefaultURL(c.Request().Context(), merchantOf(c).ID, *req.URL)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, e)
	}
}

// checkEndpointURL requires an http(s) URL that, unless
// WEBHOOK_ALLOW_PRIVATE_NETWORKS, does not resolve to a private address
// (checked again when each delivery dials).
func checkEndpointURL(c echo.Context, url *string, allowPrivateNetworks bool) error {
	if url == nil || strings.TrimSpace(*url) == "" {
		return invalidField("url", "url is required")
	}
	if err := checkText("url", url, 2048); err != nil {
		return err
	}
	if err := netguard.CheckURL(c.Request().Context(), *url, allowPrivateNetworks); err != nil {
		return invalidField("url", "url: "+err.Error())
	}
	return nil
}

// defaultEndpoint returns the merchant's default endpoint, or an
// EConflict error when it has none.
func defaultEndpoint(c echo.Context, store *db.Store) (*db.Endpoint, error) {
	e, err := store.EndpointGetDefault(c.Request().Context(), merchantOf(c).ID)
	if err == db.ErrNotFound {
		return nil, &db.Error{Code: db.EConflict, Message: "no webhook endpoint is set: PUT /v1/webhook-endpoint first"}
	}
	return e, err
}

func handleWebhookEndpointRotateSecret(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		e, err := defaultEndpoint(c, store)
		if err != nil {
			return err
		}
		return rotateSecret(c, store, e.ID)
	}
}

func handleWebhookEndpointTest(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		e, err := defaultEndpoint(c, store)
		if err != nil {
			return err
		}
		return sendTest(c, store, e.ID)
	}
}

// sendTest sends a webhook.test event to one endpoint and answers 201 with
// its delivery, to follow at GET /v1/webhook-deliveries/{id}. It takes no
// body, and accepts Idempotency-Key like every POST create.
func sendTest(c echo.Context, store *db.Store, endpointID uuid.UUID) error {
	var req struct{}
	body, err := decodeJSON(c, &req)
	if err != nil {
		return err
	}
	merchantID := merchantOf(c).ID
	return createIdempotent(c, store, body, func(tx pgx.Tx) (any, error) {
		return store.EndpointSendTestTx(c.Request().Context(), tx, merchantID, endpointID)
	})
}
