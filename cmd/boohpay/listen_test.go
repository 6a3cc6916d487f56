package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db/dbtest"
	"github.com/boohpay/boohpay/jobs"
)

// startListen runs `boohpay webhooks listen` in-process on a free port and
// returns its URL and what it prints.
func startListen(t *testing.T, secret string) (string, *dbtest.Logs) {
	t.Helper()
	return startListenArgs(t, "--secret", secret)
}

// startListenArgs runs `boohpay webhooks listen` with flags on a free port.
func startListenArgs(t *testing.T, flags ...string) (string, *dbtest.Logs) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &dbtest.Logs{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"webhooks", "listen", "--addr", "127.0.0.1:0"}, flags...), env(nil), out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	listening := regexp.MustCompile(`listening on (http://\S+)`)
	var url string
	require.Eventually(t, func() bool {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
			return true
		}
		return false
	}, 5*time.Second, 5*time.Millisecond)
	return url, out
}

// delivery is a request shaped like the worker's, signed by this test's own
// implementation of both signature headers (Standard Webhooks and
// X-BoohPay-Signature), one signature per secret.
type delivery struct {
	body      string
	eventID   string
	timestamp int64
	secrets   []string
	legacy    []string // X-BoohPay-Signature's secrets when not secrets (a rotation's grace period)
}

func (d delivery) send(t *testing.T, url string) int {
	t.Helper()
	return d.sendFull(t, url).StatusCode
}

