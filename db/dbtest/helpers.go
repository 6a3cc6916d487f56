package dbtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/boohpay/boohpay/db"
)

// Querier is what Count reads through: a pool, a connection or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Count runs a query that returns one integer (a count(*), usually) and
// fails t if it cannot.
func Count(t testing.TB, q Querier, query string, args ...any) int {
	t.Helper()
	var n int
	if err := q.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// Logs is a log sink that a logger's goroutines (handlers, workers, a child
// process's stderr) and the test reading it share.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String is everything written so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Line returns the first JSON log line holding every one of subs, or nil.
func (l *Logs) Line(subs ...string) map[string]any {
lines:
	for _, line := range strings.Split(l.String(), "\n") {
		for _, s := range subs {
			if !strings.Contains(line, s) {
				continue lines
			}
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		return m
	}
	return nil
}

// Msg returns the first JSON log line whose msg is msg, or nil.
func (l *Logs) Msg(msg string) map[string]any {
	for _, line := range strings.Split(l.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			return m
		}
	}
	return nil
}

// RevokeAPIKey revokes key by its clear text, even a merchant's last active
// one (which no route or command allows): the way a test gets a revoked key.
func RevokeAPIKey(t testing.TB, store *db.Store, key string) {
	t.Helper()
	hash := sha256.Sum256([]byte(key))
	if _, err := store.Pool.Exec(context.Background(),
		`UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1 AND revoked_at IS NULL`, hash[:]); err != nil {
		t.Fatalf("revoking an API key: %v", err)
	}
}

// Payment creates a payment through the store's own create path, in its
// own transaction.
func Payment(t testing.TB, store *db.Store, params db.PaymentCreateParams) *db.Payment {
	t.Helper()
	var p *db.Payment
	err := store.InTx(context.Background(), func(tx pgx.Tx) (err error) {
		p, err = store.PaymentCreateTx(context.Background(), tx, params)
		return err
	})
	if err != nil {
		t.Fatalf("creating payment: %v", err)
	}
	return p
}

// Payout creates a payout through the store's own create path, in its own
// transaction.
func Payout(t testing.TB, store *db.Store, params db.PayoutCreateParams) *db.Payout {
	t.Helper()
	var p *db.Payout
	err := store.InTx(context.Background(), func(tx pgx.Tx) (err error) {
		p, err = store.PayoutCreateTx(context.Background(), tx, params)
		return err
	})
	if err != nil {
		t.Fatalf("creating payout: %v", err)
	}
	return p
}
