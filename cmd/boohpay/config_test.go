package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// env returns a getenv over pairs, as the process environment would be.
func env(pairs map[string]string) func(string) string {
	return func(k string) string { return pairs[k] }
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(env(nil))
	require.NoError(t, err)
	require.Equal(t, &config{
		HTTPAddr:          ":3000",
		LogLevel:          slog.LevelInfo,
		LogFormat:         "text",
		Role:              "all",
		MigrateOnStart:    true,
		WebhookTimeout:    10 * time.Second,
		WebhookMaxRetries: 5,
		// The recovery tail: 5m,30m,2h,5h,10h,10h (27 h 35 m after the fast cycle).
		RecoverySchedule: []time.Duration{5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour},
		DisableAfter:     72 * time.Hour,
		SweepInterval:    30 * time.Second,
		SweepBatch:       50,
		WebhookRetention: 30 * 24 * time.Hour,
		ShutdownTimeout:  25 * time.Second,
		DatabaseTimeout:  5 * time.Second,
		RateLimit:        100,
	}, cfg)
}

func TestConfigRecoveryScheduleAndDisableAfter(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(env(map[string]string{"WEBHOOK_RECOVERY_SCHEDULE": "off", "WEBHOOK_DISABLE_AFTER": "0"}))
	require.NoError(t, err)
	require.NotNil(t, cfg.RecoverySchedule, "off is an empty schedule, not the default")
	require.Empty(t, cfg.RecoverySchedule)
	require.Zero(t, cfg.DisableAfter)
	cfg, err = loadConfig(env(map[string]string{"WEBHOOK_RECOVERY_SCHEDULE": "1m, 90s,2h", "WEBHOOK_DISABLE_AFTER": "24h"}))
	require.NoError(t, err)
	require.Equal(t, []time.Duration{time.Minute, 90 * time.Second, 2 * time.Hour}, cfg.RecoverySchedule)
	require.Equal(t, 24*time.Hour, cfg.DisableAfter)
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(env(map[string]string{
		"DATABASE_URL":                   "postgres://u:p@db:5432/boohpay",
		"HTTP_ADDR":                      "127.0.0.1:8080",
		"LOG_LEVEL":                      "DEBUG",
		"LOG_FORMAT":                     "json",
		"ADMIN_TOKEN":                    "adm",
		"METRICS_TOKEN":                  "met",
		"ROLE":                           "worker",
		"MIGRATE_ON_START":               "false",
		"WEBHOOK_TIMEOUT":                "3s",
		"WEBHOOK_MAX_RETRIES":            "0",
		"WEBHOOK_SWEEP_INTERVAL":         "1m",
		"WEBHOOK_RECOVERY_SCHEDULE":      "1m,1h",
		"WEBHOOK_DISABLE_AFTER":          "1h",
		"WEBHOOK_SWEEP_BATCH":            "200",
		"WEBHOOK_RETENTION":              "168h",
		"RIVER_POLL_ONLY":                "true",
		"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
		"STRIPE_WEBHOOK_SECRET":          "whsec_s",
		"MONEROO_WEBHOOK_SECRET":         "mon",
		"EBILLING_CALLBACK_TOKEN":        "ebt",
		"SHUTDOWN_TIMEOUT":               "5s",
		"DATABASE_TIMEOUT":               "1500ms",
		"RATE_LIMIT":                     "2.5",
	}))
	require.NoError(t, err)
	require.Equal(t, &config{
		DatabaseURL:          "postgres://u:p@db:5432/boohpay",
		HTTPAddr:             "127.0.0.1:8080",
		LogLevel:             slog.LevelDebug,
		LogFormat:            "json",
		AdminToken:           "adm",
		MetricsToken:         "met",
		Role:                 "worker",
		MigrateOnStart:       false,
		WebhookTimeout:       3 * time.Second,
		WebhookMaxRetries:    0,
		RecoverySchedule:     []time.Duration{time.Minute, time.Hour},
		DisableAfter:         time.Hour,
		SweepInterval:        time.Minute,
		SweepBatch:           200,
		WebhookRetention:     7 * 24 * time.Hour,
		RiverPollOnly:        true,
		AllowPrivateNetworks: true,
		ProviderSecrets:      map[string]string{"stripe": "whsec_s", "moneroo": "mon", "ebilling": "ebt"},
		ShutdownTimeout:      5 * time.Second,
		DatabaseTimeout:      1500 * time.Millisecond,
		RateLimit:            2.5,
	}, cfg)
}