func (d delivery) sendFull(t *testing.T, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(d.body))
	require.NoError(t, err)
	ts := strconv.FormatInt(d.timestamp, 10)
	var legacy, standard []string
	legacySecrets := d.legacy
	if legacySecrets == nil {
		legacySecrets = d.secrets
	}
	for _, s := range legacySecrets {
		mac := hmac.New(sha256.New, []byte(s))
		mac.Write([]byte(d.body))
		legacy = append(legacy, "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	for _, s := range d.secrets {
		key := []byte(s)
		if rest, ok := strings.CutPrefix(s, "whsec_"); ok {
			key, err = base64.StdEncoding.DecodeString(rest)
			require.NoError(t, err)
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(d.eventID + "." + ts + "." + d.body))
		standard = append(standard, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-BoohPay-Event", "payment.succeeded")
	req.Header.Set("X-BoohPay-Delivery", "01a218b4-0000-7000-8000-000000000001")
	req.Header.Set("X-BoohPay-Signature", strings.Join(legacy, " "))
	req.Header.Set("webhook-id", d.eventID)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", strings.Join(standard, " "))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

const (
	listenSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	listenEvent  = "01a218b4-63d0-78fb-be29-c70e82ee479d"
	listenBody   = `{"id":"01a218b4-63d0-78fb-be29-c70e82ee479d","event":"payment.succeeded","timestamp":"2026-11-26T16:33:26.374Z","data":{"id":"p_1","amount":5000}}`
)

func TestWebhooksListenVerifiesAndPrints(t *testing.T) {
	t.Parallel()
	url, out := startListen(t, listenSecret)
	now := time.Now().Unix()
	for _, tt := range []struct {
		name       string
		d          delivery
		wantStatus int
		wantLine   string
	}{
		{"signed", delivery{listenBody, listenEvent, now, []string{listenSecret}, nil}, http.StatusOK,
			"event=payment.succeeded webhook-id=" + listenEvent + " delivery=01a218b4-0000-7000-8000-000000000001 x-boohpay-signature=verified webhook-signature=verified"},
		{"rotation lists the listener's secret second", delivery{listenBody, listenEvent, now, []string{"whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)), listenSecret}, nil},
			http.StatusOK, "x-boohpay-signature=verified webhook-signature=verified"},
		{"wrong secret", delivery{listenBody, listenEvent, now, []string{"whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))}, nil},
			http.StatusUnauthorized, "x-boohpay-signature=INVALID webhook-signature=INVALID"},
		{"stale timestamp", delivery{listenBody, listenEvent, now - 600, []string{listenSecret}, nil}, http.StatusUnauthorized,
			"x-boohpay-signature=verified webhook-signature=INVALID"},
		{"unsigned", delivery{listenBody, listenEvent, now, nil, nil}, http.StatusUnauthorized,
			"x-boohpay-signature=INVALID webhook-signature=INVALID"},
	} {
		before := len(out.String())
		require.Equal(t, tt.wantStatus, tt.d.send(t, url), tt.name)
		printed := out.String()[before:]
		require.Contains(t, printed, tt.wantLine, tt.name)
		require.Contains(t, printed, tt.d.body, "%s: the body is printed", tt.name)
	}
}

// After a rotation the merchant runs listen with the new secret: during the
// grace period X-BoohPay-Signature is still on the previous secret, and the
// delivery is accepted on webhook-signature (it lists both).
func TestWebhooksListenDuringRotationGrace(t *testing.T) {
	t.Parallel()
	previous := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	url, out := startListen(t, listenSecret)
	d := delivery{listenBody, listenEvent, time.Now().Unix(), []string{listenSecret, previous}, []string{previous}}
	require.Equal(t, http.StatusOK, d.send(t, url))
	require.Contains(t, out.String(), "x-boohpay-signature=previous-secret webhook-signature=verified")
}

// --forward-to passes each verified delivery on, exact body and headers,
// prints the app's answer, and gives BoohPay the app's status; a delivery
// that does not verify is not forwarded; an app that is down is a 502.
func TestWebhooksListenForwardsToTheApp(t *testing.T) {
	t.Parallel()
	type got struct {
		header http.Header
		body   string
	}
	apps := make(chan got, 10)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		apps <- got{r.Header.Clone(), string(body)}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(app.Close)
	url, out := startListenArgs(t, "--secret", listenSecret, "--forward-to", app.URL+"/hooks")
	d := delivery{listenBody, listenEvent, time.Now().Unix(), []string{listenSecret}, nil}
	resp := d.sendFull(t, url)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "the app's answer")
	g := <-apps
	require.Equal(t, listenBody, g.body, "the exact body")
	for _, h := range []string{"Content-Type", "X-BoohPay-Event", "X-BoohPay-Delivery", "X-BoohPay-Signature", "webhook-id", "webhook-timestamp", "webhook-signature"} {
		require.NotEmpty(t, g.header.Get(h), h)
		require.Equal(t, resp.Request.Header.Get(h), g.header.Get(h), h)
	}
	require.Contains(t, out.String(), "-> "+app.URL+"/hooks: 202 {\"ok\":true}")

	bad := delivery{listenBody, listenEvent, time.Now().Unix(), []string{"secret-key"}, nil}
	require.Equal(t, http.StatusUnauthorized, bad.send(t, url))
	require.Empty(t, apps, "a delivery that does not verify is not forwarded")

	app.Close()
	require.Equal(t, http.StatusBadGateway, d.send(t, url), "the app is down: BoohPay will retry")
}

func TestWebhooksListenPlainSecret(t *testing.T) {
	t.Parallel()
	url, out := startListen(t, "secret-key") // a secret an operator set by SQL
	require.Equal(t, http.StatusOK, delivery{listenBody, listenEvent, time.Now().Unix(), []string{"secret-key"}, nil}.send(t, url))
	require.Contains(t, out.String(), "x-boohpay-signature=verified webhook-signature=verified")
}

func TestWebhooksListenNeedsSecret(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"webhooks", "listen", "--addr", "127.0.0.1:0"}, env(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, "--secret is required")
	err = run(context.Background(), []string{"webhooks"}, env(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, "boohpay webhooks needs a command: one of listen")
	require.Equal(t, 2, exitCode(err))
}

// The real worker delivering to the listener: what BoohPay signs, listen verifies.
func TestWebhooksListenReceivesRealDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	nm, err := store.MerchantCreate(ctx, "Listen", "http://127.0.0.1:1/unused")
	require.NoError(t, err)
	url, out := startListen(t, *nm.Merchant.WebhookSecret)
	_, err = store.EndpointSetDefaultURL(ctx, nm.Merchant.ID, url+"/webhooks")
	require.NoError(t, err)
	client, err := jobs.NewClient(store, slog.New(slog.NewTextHandler(io.Discard, nil)),
		jobs.Config{AllowPrivateNetworks: true, SweepInterval: time.Hour})
	require.NoError(t, err)
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = client.Stop(stopCtx)
	})

	e, err := store.EventEmit(ctx, nm.Merchant.ID, "webhook.test", map[string]string{"hello": "world"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var status string
		require.NoError(t, store.Pool.QueryRow(ctx, `SELECT status FROM webhook_deliveries WHERE event_id = $1`, e.ID).Scan(&status))
		return status == "SUCCEEDED"
	}, 10*time.Second, 10*time.Millisecond, "listen answers 200 only when both signatures verify:\n%s", out)
	require.Contains(t, out.String(), "event=webhook.test webhook-id="+e.ID.String())
	require.Contains(t, out.String(), "x-boohpay-signature=verified webhook-signature=verified")
}
