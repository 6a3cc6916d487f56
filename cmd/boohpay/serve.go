package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/boohpay/boohpay/api"
	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/jobs"
	"github.com/boohpay/boohpay/metrics"
)

// serve runs the HTTP API (ROLE all|api) and the River workers (ROLE
// all|worker) until ctx ends, then drains both within ShutdownTimeout.
func serve(ctx context.Context, cfg *config, log *slog.Logger) error {
	if err := cfg.requireDatabase(); err != nil {
		return err
	}
	if cfg.MigrateOnStart {
		if err := migrateUp(cfg.DatabaseURL); err != nil {
			return err
		}
	}
	pool, err := db.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := db.NewStore(pool)
	if err != nil {
		return err
	}
	// The service's own registry, never Prometheus' global one.
	m := metrics.New(prometheus.NewRegistry(), metrics.Config{Pool: pool, Queues: []string{db.DeliveryQueue}, Logger: log})
	store.SetObserver(m) // payments_total & co., counted after commit
	retries := cfg.WebhookMaxRetries
	if retries == 0 {
		retries = -1 // jobs.Config: 0 means the default, negative means none
	}
	disableAfter := cfg.DisableAfter
	if disableAfter == 0 {
		disableAfter = -1 // jobs.Config: 0 means the default, negative means never
	}
	riverClient, err := jobs.NewClient(store, log, jobs.Config{
		WebhookTimeout:    cfg.WebhookTimeout,
		WebhookMaxRetries: retries,
		RecoverySchedule:  cfg.RecoverySchedule,
		DisableAfter:      disableAfter,
		SweepInterval:     cfg.SweepInterval,
		SweepBatch:        cfg.SweepBatch,
		Retention:         cfg.WebhookRetention,
		PollOnly:          cfg.RiverPollOnly,
		Metrics:           m,

		AllowPrivateNetworks: cfg.AllowPrivateNetworks,
	})
	if err != nil {
		return err
	}

	runWorkers := cfg.Role == "all" || cfg.Role == "worker"
	runAPI := cfg.Role == "all" || cfg.Role == "api"

	// Bind the port before anything runs, so a taken HTTP_ADDR fails at once.
	// Every role listens: a worker serves its probes and metrics there.
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listening on HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	defer ln.Close()

	if runWorkers {
		defer m.SubscribeRiver(riverClient)()
		// Not ctx itself: cancelling Start's context is River's hard stop,
		// which would cancel running deliveries at the first signal. Stop
		// below lets them finish, within ShutdownTimeout.
		if err := riverClient.Start(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("starting river: %w", err)
		}
		log.Info("workers started")
	}

	var riverUI http.Handler
	if runAPI && cfg.AdminToken != "" { // without it /admin answers 404: no UI to build
		if riverUI, err = api.NewRiverUI(ctx, riverClient, log); err != nil {
			return err
		}
	}
	e := api.NewServer(api.Config{
		AdminToken:           cfg.AdminToken,
		MetricsToken:         cfg.MetricsToken,
		AllowPrivateNetworks: cfg.AllowPrivateNetworks,
		DatabaseTimeout:      cfg.DatabaseTimeout,

		ProviderSecrets: cfg.ProviderSecrets,

		RateLimit: cfg.RateLimit,

		OpsOnly: !runAPI,
		RiverUI: riverUI,
	}, log, store, m)
	srv := api.NewHTTPServer(e, api.ServerLimits{})
	srv.ConnState = m.ConnState
	serveErr := make(chan error, 1)
	log.Info("listening", "addr", ln.Addr().String(), "role", cfg.Role)
	go func() { serveErr <- srv.Serve(ln) }()

	var errs []error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		// The workers still stop cleanly below.
		log.Error("http server failed; shutting down", "error", err)
		errs = append(errs, fmt.Errorf("http server: %w", err))
	}

	// The parent context is already cancelled; draining gets its own bound.
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		errs = append(errs, fmt.Errorf("draining http: %w", err))
	}
	if runWorkers {
		if err := riverClient.Stop(shutdownCtx); err != nil {
			// Jobs still running past the bound are cancelled; River hands
			// them back and the sweep or their retry picks them up again.
			log.Warn("workers did not finish in time; cancelling", "error", err)
			cancelCtx, cancel2 := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel2()
			if err := riverClient.StopAndCancel(cancelCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				errs = append(errs, fmt.Errorf("stopping river: %w", err))
			}
		}
	}
	log.Info("stopped")
	return errors.Join(errs...)
}

func migrateUp(url string) error {
	m, err := db.NewMigrator(url)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Up()
}
