package main

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/boohpay/boohpay/api"
	"github.com/boohpay/boohpay/jobs"
)

// config is the service's environment, parsed and checked once at start.
type config struct {
	DatabaseURL       string
	HTTPAddr          string
	LogLevel          slog.Level
	LogFormat         string
	AdminToken        string
	MetricsToken      string
	Role              string
	MigrateOnStart    bool
	WebhookTimeout    time.Duration
	WebhookMaxRetries int
	// RecoverySchedule is the recovery tail; empty (not nil) when "off".
	RecoverySchedule []time.Duration
	// DisableAfter is WEBHOOK_DISABLE_AFTER; 0 never disables.
	DisableAfter         time.Duration
	SweepInterval        time.Duration
	SweepBatch           int
	WebhookRetention     time.Duration
	RiverPollOnly        bool
	AllowPrivateNetworks bool
	// ProviderSecrets are the inbound providers' secrets by provider, read
	// from the setting each names (STRIPE_WEBHOOK_SECRET, …).
	ProviderSecrets map[string]string
	ShutdownTimeout time.Duration
	DatabaseTimeout time.Duration
	RateLimit       float64 // requests a second per API key; 0 = unlimited
}

// configError names the variable at fault, so a bad deploy fails with one clear line.
type configError struct {
	name, value, want string
}

func (e *configError) Error() string {
	return fmt.Sprintf("invalid %s=%q: %s", e.name, e.value, e.want)
}

func loadConfig(getenv func(string) string) (*config, error) {
	p := envParser{getenv: getenv}
	cfg := &config{
		DatabaseURL:          getenv("DATABASE_URL"),
		HTTPAddr:             p.addr("HTTP_ADDR", ":3000"),
		LogFormat:            p.oneOf("LOG_FORMAT", "text", "json", "text"),
		AdminToken:           getenv("ADMIN_TOKEN"),
		MetricsToken:         getenv("METRICS_TOKEN"),
		Role:                 p.oneOf("ROLE", "all", "all", "api", "worker"),
		MigrateOnStart:       p.boolean("MIGRATE_ON_START", true),
		WebhookTimeout:       p.duration("WEBHOOK_TIMEOUT", 10*time.Second),
		WebhookMaxRetries:    p.integer("WEBHOOK_MAX_RETRIES", 5, 0, 25),
		RecoverySchedule:     p.schedule("WEBHOOK_RECOVERY_SCHEDULE", jobs.RecoveryScheduleDefault),
		DisableAfter:         p.durationOrZero("WEBHOOK_DISABLE_AFTER", 72*time.Hour),
		SweepInterval:        p.duration("WEBHOOK_SWEEP_INTERVAL", 30*time.Second),
		SweepBatch:           p.integer("WEBHOOK_SWEEP_BATCH", 50, 1, 10000),
		WebhookRetention:     p.duration("WEBHOOK_RETENTION", 30*24*time.Hour),
		RiverPollOnly:        p.boolean("RIVER_POLL_ONLY", false),
		AllowPrivateNetworks: p.boolean("WEBHOOK_ALLOW_PRIVATE_NETWORKS", false),
		ShutdownTimeout:      p.duration("SHUTDOWN_TIMEOUT", 25*time.Second),
		DatabaseTimeout:      p.duration("DATABASE_TIMEOUT", 5*time.Second),
		RateLimit:            p.rate("RATE_LIMIT", 100),
	}
	for _, ps := range api.InboundProviderSettings() {
		if v := getenv(ps.Setting); v != "" {
			if cfg.ProviderSecrets == nil {
				cfg.ProviderSecrets = map[string]string{}
			}
			cfg.ProviderSecrets[ps.Name] = v
		}
	}
	switch level := strings.ToLower(p.str("LOG_LEVEL", "info")); level {
	case "debug":
		cfg.LogLevel = slog.LevelDebug
	case "info":
		cfg.LogLevel = slog.LevelInfo
	case "warn", "warning":
		cfg.LogLevel = slog.LevelWarn
	case "error":
		cfg.LogLevel = slog.LevelError
	default:
		p.fail("LOG_LEVEL", level, "want debug, info, warn or error")
	}
	if p.err != nil {
		return nil, p.err
	}
	return cfg, nil
}

