package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/api"
	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// runCmd runs the CLI in-process and returns stdout and the error.
func runCmd(t *testing.T, vars map[string]string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, env(vars), &stdout, &stderr)
	return stdout.String(), err
}

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": dbtest.EmptyURL(t)}
	latest := db.LatestVersion()
	versions := db.Versions() // numbers may skip: count steps, not versions
	n := len(versions)
	want := func(v uint) string { return fmt.Sprintf("version %d\n", v) }

	out, err := runCmd(t, vars, "migrate", "version")
	require.NoError(t, err)
	require.Equal(t, want(0), out)

	out, err = runCmd(t, vars, "migrate", "up")
	require.NoError(t, err)
	require.Equal(t, want(latest), out)

	out, err = runCmd(t, vars, "migrate", "up")
	require.NoError(t, err, "up with nothing to do")
	require.Equal(t, want(latest), out)

	out, err = runCmd(t, vars, "migrate", "down", "2")
	require.NoError(t, err)
	require.Equal(t, want(versions[n-3]), out)

	out, err = runCmd(t, vars, "migrate", "version")
	require.NoError(t, err)
	require.Equal(t, want(versions[n-3]), out)

	_, err = runCmd(t, vars, "migrate", "down", fmt.Sprint(n))
	require.ErrorContains(t, err, fmt.Sprintf("only %d migrations are applied", n-2))

	for _, args := range [][]string{
		{"migrate"},
		{"migrate", "down"},
		{"migrate", "down", "0"},
		{"migrate", "down", "-1"},
		{"migrate", "down", "two"},
		{"migrate", "down", "1", "2"},
		{"migrate", "sideways"},
		{"migrate", "up", "now"},
	} {
		out, err := runCmd(t, vars, args...)
		require.Error(t, err, "%v", args)
		require.Empty(t, out)
	}

	out, err = runCmd(t, vars, "migrate", "down", fmt.Sprint(n-2))
	require.NoError(t, err)
	require.Equal(t, want(0), out)

	out, err = runCmd(t, vars, "migrate", "up")
	require.NoError(t, err)
	require.Equal(t, want(latest), out)
}

func TestMigrateUpConcurrently(t *testing.T) {
	t.Parallel()
	url := dbtest.EmptyURL(t)
	// Replicas starting together: golang-migrate's advisory lock makes them
	// take turns, and all but the first find nothing to do.
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() { errs <- migrateUp(url) }()
	}
	for range cap(errs) {
		require.NoError(t, <-errs)
	}
	out, err := runCmd(t, map[string]string{"DATABASE_URL": url}, "migrate", "version")
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("version %d\n", db.LatestVersion()), out)
}

func TestMerchantCreateCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	// A public address literal: no DNS needed, not refused as private.
	const webhookURL = "https://93.184.216.34/boohpay/webhooks"

	out, err := runCmd(t, map[string]string{"DATABASE_URL": url},
		"merchant", "create", "--name", "Acme Boutique", "--webhook-url", webhookURL)
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(out, "\n"), "one line: %q", out)

	// Exactly one JSON object, with exactly these keys in this order.
	dec := json.NewDecoder(strings.NewReader(out))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		keys = append(keys, k.(string))
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	_, err = dec.Token()
	require.NoError(t, err)
	_, err = dec.Token()
	require.ErrorIs(t, err, io.EOF, "nothing after the object")
	require.Equal(t, []string{"id", "name", "api_key", "webhook_url", "webhook_secret"}, keys)

	var got struct {
		ID            uuid.UUID `json:"id"`
		Name          string    `json:"name"`
		APIKey        string    `json:"api_key"`
		WebhookURL    string    `json:"webhook_url"`
		WebhookSecret string    `json:"webhook_secret"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Equal(t, "Acme Boutique", got.Name)
	require.Equal(t, webhookURL, got.WebhookURL)
	secret, ok := strings.CutPrefix(got.WebhookSecret, "whsec_")
	require.True(t, ok, got.WebhookSecret)
	raw, err := base64.StdEncoding.DecodeString(secret)
	require.NoError(t, err)
	require.Len(t, raw, 32)

	store := dbtest.Open(t, url)

	// The printed key authenticates, as that merchant, over HTTP.
	srv := api.NewServer(api.Config{}, slog.New(slog.DiscardHandler), store, nil)
	req := httptest.NewRequest(http.MethodGet, "/v1/payments", nil)
	req.Header.Set("Authorization", "Bearer "+got.APIKey)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	m, err := store.MerchantGetByAPIKey(ctx, got.APIKey)
	require.NoError(t, err)
	require.Equal(t, got.ID, m.ID)
	require.Equal(t, got.WebhookSecret, *m.WebhookSecret)

	// The table holds the key's hash, never the key.
	var hash []byte
	var row string
	require.NoError(t, store.Pool.QueryRow(ctx, `SELECT key_hash, k::text FROM api_keys k WHERE merchant_id = $1`, got.ID).Scan(&hash, &row))
	sum := sha256.Sum256([]byte(got.APIKey))
	require.Equal(t, sum[:], hash)
	require.NotContains(t, row, got.APIKey[len("bp_")+6:])
}

func TestMerchantCreateWithoutWebhookURL(t *testing.T) {
	t.Parallel()
	out, err := runCmd(t, map[string]string{"DATABASE_URL": dbtest.URL(t)}, "merchant", "create", "--name", "Demo Merchant")
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Len(t, got, 5)
	require.Equal(t, "Demo Merchant", got["name"])
	require.NotEmpty(t, got["api_key"])
	require.Contains(t, got, "webhook_url")
	require.Nil(t, got["webhook_url"])
	require.Contains(t, got, "webhook_secret")
	require.Nil(t, got["webhook_secret"], "a secret comes with a URL (PUT /v1/webhook-endpoint)")
}

func TestMerchantCreateRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	vars := map[string]string{"DATABASE_URL": url}
	refused := [][]string{
		{"merchant"},
		{"merchant", "delete"},
		{"merchant", "create"},
		{"merchant", "create", "--name", "  "},
		{"merchant", "create", "--name"},
		{"merchant", "create", "--nom", "A"},
		{"merchant", "create", "--name", "A", "extra"},
		{"merchant", "create", "--name", "A", "--webhook-url", "ftp://203.0.113.10/x"},
		{"merchant", "create", "--name", "A", "--webhook-url", "not a url"},
		{"merchant", "create", "--name", "A", "--webhook-url", "http://127.0.0.1:8080/hooks"},
		{"merchant", "create", "--name", "A", "--webhook-url", "http://169.254.169.254/latest"},
		{"merchant", "create", "--name", strings.Repeat("n", 201)},
	}
	// Every spelling of a private address that was once let through.
	for _, host := range []string{"[::1%25lo]", "[::%25lo]", "[::1%251]", "[fe80::1%25eth0]", "[fd00:ec2::254%25eth0]",
		"[::127.0.0.1]", "[64:ff9b:1::7f00:1]", "[2002:7f00:1::1]", "127.1", "2130706433", "0x7f000001", "017700000001", "localhost."} {
		refused = append(refused, []string{"merchant", "create", "--name", "A", "--webhook-url", "http://" + host + ":8080/x"})
	}
	for _, args := range refused {
		out, err := runCmd(t, vars, args...)
		require.Error(t, err, "%q", args)
		require.NotContains(t, err.Error(), "\n", "%q", args)
		require.Empty(t, out, "%q", args)
	}

	// WEBHOOK_ALLOW_PRIVATE_NETWORKS (make run sets it) lets a local receiver in.
	vars["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = "true"
	_, err := runCmd(t, vars, "merchant", "create", "--name", "Local", "--webhook-url", "http://127.0.0.1:4242/hooks")
	require.NoError(t, err)

	pool, err := db.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM merchants`).Scan(&n))
	require.Equal(t, 1, n, "refused commands created nothing")
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	_, err := runCmd(t, nil)
	require.ErrorContains(t, err, "boohpay needs a command: one of merchant, migrate, serve, version, webhooks")
	require.Equal(t, 2, exitCode(err))
	_, err = runCmd(t, nil, "frobnicate")
	require.ErrorContains(t, err, `unknown command "frobnicate"`)
	require.Equal(t, 2, exitCode(err))
	out, err := runCmd(t, nil, "help")
	require.NoError(t, err)
	for _, verb := range []string{"serve", "migrate", "merchant", "webhooks", "version"} {
		require.Contains(t, out, verb)
	}
}
