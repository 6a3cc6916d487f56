package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/boohpay/boohpay/api"
	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/netguard"
)

// run is the whole program, with its inputs passed in so tests can run it
// in-process. A *usageError (exit 2) means the command line was wrong; any
// other error (exit 1) is a failure.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if args == nil {
		args = []string{} // cobra reads os.Args when given nil
	}
	root := newRootCmd(getenv, stdout, stderr)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// usageError is a command line the program cannot run: exit 2, with a
// pointer to the command's --help.
type usageError struct {
	msg, command string
}

func (e *usageError) Error() string {
	return fmt.Sprintf("%s (see %s --help)", e.msg, e.command)
}

func usageErrorf(c *cobra.Command, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), command: c.CommandPath()}
}

// exitCode is the process's exit status for run's error.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// usageArgs turns cobra's argument checks into usage errors.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := check(c, args); err != nil {
			return usageErrorf(c, "%v", err)
		}
		return nil
	}
}

// requireSubcommand is the action of a command that only groups others:
// without one, or with an unknown one, it is a usage error.
func requireSubcommand(c *cobra.Command, args []string) error {
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	if len(args) > 0 {
		return usageErrorf(c, "unknown command %q for %q; want one of %s", args[0], c.CommandPath(), strings.Join(names, ", "))
	}
	return usageErrorf(c, "%s needs a command: one of %s", c.CommandPath(), strings.Join(names, ", "))
}

// newRootCmd builds the command tree. The environment is read (and checked)
// only when a command runs, so --help and version work whatever it holds.
func newRootCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var cfg *config
	var log *slog.Logger
	root := &cobra.Command{
		Use:   "boohpay",
		Short: "BoohPay: payments, payouts and signed webhooks, on one Postgres",
		Long: `BoohPay: payments, payouts and signed webhooks, on one Postgres.

Configuration comes from the environment (DATABASE_URL, HTTP_ADDR, LOG_LEVEL, ...; see README).`,
		Args:          cobra.ArbitraryArgs,
		RunE:          requireSubcommand,
		SilenceErrors: true, // main prints the one error line
		SilenceUsage:  true,
		PersistentPreRunE: func(c *cobra.Command, args []string) error {
			var err error
			if cfg, err = loadConfig(getenv); err != nil {
				return err
			}
			log = newLogger(cfg, stderr)
			return nil
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageErrorf(c, "%v", err) })

	serveCmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the API and the webhook workers (per ROLE); applies pending migrations first",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, args []string) error {
			return serve(c.Context(), cfg, log)
		},
	}

	migrateCmd := &cobra.Command{
		Use:   "migrate",
		Short: "Manage the database schema: up, down N, version",
		Args:  cobra.ArbitraryArgs,
		RunE:  requireSubcommand,
	}
	migrateCmd.AddCommand(
		&cobra.Command{
			Use:   "up",
			Short: "Apply every pending migration",
			Args:  usageArgs(cobra.NoArgs),
			RunE: func(c *cobra.Command, args []string) error {
				return migrate(cfg, c.OutOrStdout(), func(m *db.Migrator) error { return m.Up() })
			},
		},
		&cobra.Command{
			Use:   "down N",
			Short: "Roll back the last N migrations",
			Args:  usageArgs(cobra.ExactArgs(1)),
			RunE: func(c *cobra.Command, args []string) error {
				n, err := strconv.Atoi(args[0])
				if err != nil || n < 1 {
					return usageErrorf(c, "migrate down: N must be a positive integer, got %q", args[0])
				}
				return migrate(cfg, c.OutOrStdout(), func(m *db.Migrator) error { return m.Down(n) })
			},
		},
		&cobra.Command{
			Use:   "version",
			Short: "Print the schema version of the database",
			Args:  usageArgs(cobra.NoArgs),
			RunE: func(c *cobra.Command, args []string) error {
				return migrate(cfg, c.OutOrStdout(), func(*db.Migrator) error { return nil })
			},
		},
	)

	merchantCmd := &cobra.Command{
		Use:   "merchant",
		Short: "Create merchants and their API keys",
		Args:  cobra.ArbitraryArgs,
		RunE:  requireSubcommand,
	}
	merchantCmd.AddCommand(newMerchantCreateCmd(&cfg), newAPIKeyCmd(&cfg))

	webhooksCmd := &cobra.Command{
		Use:   "webhooks",
		Short: "Tools for webhook receivers",
		Args:  cobra.ArbitraryArgs,
		RunE:  requireSubcommand,
	}
	webhooksCmd.AddCommand(newListenCmd())

	versionCmd := &cobra.Command{
		Use:               "version",
		Short:             "Print the version and the commit this binary was built from",
		Args:              usageArgs(cobra.NoArgs),
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil }, // needs no configuration
		RunE: func(c *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(c.OutOrStdout(), versionLine())
			return err
		},
	}

	root.AddCommand(serveCmd, migrateCmd, merchantCmd, webhooksCmd, versionCmd)
	return root
}