// requireDatabase checks DATABASE_URL for the commands that need one.
func (c *config) requireDatabase() error {
	if c.DatabaseURL == "" {
		return fmt.Errorf("DATABASE_URL is not set (make run starts a local Postgres and sets it)")
	}
	// pgx's own parser, so what passes here is what the pool accepts; its
	// error is not shown, since it may echo a password it could not find.
	if _, err := pgx.ParseConfig(c.DatabaseURL); err != nil {
		return &configError{"DATABASE_URL", redactURL(c.DatabaseURL), "want postgres://user:pass@host:port/db?sslmode=disable|require|verify-full"}
	}
	return nil
}

// redactURL hides a password before a URL reaches an error or a log; what
// does not parse as a URL is not shown at all.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return "<hidden>"
	}
	return u.Redacted()
}

// envParser reads typed variables and keeps the first error.
type envParser struct {
	getenv func(string) string
	err    error
}

func (p *envParser) fail(name, value, want string) {
	if p.err == nil {
		p.err = &configError{name, value, want}
	}
}

func (p *envParser) str(name, def string) string {
	if v := p.getenv(name); v != "" {
		return v
	}
	return def
}

// addr reads a listen address, host:port with an empty host meaning every interface.
func (p *envParser) addr(name, def string) string {
	v := p.str(name, def)
	_, port, err := net.SplitHostPort(v)
	if err == nil {
		_, err = net.LookupPort("tcp", port)
	}
	if err != nil {
		p.fail(name, v, "want host:port such as :3000 or 127.0.0.1:3000")
		return def
	}
	return v
}

func (p *envParser) oneOf(name, def string, allowed ...string) string {
	v := p.str(name, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail(name, v, "want one of "+strings.Join(allowed, ", "))
	return def
}

func (p *envParser) duration(name string, def time.Duration) time.Duration {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.fail(name, v, "want a positive duration such as 10s")
		return def
	}
	return d
}

// durationOrZero is duration, with 0 allowed (meaning "never").
func (p *envParser) durationOrZero(name string, def time.Duration) time.Duration {
	v := p.getenv(name)
	if v == "0" {
		return 0
	}
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		p.fail(name, v, "want a duration such as 72h, or 0 for never")
		return def
	}
	return d
}

// schedule reads a comma-separated list of positive durations (at most
// 20), or "off" for none.
func (p *envParser) schedule(name string, def []time.Duration) []time.Duration {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	if v == "off" {
		return []time.Duration{}
	}
	parts := strings.Split(v, ",")
	if len(parts) > 20 {
		p.fail(name, v, "want at most 20 steps")
		return def
	}
	out := make([]time.Duration, len(parts))
	for i, part := range parts {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 {
			p.fail(name, v, "want off, or comma-separated positive durations such as 5m,30m,2h,5h,10h,10h")
			return def
		}
		out[i] = d
	}
	return out
}

func (p *envParser) integer(name string, def, lo, hi int) int {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(name, v, fmt.Sprintf("want an integer from %d to %d", lo, hi))
		return def
	}
	return n
}

func (p *envParser) boolean(name string, def bool) bool {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, v, "want true or false")
		return def
	}
	return b
}

// rate reads a number of requests a second, such as 100 or 2.5; 0 turns
// the limit off.
func (p *envParser) rate(name string, def float64) float64 {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	r, err := strconv.ParseFloat(v, 64)
	if err != nil || r < 0 || math.IsInf(r, 0) || math.IsNaN(r) {
		p.fail(name, v, "want requests a second as a number such as 100 (0: no limit)")
		return def
	}
	return r
}