// TestConfigErrors: every bad value makes run fail before doing anything,
// with one line that names the variable (and never shows a password).
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	const db = "postgres://postgres@127.0.0.1:1/postgres"
	for _, tc := range []struct {
		name, value string
		args        []string
	}{
		{"WEBHOOK_TIMEOUT", "ten", nil},
		{"WEBHOOK_TIMEOUT", "-1s", nil},
		{"WEBHOOK_SWEEP_INTERVAL", "30", nil},
		{"SHUTDOWN_TIMEOUT", "0s", nil},
		{"DATABASE_TIMEOUT", "5", nil},
		{"WEBHOOK_MAX_RETRIES", "five", nil},
		{"WEBHOOK_MAX_RETRIES", "-1", nil},
		{"WEBHOOK_MAX_RETRIES", "1000", nil},
		{"WEBHOOK_SWEEP_BATCH", "0", nil},
		{"WEBHOOK_SWEEP_BATCH", "1.5", nil},
		{"WEBHOOK_RETENTION", "30d", nil},
		{"WEBHOOK_RECOVERY_SCHEDULE", "5m,,1h", nil},
		{"WEBHOOK_RECOVERY_SCHEDULE", "5m,-1h", nil},
		{"WEBHOOK_RECOVERY_SCHEDULE", "none", nil},
		{"WEBHOOK_DISABLE_AFTER", "3d", nil},
		{"WEBHOOK_DISABLE_AFTER", "-1h", nil},
		{"RIVER_POLL_ONLY", "yes", nil},
		{"ROLE", "admin", nil},
		{"ROLE", "ALL", nil},
		{"LOG_FORMAT", "xml", nil},
		{"LOG_LEVEL", "loud", nil},
		{"MIGRATE_ON_START", "sometimes", nil},
		{"WEBHOOK_ALLOW_PRIVATE_NETWORKS", "maybe", nil},
		{"DATABASE_URL", "mysql://root:hunter2@db/boohpay", nil},
		{"DATABASE_URL", "not a url", nil},
		{"DATABASE_URL", "postgres://root:hunter2@db:port/boohpay", nil},
		{"DATABASE_URL", "postgres://root:hunter2@db/boohpay?sslmode=sometimes", nil},
		{"DATABASE_URL", "", nil},
		{"DATABASE_URL", "mysql://root:hunter2@db/boohpay", []string{"migrate", "up"}},
		{"DATABASE_URL", "", []string{"migrate", "version"}},
		{"DATABASE_URL", "mysql://root:hunter2@db/boohpay", []string{"merchant", "create", "--name", "A"}},
		{"DATABASE_URL", "postgres://root:hunter2@db/boohpay?sslmode=sometimes", []string{"merchant", "create", "--name", "A"}},
		{"HTTP_ADDR", "nowhere", nil},
		{"RATE_LIMIT", "fast", nil},
		{"RATE_LIMIT", "-1", nil},
		{"RATE_LIMIT", "100/s", nil},
		{"RATE_LIMIT", "Inf", nil},
	} {
		vars := map[string]string{"DATABASE_URL": db, "MIGRATE_ON_START": "false", tc.name: tc.value}
		args := tc.args
		if args == nil {
			args = []string{"serve"}
		}
		var stdout, stderr bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := run(ctx, args, env(vars), &stdout, &stderr)
		cancel()
		label := tc.name + "=" + tc.value + " " + strings.Join(args, " ")
		require.Error(t, err, label)
		msg := err.Error()
		require.Contains(t, msg, tc.name, label)
		require.NotContains(t, msg, "\n", "one line: %s", label)
		require.NotContains(t, msg, "hunter2", label)
		require.Empty(t, stdout.String(), label)
	}
}
