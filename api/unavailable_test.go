package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/api"
	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// Every "the database cannot serve now" condition answers 503
// service_unavailable in the error shape, with Retry-After, within
// DATABASE_TIMEOUT, and writes nothing; never 500 and never a hang. Each
// condition is produced for real where one test can: a role at its
// connection limit, a read-only database, a backend terminated mid-statement,
// a statement timeout, a lock held past the bound, a pool with no free
// connection, a connection cut or frozen by a TCP proxy, a port nothing
// listens on. Disk full, out of memory, crash shutdown and the rest cannot
// be produced in a shared test server without breaking the other tests
// (filling its disk, crashing it): a trigger raises their exact SQLSTATE
// from inside the statement, which is what the server sends in those cases
// and what the classification sees.

// sickBundle is a merchant on a fresh database, a healthy pool for set-up
// and checks, and what a condition needs to build the API on a sick one.
type sickBundle struct {
	t      *testing.T
	url    string // the fresh database, through no proxy
	dbName string
	admin  *pgxpool.Pool
	key    string
}

func newSickBundle(t *testing.T) *sickBundle {
	t.Helper()
	u := dbtest.URL(t)
	store := dbtest.Open(t, u)
	admin := store.Pool
	nm, err := store.MerchantCreate(context.Background(), "Sick DB", "")
	require.NoError(t, err)
	parsed, err := url.Parse(u)
	require.NoError(t, err)
	return &sickBundle{t: t, url: u, dbName: strings.TrimPrefix(parsed.Path, "/"), admin: admin, key: nm.APIKey}
}

// generous is the database bound of a server whose answers are not about
// the bound: a loaded CI machine may take seconds over a healthy statement,
// and that must not turn a 201 (or a 500, or a 503 for another reason) into
// a 503 for the timeout.
const generous = time.Minute

// server builds the API on a pool for databaseURL (connections made lazily,
// as in production once the service runs), bounded by timeout.
func (b *sickBundle) server(databaseURL string, timeout time.Duration, maxConns int32) (*echo.Echo, *pgxpool.Pool) {
	b.t.Helper()
	store := dbtest.Open(b.t, databaseURL, func(cfg *pgxpool.Config) {
		cfg.ConnConfig.ConnectTimeout = 2 * generous // only the request's bound may end a wait
		if maxConns > 0 {
			cfg.MaxConns = maxConns
		}
	})
	return b.serverOn(store.Pool, timeout), store.Pool
}

// serverOn builds the API on pool, bounded by timeout. A test whose
// condition needs a short bound checks the recovery through a second server
// on the same pool with a generous one: the pool's state is what recovers,
// and a healthy request on a loaded machine may take longer than the short
// bound.
func (b *sickBundle) serverOn(pool *pgxpool.Pool, timeout time.Duration) *echo.Echo {
	b.t.Helper()
	store, err := db.NewStore(pool)
	require.NoError(b.t, err)
	return api.NewServer(api.Config{DatabaseTimeout: timeout}, slog.New(slog.NewTextHandler(io.Discard, nil)), store, nil)
}

func (b *sickBundle) exec(sql string) {
	b.t.Helper()
	_, err := b.admin.Exec(context.Background(), sql)
	require.NoError(b.t, err, sql)
}

// failEveryInsert makes every payment insert fail with sqlstate, raised by
// the server from inside the statement.
func (b *sickBundle) failEveryInsert(sqlstate string) {
	b.t.Helper()
	b.exec(fmt.Sprintf(`CREATE FUNCTION sick() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'injected SQLSTATE %[1]s' USING ERRCODE = '%[1]s'; END $$`, sqlstate))
	b.exec(`CREATE TRIGGER sick BEFORE INSERT ON payments FOR EACH ROW EXECUTE FUNCTION sick()`)
}

