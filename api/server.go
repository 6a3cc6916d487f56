// Package api owns BoohPay's HTTP surface: the merchant REST API, provider
// webhooks, ops endpoints and the middleware around them. routes.go lists
// every route.
package api

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/metrics"
)

// Config is what the HTTP layer needs from the environment.
type Config struct {
	AdminToken           string
	MetricsToken         string
	AllowPrivateNetworks bool

	// ProviderSecrets are the inbound providers' secrets by provider name
	// (InboundProviderSettings says which setting holds each: Stripe's
	// whsec_… as given, Moneroo's, eBilling's ?token=); an unset one
	// disables its route (503).
	ProviderSecrets map[string]string

	// RateLimit is each API key's allowance in requests a second (burst
	// twice that); 0 leaves the merchant API unlimited.
	RateLimit float64

	// OpsOnly serves only /healthz, /readyz and /metrics: a ROLE=worker process.
	OpsOnly bool

	// DatabaseTimeout bounds how long one request may wait on the database
	// (DATABASE_TIMEOUT): acquiring a connection, each statement, the whole
	// transaction. Past it the answer is 503 service_unavailable with
	// Retry-After. Zero means databaseTimeoutDefault.
	DatabaseTimeout time.Duration

	// RiverUI is River's web UI (NewRiverUI), served at /admin/river/
	// behind the admin guard; nil leaves it out.
	RiverUI http.Handler
}

// maxBodyBytes caps every request body; larger ones answer 413. Spelled
// "1MiB" because Echo's size parser reads "1M" as 1,000,000 bytes.
const maxBodyBytes = "1MiB"

// databaseTimeoutDefault is DATABASE_TIMEOUT's default: long enough for a
// loaded database, short enough that a client (and a load balancer's health
// check) hears 503 well before it gives up.
const databaseTimeoutDefault = 5 * time.Second

// NewServer builds the Echo instance with every route and middleware. m
// records the HTTP metrics and is served on GET /metrics; nil records nothing.
func NewServer(cfg Config, log *slog.Logger, store *db.Store, m *metrics.Metrics) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = newErrorHandler(log)
	e.Use(requestID())
	e.Use(recordRequests(m, e))
	e.Use(requestLogger(log))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			log.ErrorContext(c.Request().Context(), "panic", "error", err, "stack", string(stack))
			return err
		},
	}))
	e.Use(middleware.BodyLimit(maxBodyBytes))
	e.Use(boundDatabaseWait(cmp.Or(cfg.DatabaseTimeout, databaseTimeoutDefault)))
	e.Use(checkInput())
	registerProviderMetrics(m)
	addRoutes(e, cfg, log, store, m)
	initRouteMetrics(m, e)
	return e
}

// ServerLimits bound what one client can hold of the HTTP server; zero
// fields take the defaults.
type ServerLimits struct {
	ReadHeaderTimeout time.Duration // request line and headers (10s)
	ReadTimeout       time.Duration // the whole request, body included (30s)
	WriteTimeout      time.Duration // from the end of the headers to the end of the answer (60s)
	IdleTimeout       time.Duration // a keep-alive connection between requests (60s)
	MaxHeaderBytes    int           // request line and headers (64 KiB; more answers 431)
}

// NewHTTPServer wraps h in an http.Server with limits, so that a slow or
// idle client cannot hold a connection: one body byte every few seconds,
// headers that never end, or a keep-alive connection left open.
func NewHTTPServer(h http.Handler, limits ServerLimits) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cmp.Or(limits.ReadHeaderTimeout, 10*time.Second),
		ReadTimeout:       cmp.Or(limits.ReadTimeout, 30*time.Second),
		WriteTimeout:      cmp.Or(limits.WriteTimeout, 60*time.Second),
		IdleTimeout:       cmp.Or(limits.IdleTimeout, 60*time.Second),
		MaxHeaderBytes:    cmp.Or(limits.MaxHeaderBytes, 64<<10),
	}
}

// requestLogger logs one line per request with its id; never headers or
// bodies, which carry API keys and secrets.
func requestLogger(log *slog.Logger) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus:    true,
		LogMethod:    true,
		LogURIPath:   true,
		LogRoutePath: true,
		LogLatency:   true,
		LogRequestID: true,
		LogError:     true,
		HandleError:  true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			level := slog.LevelInfo
			if v.Status >= http.StatusInternalServerError {
				level = slog.LevelError
			}
			log.LogAttrs(c.Request().Context(), level, "request",
				slog.String("request_id", v.RequestID),
				slog.String("method", v.Method),
				slog.String("path", v.URIPath),
				slog.String("route", v.RoutePath),
				slog.Int("status", v.Status),
				// In milliseconds, with the unit in the key: slog writes a
				// Duration as bare nanoseconds in JSON.
				slog.Float64("latency_ms", float64(v.Latency.Microseconds())/1000))
			return nil
		},
	})
}

// boundDatabaseWait gives each request a deadline, so no request waits on the
// database longer than timeout: pgxpool's acquire, pgx's connect and every
// statement end at the request context's deadline (pgx closes a connection
// whose statement it abandons), and the error handler answers the
// resulting context.DeadlineExceeded 503 (db.Unavailable).
func boundDatabaseWait(timeout time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			ctx, cancel := context.WithTimeout(c.Request().Context(), timeout)
			defer cancel()
			c.SetRequest(c.Request().WithContext(ctx))
			return next(c)
		}
	}
}
