package api_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

func getJSON(t *testing.T, s *apiTest, path string) (int, map[string]any) {
	t.Helper()
	res := s.serveRequest(httptest.NewRequest(http.MethodGet, path, nil))
	var body map[string]any
	require.NoError(t, json.Unmarshal(res.Body, &body), "body: %s", res.Body)
	return res.Code, body
}

// deadStore is a Store whose database refuses connections: a port nobody listens on.
func deadStore(t *testing.T) *db.Store {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return dbtest.Open(t, "postgres://postgres@"+addr+"/postgres?sslmode=disable&connect_timeout=2")
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	for name, store := range map[string]*db.Store{"up": dbtest.Store(t), "database down": deadStore(t)} {
		code, body := getJSON(t, setup(t, withStore(store), withoutMerchant()), "/healthz")
		require.Equal(t, http.StatusOK, code, name)
		require.Equal(t, "ok", body["status"], name)
	}
}

func TestReadyzOnMigratedDatabase(t *testing.T) {
	t.Parallel()
	code, body := getJSON(t, setup(t, withoutMerchant()), "/readyz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok", body["status"])
	require.EqualValues(t, db.LatestVersion(), body["schema_version"])
}

func TestReadyzDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	s := setup(t, withStore(deadStore(t)), withoutMerchant())
	code, body := getJSON(t, s, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "unavailable", body["status"])
	require.Equal(t, "database unreachable", body["reason"])

	// A pool closed under the server answers the same.
	store := dbtest.Store(t)
	s = setup(t, withStore(store), withoutMerchant())
	store.Pool.Close()
	code, body = getJSON(t, s, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "database unreachable", body["reason"])
}

func TestReadyzSchemaNotCurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	latest := db.LatestVersion()

	for name, tc := range map[string]struct {
		update    string
		version   uint
		wantDirty bool
	}{
		"behind":         {`UPDATE schema_migrations SET version = version - 1`, latest - 1, false},
		"ahead":          {`UPDATE schema_migrations SET version = version + 1`, latest + 1, false},
		"dirty":          {`UPDATE schema_migrations SET dirty = true`, latest, true},
		"no version row": {`DELETE FROM schema_migrations`, 0, false},
	} {
		store := dbtest.Store(t)
		_, err := store.Pool.Exec(ctx, tc.update)
		require.NoError(t, err)
		code, body := getJSON(t, setup(t, withStore(store), withoutMerchant()), "/readyz")
		require.Equal(t, http.StatusServiceUnavailable, code, name)
		require.Equal(t, "schema not current", body["reason"], name)
		require.EqualValues(t, tc.version, body["schema_version"], name)
		require.EqualValues(t, latest, body["want_version"], name)
		require.Equal(t, tc.wantDirty, body["dirty"], name)
	}
}

func TestReadyzNeverMigrated(t *testing.T) {
	t.Parallel()
	code, body := getJSON(t, setup(t, withStore(dbtest.Open(t, dbtest.EmptyURL(t))), withoutMerchant()), "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "schema not current", body["reason"])
	require.EqualValues(t, 0, body["schema_version"])
}