// versionLine says which build this is: the module version (a release tag,
// or "(devel)" for a local build) and the VCS commit Go stamped into it.
func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "boohpay (no build information)"
	}
	commit, modified := "unknown", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("boohpay %s commit %s %s", info.Main.Version, commit, info.GoVersion)
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// migrate runs step on the database's migrator and prints the version after it.
func migrate(cfg *config, stdout io.Writer, step func(*db.Migrator) error) error {
	if err := cfg.requireDatabase(); err != nil {
		return err
	}
	m, err := db.NewMigrator(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := step(m); err != nil {
		return err
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

// openStore connects to DATABASE_URL for a one-shot command.
func openStore(ctx context.Context, cfg *config) (*db.Store, func(), error) {
	if err := cfg.requireDatabase(); err != nil {
		return nil, nil, err
	}
	pool, err := db.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, nil, err
	}
	store, err := db.NewStore(pool)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return store, pool.Close, nil
}

func newMerchantCreateCmd(cfg **config) *cobra.Command {
	var name, webhookURL string
	c := &cobra.Command{
		Use:   "create --name NAME [--webhook-url URL]",
		Short: "Create a merchant; prints one JSON object: id, name, api_key, webhook_url, webhook_secret",
		Long: `Create a merchant with its first API key, and a webhook signing secret when --webhook-url is given.
Prints one JSON object: {"id","name","api_key","webhook_url","webhook_secret"}. The API key is shown
only here (only its hash is stored).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, args []string) error {
			if strings.TrimSpace(name) == "" {
				return usageErrorf(c, "merchant create: --name is required")
			}
			ctx := c.Context()
			if webhookURL != "" {
				if err := netguard.CheckURL(ctx, webhookURL, (*cfg).AllowPrivateNetworks); err != nil {
					return fmt.Errorf("merchant create: --webhook-url: %w%s", err, api.PrivateNetworksHint(err))
				}
			}
			store, closeStore, err := openStore(ctx, *cfg)
			if err != nil {
				return err
			}
			defer closeStore()
			nm, err := store.MerchantCreate(ctx, name, webhookURL)
			if err != nil {
				return err
			}
			return json.NewEncoder(c.OutOrStdout()).Encode(struct {
				ID            string  `json:"id"`
				Name          string  `json:"name"`
				APIKey        string  `json:"api_key"`
				WebhookURL    *string `json:"webhook_url"`
				WebhookSecret *string `json:"webhook_secret"`
			}{nm.Merchant.ID.String(), nm.Merchant.Name, nm.APIKey, nm.Merchant.WebhookURL, nm.Merchant.WebhookSecret})
		},
	}
	c.Flags().StringVar(&name, "name", "", "the merchant's name (required)")
	c.Flags().StringVar(&webhookURL, "webhook-url", "", "its webhook endpoint URL; a signing secret is generated with it")
	return c
}

func newAPIKeyCmd(cfg **config) *cobra.Command {
	group := &cobra.Command{
		Use:   "api-key",
		Short: "Create or rotate a merchant's API keys (operators; merchants use /v1/api-keys)",
		Args:  cobra.ArbitraryArgs,
		RunE:  requireSubcommand,
	}

	var merchant, name, key string
	merchantID := func(c *cobra.Command) (uuid.UUID, error) {
		if merchant == "" {
			return uuid.Nil, usageErrorf(c, "%s: --merchant is required", c.CommandPath())
		}
		id, err := uuid.Parse(merchant)
		if err != nil {
			return uuid.Nil, usageErrorf(c, "%s: --merchant must be a merchant id (a UUID), got %q", c.CommandPath(), merchant)
		}
		return id, nil
	}
	namePtr := func() *string {
		if strings.TrimSpace(name) == "" {
			return nil
		}
		return &name
	}
	printKey := func(c *cobra.Command, k *db.NewAPIKey) error {
		return json.NewEncoder(c.OutOrStdout()).Encode(k)
	}

	create := &cobra.Command{
		Use:   "create --merchant ID [--name NAME]",
		Short: "Issue a new API key to a merchant (one that lost all of its own, say); prints it once, as JSON",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := merchantID(c)
			if err != nil {
				return err
			}
			store, closeStore, err := openStore(c.Context(), *cfg)
			if err != nil {
				return err
			}
			defer closeStore()
			k, err := store.APIKeyCreate(c.Context(), id, namePtr())
			if err != nil {
				return apiKeyError(err, id)
			}
			return printKey(c, k)
		},
	}
	create.Flags().StringVar(&merchant, "merchant", "", "the merchant's id (required)")
	create.Flags().StringVar(&name, "name", "", "a name to tell the key apart from the merchant's others")

	rotate := &cobra.Command{
		Use:   "rotate --key LEAKED_KEY | --merchant ID [--key KEY_ID] [--name NAME]",
		Short: "Replace a leaked key in one step: a new key, and the old one (or every other) revoked at once",
		Long: `Replace a leaked key in one transaction: create a new API key and revoke the old one,
effective on the next request. --key is the leaked key itself (bp_…; its merchant is found from it)
or its id (from GET /v1/api-keys, with --merchant). With --merchant and no --key, every other active
key of the merchant is revoked. Prints one JSON object:
{"api_key": the new key with "key" (shown only here), "revoked": [the keys revoked]}.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, args []string) error {
			if merchant == "" && key == "" {
				return usageErrorf(c, "%s: --key (the leaked key) or --merchant is required", c.CommandPath())
			}
			var id, keyID uuid.UUID
			var err error
			if merchant != "" {
				if id, err = merchantID(c); err != nil {
					return err
				}
			}
			clear := strings.HasPrefix(key, db.APIKeyPrefix)
			if key != "" && !clear {
				if merchant == "" {
					return usageErrorf(c, "%s: --key %q is a key id: give --merchant too, or pass the key itself (bp_…)", c.CommandPath(), key)
				}
				if keyID, err = uuid.Parse(key); err != nil {
					return usageErrorf(c, "%s: --key must be the key itself (bp_…) or its id (a UUID), got %q", c.CommandPath(), key)
				}
			}
			store, closeStore, err := openStore(c.Context(), *cfg)
			if err != nil {
				return err
			}
			defer closeStore()
			if clear {
				leaked, err := store.APIKeyGetByKey(c.Context(), key)
				if errors.Is(err, db.ErrNotFound) {
					return errors.New("merchant api-key rotate: no active API key is --key (already revoked?)")
				}
				if err != nil {
					return err
				}
				if merchant != "" && leaked.MerchantID != id {
					return fmt.Errorf("merchant api-key rotate: --key belongs to another merchant than %s", id)
				}
				id, keyID = leaked.MerchantID, leaked.ID
			}
			k, revoked, err := store.APIKeyRotate(c.Context(), id, keyID, namePtr())
			if err != nil {
				return apiKeyError(err, id)
			}
			if revoked == nil {
				revoked = []*db.APIKey{}
			}
			return json.NewEncoder(c.OutOrStdout()).Encode(struct {
				APIKey  *db.NewAPIKey `json:"api_key"`
				Revoked []*db.APIKey  `json:"revoked"`
			}{k, revoked})
		},
	}
	rotate.Flags().StringVar(&merchant, "merchant", "", "the merchant's id (not needed when --key is the key itself)")
	rotate.Flags().StringVar(&key, "key", "", "the leaked key itself (bp_…), or its id with --merchant")
	rotate.Flags().StringVar(&name, "name", "", "a name for the new key")

	group.AddCommand(create, rotate)
	return group
}

// apiKeyError says which merchant or key was not found.
func apiKeyError(err error, merchantID uuid.UUID) error {
	if errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("no merchant %s, or no such active key of it", merchantID)
	}
	return err
}
