package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// serveBundle is `boohpay serve` running in-process.
type serveBundle struct {
	base   string // http://127.0.0.1:port
	stop   context.CancelFunc
	done   chan error
	stderr *dbtest.Logs
}

// startServe runs `boohpay serve` on a free port with vars on top of a
// quiet default environment, and waits until it answers /healthz (and, for
// ROLE=worker, until the workers started).
func startServe(t *testing.T, vars map[string]string) *serveBundle {
	t.Helper()
	all := map[string]string{
		"HTTP_ADDR":        "127.0.0.1:0",
		"LOG_FORMAT":       "json",
		"SHUTDOWN_TIMEOUT": "10s",
	}
	for k, v := range vars {
		all[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &serveBundle{stop: cancel, done: make(chan error, 1), stderr: &dbtest.Logs{}}
	go func() { s.done <- run(ctx, []string{"serve"}, env(all), io.Discard, s.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Errorf("serve did not return after cancel; log:\n%s", s.stderr)
		}
	})

	require.Eventually(t, func() bool {
		select {
		case err := <-s.done:
			s.done <- err
			return true
		default:
		}
		if all["ROLE"] == "worker" && s.stderr.Msg("workers started") == nil {
			return false
		}
		line := s.stderr.Msg("listening")
		if line == nil {
			return false
		}
		s.base = "http://" + line["addr"].(string)
		res, err := http.Get(s.base + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond)
	select {
	case err := <-s.done:
		t.Fatalf("serve returned early: %v\nlog:\n%s", err, s.stderr)
	default:
	}
	return s
}

// shutdown cancels serve's context, as SIGTERM does, and returns its result.
func (s *serveBundle) shutdown(t *testing.T) error {
	t.Helper()
	s.stop()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not return after cancel; log:\n%s", s.stderr)
		return nil
	}
}

func get(t *testing.T, url string, headers ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, body
}

func TestServeAnswersAndStops(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	out, err := runCmd(t, map[string]string{"DATABASE_URL": url}, "merchant", "create", "--name", "Served")
	require.NoError(t, err)
	var nm struct {
		APIKey string `json:"api_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &nm))

	s := startServe(t, map[string]string{"DATABASE_URL": url})
	code, _ := get(t, s.base+"/readyz")
	require.Equal(t, http.StatusOK, code)
	code, body := get(t, s.base+"/v1/payments", "Authorization", "Bearer "+nm.APIKey)
	require.Equal(t, http.StatusOK, code, "%s", body)
	code, _ = get(t, s.base+"/v1/nothing-here", "Authorization", "Bearer "+nm.APIKey)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = get(t, s.base+"/v1/payments")
	require.Equal(t, http.StatusUnauthorized, code)
	require.NotNil(t, s.stderr.Msg("workers started"), "ROLE=all runs the workers")

	require.NoError(t, s.shutdown(t))
	require.NotNil(t, s.stderr.Msg("stopped"))
	require.NotContains(t, s.stderr.String(), nm.APIKey[len("bp_")+6:])
}

// TestServeDrainsInFlightRequests holds a request inside the server (its API
// key row is locked, so authentication waits), shuts down, and checks the
// listener closes at once while that request still completes.
func TestServeDrainsInFlightRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	store := dbtest.Open(t, url)
	nm, err := store.MerchantCreate(ctx, "Slow", "")
	require.NoError(t, err)

	s := startServe(t, map[string]string{"DATABASE_URL": url})

	// The key was never used, so authenticating it writes last_used_at, and
	// waits on this lock.
	lock, err := store.Pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lock.Rollback(ctx) })
	_, err = lock.Exec(ctx, `SELECT 1 FROM api_keys WHERE merchant_id = $1 FOR UPDATE`, nm.Merchant.ID)
	require.NoError(t, err)

	type result struct {
		code int
		err  error
	}
	inFlight := make(chan result, 1)
	go func() {
		client := &http.Client{Transport: &http.Transport{}}
		req, _ := http.NewRequest(http.MethodGet, s.base+"/v1/payments", nil)
		req.Header.Set("Authorization", "Bearer "+nm.APIKey)
		res, err := client.Do(req)
		if err != nil {
			inFlight <- result{err: err}
			return
		}
		res.Body.Close()
		inFlight <- result{code: res.StatusCode}
	}()
	require.Eventually(t, func() bool {
		var waiting int
		err := store.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE api_keys%'`).Scan(&waiting)
		return err == nil && waiting > 0
	}, 10*time.Second, 10*time.Millisecond, "the request should be waiting on the lock")

	s.stop()
	// Shutdown has begun once the listener refuses new connections.
	addr := strings.TrimPrefix(s.base, "http://")
	require.Eventually(t, func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		conn.Close()
		return false
	}, 10*time.Second, 10*time.Millisecond)
	select {
	case r := <-inFlight:
		t.Fatalf("the in-flight request ended before it was let go: %+v", r)
	case err := <-s.done:
		t.Fatalf("serve returned with a request in flight: %v", err)
	default:
	}

	require.NoError(t, lock.Rollback(ctx))
	r := <-inFlight
	require.NoError(t, r.err)
	require.Equal(t, http.StatusOK, r.code)
	require.NoError(t, s.shutdown(t))
}

func TestServeHTTPAddrInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	stderr := &dbtest.Logs{}
	go func() {
		done <- run(ctx, []string{"serve"}, env(map[string]string{
			"DATABASE_URL": dbtest.URL(t), "HTTP_ADDR": ln.Addr().String(), "LOG_FORMAT": "json",
		}), io.Discard, stderr)
	}()
	select {
	case err := <-done:
		require.ErrorContains(t, err, "HTTP_ADDR "+ln.Addr().String())
		require.NotContains(t, err.Error(), "\n")
	case <-time.After(30 * time.Second):
		t.Fatalf("serve hung after failing to listen; log:\n%s", stderr)
	}
}

func TestServeRoles(t *testing.T) {
	t.Parallel()
	t.Run("api", func(t *testing.T) {
		t.Parallel()
		s := startServe(t, map[string]string{"DATABASE_URL": dbtest.URL(t), "ROLE": "api"})
		require.Nil(t, s.stderr.Msg("workers started"))
		require.NoError(t, s.shutdown(t))
	})
	t.Run("worker", func(t *testing.T) {
		t.Parallel()
		s := startServe(t, map[string]string{"DATABASE_URL": dbtest.URL(t), "ROLE": "worker"})
		// A worker serves its probes and metrics, and no API.
		code, _ := get(t, s.base+"/readyz")
		require.Equal(t, http.StatusOK, code)
		code, body := get(t, s.base+"/metrics")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, string(body), "queue_size")
		code, _ = get(t, s.base+"/v1/payments")
		require.Equal(t, http.StatusNotFound, code)
		code, _ = get(t, s.base+"/openapi.yaml")
		require.Equal(t, http.StatusNotFound, code)
		require.NoError(t, s.shutdown(t))
	})
}

func TestServeMigratesOnStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.EmptyURL(t)
	s := startServe(t, map[string]string{"DATABASE_URL": url})
	code, _ := get(t, s.base+"/readyz")
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, s.shutdown(t))

	store := dbtest.Open(t, url)
	v, dirty, err := store.SchemaVersion(ctx)
	require.NoError(t, err)
	require.False(t, dirty)
	require.Equal(t, db.LatestVersion(), v)
}

func TestServeMigrateOnStartFalse(t *testing.T) {
	t.Parallel()
	// ROLE=api: River's workers need their tables, the HTTP side starts anyway
	// and tells the operator through /readyz.
	s := startServe(t, map[string]string{"DATABASE_URL": dbtest.EmptyURL(t), "MIGRATE_ON_START": "false", "ROLE": "api"})
	code, body := get(t, s.base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, string(body), "schema not current")
	require.NoError(t, s.shutdown(t))
}

// TestServeFinishesRunningDeliveries shuts down while a webhook delivery is
// waiting on the merchant's endpoint: the delivery must complete and be
// recorded, not be cut off by the signal.
func TestServeFinishesRunningDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)

	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	aborted := make(chan struct{}, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		entered <- struct{}{}
		select {
		case <-release:
			w.WriteHeader(http.StatusOK)
		case <-r.Context().Done():
			aborted <- struct{}{}
		}
	}))
	t.Cleanup(receiver.Close)

	vars := map[string]string{"DATABASE_URL": url, "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true", "WEBHOOK_TIMEOUT": "30s"}
	out, err := runCmd(t, vars, "merchant", "create", "--name", "Hooked", "--webhook-url", receiver.URL+"/hooks")
	require.NoError(t, err)
	var nm struct {
		APIKey string `json:"api_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &nm))

	s := startServe(t, vars)
	req, err := http.NewRequest(http.MethodPost, s.base+"/v1/payments",
		strings.NewReader(`{"amount":5000,"currency":"XAF","gateway":"sandbox"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+nm.APIKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)

	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatalf("the payment.pending delivery never arrived; log:\n%s", s.stderr)
	}
	s.stop()
	require.Eventually(t, func() bool { return s.stderr.Msg("shutting down") != nil }, 10*time.Second, 10*time.Millisecond)
	select {
	case <-aborted:
		t.Fatal("the signal cancelled the running delivery")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	require.NoError(t, s.shutdown(t))

	pool, err := db.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	var status string
	var attempts int
	require.NoError(t, pool.QueryRow(ctx, `SELECT status, attempts FROM webhook_deliveries`).Scan(&status, &attempts))
	require.Equal(t, "SUCCEEDED", status)
	require.Equal(t, 1, attempts)
}
