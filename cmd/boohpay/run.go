package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/jobs"
)

const usage = `usage: boohpay <command>

  serve                                         run the API and the webhook workers (per ROLE)
  migrate up | down N | version                 manage the database schema
  merchant create --name NAME [--webhook-url URL]
                                                create a merchant; prints one JSON object
  webhooks listen --addr ADDR --secret SECRET   receive, verify and print webhooks locally`

// run is the whole program, with its inputs passed in so tests can run it in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	switch args[0] {
	case "serve":
		return serve(ctx, cfg, log)
	case "migrate":
		return migrateCmd(cfg, args[1:], stdout)
	case "merchant":
		return merchantCmd(ctx, cfg, args[1:], stdout)
	case "webhooks":
		return webhooksCmd(ctx, args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func migrateCmd(cfg *config, args []string, stdout io.Writer) error {
	if err := cfg.requireDatabase(); err != nil {
		return err
	}
	if len(args) == 0 {
		return errors.New("usage: boohpay migrate up | down N | version")
	}
	m, err := db.NewMigrator(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer m.Close()
	switch {
	case args[0] == "up" && len(args) == 1:
		if err := m.Up(); err != nil {
			return err
		}
	case args[0] == "down":
		if len(args) != 2 {
			return errors.New("usage: boohpay migrate down N")
		}
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			return fmt.Errorf("migrate down: N must be a positive integer, got %q", args[1])
		}
		if err := m.Down(n); err != nil {
			return err
		}
	case args[0] == "version" && len(args) == 1:
	default:
		return fmt.Errorf("unknown migrate command %q: want up, down N or version", strings.Join(args, " "))
	}
	v, dirty, err := m.Version()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "version %d", v)
	if dirty {
		fmt.Fprint(stdout, " (dirty)")
	}
	fmt.Fprintln(stdout)
	return nil
}

func merchantCmd(ctx context.Context, cfg *config, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: boohpay merchant create --name NAME [--webhook-url URL]")
	}
	fs := flag.NewFlagSet("merchant create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "merchant name")
	webhookURL := fs.String("webhook-url", "", "webhook endpoint URL")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("merchant create: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("merchant create: unexpected argument %q (quote a name with spaces)", fs.Arg(0))
	}
	if strings.TrimSpace(*name) == "" {
		return errors.New("merchant create: --name is required")
	}
	if err := cfg.requireDatabase(); err != nil {
		return err
	}
	if *webhookURL != "" {
		if err := jobs.ValidateURL(ctx, *webhookURL, cfg.AllowPrivateNetworks); err != nil {
			return fmt.Errorf("merchant create: --webhook-url: %w", err)
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
	nm, err := store.MerchantCreate(ctx, *name, *webhookURL)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(struct {
		ID            string  `json:"id"`
		Name          string  `json:"name"`
		APIKey        string  `json:"api_key"`
		WebhookURL    *string `json:"webhook_url"`
		WebhookSecret *string `json:"webhook_secret"`
	}{nm.Merchant.ID.String(), nm.Merchant.Name, nm.APIKey, nm.Merchant.WebhookURL, nm.Merchant.WebhookSecret})
}
