package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db/dbtest"
)

// TestServePollOnly: with RIVER_POLL_ONLY=true (for PgBouncer in
// transaction mode) no connection LISTENs, and webhooks are still delivered.
// The default mode, for contrast, holds a LISTEN connection.
func TestServePollOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	listening := func(url string) int {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		defer conn.Close(ctx)
		var n int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query ILIKE 'listen%'`).Scan(&n))
		return n
	}

	received := make(chan string, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received <- r.Header.Get("X-BoohPay-Event")
	}))
	t.Cleanup(receiver.Close)

	url := dbtest.URL(t)
	vars := map[string]string{"DATABASE_URL": url, "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true"}
	out, err := runCmd(t, vars, "merchant", "create", "--name", "Polled", "--webhook-url", receiver.URL+"/hooks")
	require.NoError(t, err)
	var nm struct {
		APIKey string `json:"api_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &nm))

	vars["RIVER_POLL_ONLY"] = "true"
	s := startServe(t, vars)
	req, err := http.NewRequest(http.MethodPost, s.base+"/v1/payments",
		strings.NewReader(`{"amount":5000,"currency":"XAF","gateway":"sandbox"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+nm.APIKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", body)
	select {
	case event := <-received:
		require.Equal(t, "payment.pending", event)
	case <-time.After(30 * time.Second):
		t.Fatalf("no delivery in poll-only mode; log:\n%s", s.stderr)
	}
	require.Zero(t, listening(url))

	notifying := dbtest.URL(t)
	startServe(t, map[string]string{"DATABASE_URL": notifying})
	require.Eventually(t, func() bool { return listening(notifying) > 0 }, 30*time.Second, 50*time.Millisecond)
}
