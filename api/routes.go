package api

import (
	"log/slog"

	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
)

// addRoutes lists every route the service answers: the API surface at a glance.
func addRoutes(e *echo.Echo, cfg Config, log *slog.Logger, store *db.Store) {
	e.GET("/healthz", handleHealthz())
	e.GET("/readyz", handleReadyz(store))

	v1 := e.Group("/v1", requireMerchant(store))

	// Payments, payouts, events.

	// Webhook endpoint and deliveries.

	// Provider webhooks (no API key: each provider's own signature).

	// Ops.
	_ = v1
}
