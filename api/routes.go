package api

import (
	"log/slog"

	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/metrics"
)

// addRoutes lists every route the service answers: the API surface at a glance.
func addRoutes(e *echo.Echo, cfg Config, log *slog.Logger, store *db.Store, m *metrics.Metrics) {
	// Probes and metrics: every role serves these, so a ROLE=worker process
	// can be health-checked and scraped too.
	e.GET("/healthz", handleHealthz())
	e.GET("/readyz", handleReadyz(store))
	e.GET("/metrics", handleMetrics(m), requireToken(cfg.MetricsToken))
	if cfg.OpsOnly {
		return
	}
	e.GET("/openapi.yaml", handleOpenAPI())

	v1 := e.Group("/v1", requireMerchant(store), rateLimitPerKey(cfg.RateLimit))
	v1.RouteNotFound("/*", notFoundOrNotAllowed(e))

	// Payments, payouts, events.
	v1.POST("/payments", handlePaymentCreate(store))
	v1.GET("/payments", handlePaymentList(store))
	v1.GET("/payments/:id", handlePaymentGet(store))
	v1.POST("/payments/:id/cancel", handlePaymentCancel(store))
	v1.POST("/payments/:id/simulate", handlePaymentSimulate(store))
	v1.POST("/payouts", handlePayoutCreate(store))
	v1.GET("/payouts", handlePayoutList(store))
	v1.GET("/payouts/:id", handlePayoutGet(store))
	v1.POST("/payouts/:id/simulate", handlePayoutSimulate(store))
	v1.GET("/events", handleEventList(store))
	v1.GET("/events/:id", handleEventGet(store))

	// Webhook endpoint and deliveries.
	v1.GET("/webhook-endpoints", handleEndpointList(store))
	v1.POST("/webhook-endpoints", handleEndpointCreate(store, cfg.AllowPrivateNetworks))
	v1.GET("/webhook-endpoints/:id", handleEndpointGet(store))
	v1.PATCH("/webhook-endpoints/:id", handleEndpointPatch(store, cfg.AllowPrivateNetworks))
	v1.DELETE("/webhook-endpoints/:id", handleEndpointDelete(store))
	v1.POST("/webhook-endpoints/:id/rotate-secret", handleEndpointRotateSecret(store))
	v1.POST("/webhook-endpoints/:id/test", handleEndpointTest(store))
	v1.POST("/webhook-endpoints/:id/recover", handleEndpointRecover(store))
	v1.GET("/webhook-endpoint", handleWebhookEndpointGet(store))
	v1.PUT("/webhook-endpoint", handleWebhookEndpointPut(store, cfg.AllowPrivateNetworks))
	v1.POST("/webhook-endpoint/rotate-secret", handleWebhookEndpointRotateSecret(store))
	v1.POST("/webhook-endpoint/test", handleWebhookEndpointTest(store))
	v1.GET("/webhook-deliveries", handleDeliveryList(store))
	v1.GET("/webhook-deliveries/:id", handleDeliveryGet(store))
	v1.POST("/webhook-deliveries/:id/retry", handleDeliveryRetry(store))

	// API keys.
	v1.GET("/api-keys", handleAPIKeyList(store))
	v1.POST("/api-keys", handleAPIKeyCreate(store))
	v1.DELETE("/api-keys/:id", handleAPIKeyRevoke(store))

	// Provider webhooks (no API key: each provider's own signature), one
	// per inboundProviders entry: /v1/webhooks/stripe, /v1/webhooks/moneroo,
	// /v1/webhooks/ebilling. Registered on e, not v1, so the merchant key
	// check does not apply.
	for _, p := range inboundProviders {
		e.POST("/v1/webhooks/"+p.Name, handleProviderWebhook(p, cfg.ProviderSecrets[p.Name], store, log, m))
	}

	// Ops.
	admin := e.Group("/admin", requireAdmin(cfg.AdminToken))
	admin.RouteNotFound("/*", notFoundOrNotAllowed(e))
	admin.POST("/merchants", handleAdminMerchantCreate(store, cfg.AllowPrivateNetworks))
	admin.POST("/merchants/:id/api-keys", handleAdminAPIKeyCreate(store))
	admin.POST("/payments/:id/status", handleAdminPaymentStatus(store))
	admin.POST("/payouts/:id/status", handleAdminPayoutStatus(store))
	admin.GET("/reviews", handleAdminReviewList(store))
	admin.POST("/payments/:id/review/resolve", handleAdminReviewResolve(store, db.ObjectPayment))
	admin.POST("/payouts/:id/review/resolve", handleAdminReviewResolve(store, db.ObjectPayout))
	admin.GET("/webhook-failures", handleAdminWebhookFailureList(store))
	if cfg.RiverUI != nil {
		admin.Any("/river", echo.WrapHandler(cfg.RiverUI)) // redirects to /admin/river/
		admin.Any("/river/*", echo.WrapHandler(cfg.RiverUI))
	}
}
