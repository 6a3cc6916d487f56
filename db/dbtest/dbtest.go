// Package dbtest gives each test its own real Postgres database, cloned from
// a template that is migrated once per schema (the pgtestdb approach): tests
// run in parallel, isolated, without paying for migrations each time.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/boohpay/boohpay/db"
	schema "github.com/boohpay/boohpay/sql"
)

// BaseURL is the server tests use: TEST_DATABASE_URL, else DATABASE_URL.
// `make test` starts a throwaway server and sets both.
func BaseURL(t testing.TB) string {
	u := os.Getenv("TEST_DATABASE_URL")
	if u == "" {
		u = os.Getenv("DATABASE_URL")
	}
	if u == "" {
		t.Fatal("TEST_DATABASE_URL is not set: run the tests with `make test`, which starts Postgres")
	}
	return u
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// URL creates a fresh migrated database for t, dropped when t ends, and
// returns its URL.
func URL(t testing.TB) string {
	t.Helper()
	base := BaseURL(t)
	ctx := context.Background()
	templateOnce.Do(func() { templateName, templateErr = ensureTemplate(ctx, base) })
	if templateErr != nil {
		t.Fatalf("preparing template database: %v", templateErr)
	}
	name := "boohpay_test_" + randomHex(8)
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to test server: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, templateName)); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), base)
		if err != nil {
			t.Logf("dropping test database: %v", err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, name)); err != nil {
			t.Logf("dropping test database %s: %v", name, err)
		}
	})
	return withDatabase(base, name)
}

// Pool returns a pool on a fresh migrated database for t.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(URL(t))
	if err != nil {
		t.Fatalf("parsing the test database URL: %v", err)
	}
	db.ConfigurePool(cfg)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("opening pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Store returns a Store on a fresh migrated database for t.
func Store(t testing.TB) *db.Store {
	t.Helper()
	return Open(t, URL(t))
}

// Open returns a Store on a pool for url, closed when t ends: a database of
// URL or EmptyURL, a Proxy's URL, or an address nothing listens on.
// Connections are made lazily, as in production. configure, if any,
// adjusts the pool's config first.
func Open(t testing.TB, url string, configure ...func(*pgxpool.Config)) *db.Store {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	db.ConfigurePool(cfg)
	for _, c := range configure {
		c(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("opening pool: %v", err)
	}
	t.Cleanup(pool.Close)
	s, err := db.NewStore(pool)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// EmptyURL creates an empty database (no migrations) for migration tests.
func EmptyURL(t testing.TB) string {
	t.Helper()
	base := BaseURL(t)
	name := "boohpay_empty_" + randomHex(8)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to test server: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("creating database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), base)
		if err == nil {
			_, _ = conn.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
			conn.Close(context.Background())
		}
	})
	return withDatabase(base, name)
}

// ensureTemplate creates and migrates the template for the current schema
// once per server; test processes of several packages race here, so an
// advisory lock serializes them.
func ensureTemplate(ctx context.Context, base string) (string, error) {
	name := "boohpay_tmpl_" + schemaHash()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(7406201)`); err != nil {
		return "", err
	}
	defer conn.Exec(ctx, `SELECT pg_advisory_unlock(7406201)`) //nolint:errcheck
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+building+` WITH (FORCE)`); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+building); err != nil {
		return "", err
	}
	m, err := db.NewMigrator(withDatabase(base, building))
	if err != nil {
		return "", err
	}
	if err := m.Up(); err != nil {
		m.Close()
		return "", err
	}
	if err := m.Close(); err != nil {
		return "", err
	}
	// Renamed only once complete, so a crashed run never leaves a half-made template.
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+building+` RENAME TO `+name); err != nil {
		return "", err
	}
	return name, nil
}

func schemaHash() string {
	h := sha256.New()
	_ = fs.WalkDir(schema.Migrations, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(schema.Migrations, path)
		h.Write([]byte(path))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func withDatabase(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