// sleepEveryInsert makes every payment insert run for a minute, so that a
// test can act while one is in flight.
func (b *sickBundle) sleepEveryInsert() {
	b.t.Helper()
	b.exec(`CREATE FUNCTION sick() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_sleep(60); RETURN NEW; END $$`)
	b.exec(`CREATE TRIGGER sick BEFORE INSERT ON payments FOR EACH ROW EXECUTE FUNCTION sick()`)
}

// insertInFlight waits until a payment insert is running in the database
// and returns its backend's pid.
func (b *sickBundle) insertInFlight() int {
	b.t.Helper()
	var pid int
	require.Eventually(b.t, func() bool {
		err := b.admin.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity
			WHERE datname = $1 AND state = 'active' AND pid <> pg_backend_pid() AND query ILIKE '%INSERT INTO payments%' LIMIT 1`, b.dbName).Scan(&pid)
		return err == nil
	}, 30*time.Second, 5*time.Millisecond, "no payment insert in flight")
	return pid
}

func (b *sickBundle) request(e *echo.Echo, method, path string, body any) *response {
	b.t.Helper()
	// "Does not hang": the bounds under test are at most generous.
	done := make(chan *response, 1)
	go func() { done <- serveNoT(e, method, path, body, "Authorization", "Bearer "+b.key) }()
	select {
	case res := <-done:
		return res
	case <-time.After(3 * generous): // past every server's own bound: that bound answers first
		b.t.Fatalf("%s %s did not answer within %s", method, path, 3*generous)
		return nil
	}
}

// require503 checks the answer a sick database must give.
func (b *sickBundle) require503(res *response) {
	b.t.Helper()
	require.Equal(b.t, http.StatusServiceUnavailable, res.Code, "%s", res.Body)
	detail := res.errorOf(b.t)
	require.Equal(b.t, "service_unavailable", detail["code"], "%s", res.Body)
	require.Equal(b.t, "api_error", detail["type"])
	require.Equal(b.t, "2", res.Header.Get("Retry-After"))
	require.NotContains(b.t, string(res.Body), "SQLSTATE", "no internals in the answer")
}

func (b *sickBundle) payments() int {
	b.t.Helper()
	return dbtest.Count(b.t, b.admin, `SELECT count(*) FROM payments`)
}

var newPayment = map[string]any{"amount": 5000, "currency": "XAF", "gateway": "sandbox"}

func TestDatabaseCannotServeAnswers503(t *testing.T) {
	t.Parallel()

	t.Run("too many connections for the role (53300 at connect)", func(t *testing.T) {
		t.Parallel()
		b := newSickBundle(t)
		// The same SQLSTATE, at the same step, as "sorry, too many clients
		// already" when max_connections is reached; a role limit produces
		// it without starving the other tests of the shared server.
		role := "sick_" + strings.ReplaceAll(b.dbName, "boohpay_test_", "")
		b.exec(fmt.Sprintf(`CREATE ROLE %s LOGIN NOSUPERUSER CONNECTION LIMIT 0`, role))
		t.Cleanup(func() { _, _ = b.admin.Exec(context.Background(), `DROP ROLE IF EXISTS `+role) })
		u, _ := url.Parse(b.url)
		u.User = url.User(role)
		_, err := pgconn.Connect(context.Background(), u.String())
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "53300", pgErr.Code, "the condition is real")

		e, _ := b.server(u.String(), generous, 0)
		b.require503(b.request(e, "GET", "/v1/payments", nil))
		b.require503(b.request(e, "POST", "/v1/payments", newPayment))
		require.Zero(t, b.payments())
	})

	t.Run("read-only database (25006)", func(t *testing.T) {
		t.Parallel()
		b := newSickBundle(t)
		b.exec(fmt.Sprintf(`ALTER DATABASE %s SET default_transaction_read_only = on`, b.dbName))
		e, _ := b.server(b.url, generous, 0)
		b.require503(b.request(e, "POST", "/v1/payments", newPayment))
		require.Zero(t, b.payments())
		// Reads still work: the API key's last-used stamp is best effort.
		res := b.request(e, "GET", "/v1/payments", nil)
		require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	})

	t.Run("backend terminated mid-statement (57P01)", func(t *testing.T) {
		t.Parallel()
		b := newSickBundle(t)
		b.sleepEveryInsert()
		e, _ := b.server(b.url, generous, 0)
		answer := make(chan *response, 1)
		go func() { answer <- b.request(e, "POST", "/v1/payments", newPayment) }()
		pid := b.insertInFlight()
		b.exec(fmt.Sprintf(`SELECT pg_terminate_backend(%d)`, pid))
		b.require503(<-answer)
		require.Zero(t, b.payments())
	})

	t.Run("statement timeout (57014)", func(t *testing.T) {
		t.Parallel()
		b := newSickBundle(t)
		b.sleepEveryInsert()
		b.exec(fmt.Sprintf(`ALTER DATABASE %s SET statement_timeout = '100ms'`, b.dbName))
		e, _ := b.server(b.url, generous, 0)
		b.require503(b.request(e, "POST", "/v1/payments", newPayment))
		require.Zero(t, b.payments())
	})

	t.Run("lock held past DATABASE_TIMEOUT", func(t *testing.T) {
		t.Parallel()
		b := newSickBundle(t)
		ctx := context.Background()
		tx, err := b.admin.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `LOCK TABLE payments IN ACCESS EXCLUSIVE MODE`)
		require.NoError(t, err)
		e, pool := b.server(b.url, 300*time.Millisecond, 0)
		b.require503(b.request(e, "POST", "/v1/payments", newPayment))
		require.NoError(t, tx.Rollback(ctx))
		require.Zero(t, b.payments())
		// The abandoned statement's connection was closed; the next
		// request gets a fresh one.
		res := b.request(b.serverOn(pool, generous), "POST", "/v1/payments", newPayment)
		require.Equal(t, http.StatusCreated, res.Code, "%s", res.Body)
	})

	t.Run("no free connection in the pool", func(t *testing.T) {
		t.Parallel()
		b := newSickBundle(t)
		e, pool := b.server(b.url, 300*time.Millisecond, 1)
		held, err := pool.Acquire(context.Background())
		require.NoError(t, err)
		b.require503(b.request(e, "GET", "/v1/payments", nil))
		held.Release()
		res := b.request(b.serverOn(pool, generous), "GET", "/v1/payments", nil)
		require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	})

	t.Run("database unreachable (connection refused)", func(t *testing.T) {
		t.Parallel()
		b := newSickBundle(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		ln.Close()
		u, _ := url.Parse(b.url)
		u.Host = addr
		e, _ := b.server(u.String(), generous, 0)
		b.require503(b.request(e, "GET", "/v1/payments", nil))
	})

	t.Run("connection cut mid-statement", func(t *testing.T) {
		t.Parallel()
		b := newSickBundle(t)
		b.sleepEveryInsert()
		proxy := dbtest.NewProxy(t, b.url)
		e, _ := b.server(proxy.URL(b.url), generous, 0)
		answer := make(chan *response, 1)
		go func() { answer <- b.request(e, "POST", "/v1/payments", newPayment) }()
		b.insertInFlight()
		proxy.CutAll()
		b.require503(<-answer)
		require.Zero(t, b.payments())
	})

	t.Run("database frozen mid-connection", func(t *testing.T) {
		t.Parallel()
		b := newSickBundle(t)
		proxy := dbtest.NewProxy(t, b.url)
		e, pool := b.server(proxy.URL(b.url), 300*time.Millisecond, 0)
		healthy := b.serverOn(pool, generous)
		res := b.request(healthy, "GET", "/v1/payments", nil) // the pool holds a live connection now
		require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
		proxy.Freeze()
		b.require503(b.request(e, "GET", "/v1/payments", nil))
		b.require503(b.request(e, "POST", "/v1/payments", newPayment))
		proxy.Thaw()
		res = b.request(healthy, "POST", "/v1/payments", newPayment)
		require.Equal(t, http.StatusCreated, res.Code, "%s", res.Body)
	})

	t.Run("database frozen before the first connection", func(t *testing.T) {
		t.Parallel()
		b := newSickBundle(t)
		proxy := dbtest.NewProxy(t, b.url)
		proxy.Freeze()
		e, pool := b.server(proxy.URL(b.url), 300*time.Millisecond, 0)
		b.require503(b.request(e, "GET", "/v1/payments", nil))
		proxy.Thaw()
		res := b.request(b.serverOn(pool, generous), "GET", "/v1/payments", nil)
		require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	})

	// Raised from inside the statement: see the top of this file.
	for _, tc := range []struct{ name, sqlstate string }{
		{"disk full", "53100"},
		{"out of memory", "53200"},
		{"too many connections", "53300"},
		{"configuration limit exceeded", "53400"},
		{"crash shutdown", "57P02"},
		{"cannot connect now (starting up, in recovery)", "57P03"},
		{"connection failure", "08006"},
		{"I/O error", "58030"},
	} {
		t.Run(fmt.Sprintf("%s (%s)", tc.name, tc.sqlstate), func(t *testing.T) {
			t.Parallel()
			b := newSickBundle(t)
			b.failEveryInsert(tc.sqlstate)
			e, _ := b.server(b.url, generous, 0)
			b.require503(b.request(e, "POST", "/v1/payments", newPayment))
			require.Zero(t, b.payments())
		})
	}

	// What is wrong with the statement or the set-up stays a 500.
	t.Run("a bug is still a 500", func(t *testing.T) {
		t.Parallel()
		b := newSickBundle(t)
		b.failEveryInsert("23514") // check_violation: our statement is wrong
		e, _ := b.server(b.url, generous, 0)
		res := b.request(e, "POST", "/v1/payments", newPayment)
		require.Equal(t, http.StatusInternalServerError, res.Code, "%s", res.Body)
		require.Empty(t, res.Header.Get("Retry-After"))
	})
}

// serveNoT is serve without a *testing.T, for goroutines.
func serveNoT(e *echo.Echo, method, path string, body any, headers ...string) *response {
	var r io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		r = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return &response{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// TestOpenAPIUnavailableAnswersConform: with the database unreachable, every
// merchant route of the document answers 503 with Retry-After, and the
// answer is one the document allows (it lists 503 service_unavailable on
// every database-backed operation).
func TestOpenAPIUnavailableAnswersConform(t *testing.T) {
	t.Parallel()
	c := setupConformance(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	u, err := url.Parse(c.store.Pool.Config().ConnString())
	require.NoError(t, err)
	u.Host = addr // nothing listens there: connection refused
	store := dbtest.Open(t, u.String())
	c.e = api.NewServer(api.Config{AdminToken: conformanceAdminToken, AllowPrivateNetworks: true},
		slog.New(slog.NewTextHandler(io.Discard, nil)), store, nil)

	n := 0
	for path, item := range c.doc.Paths.Map() {
		if !strings.HasPrefix(path, "/v1/") || strings.HasPrefix(path, "/v1/webhooks/") {
			continue // provider webhooks check their signature first
		}
		target := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllStringFunc(path, func(string) string { return uuid.NewString() })
		for method := range item.Operations() {
			res, _ := c.exchange(method, target, nil) // the answer is validated against the document
			require.Equal(t, http.StatusServiceUnavailable, res.Code, "%s %s: %s", method, target, res.Body)
			require.Equal(t, "2", res.Header.Get("Retry-After"), "%s %s", method, target)
			n++
		}
	}
	require.Greater(t, n, 20, "every merchant operation was tried")
}
