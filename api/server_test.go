package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// requireError checks the error shape (type, code, message, and param only
// when one parameter is at fault), and
// returns the detail.
func requireError(t *testing.T, res *response, status int, typ, code string) map[string]any {
	t.Helper()
	require.Equal(t, status, res.Code, "body: %s", res.Body)
	require.Equal(t, "application/json", strings.Split(res.Header.Get("Content-Type"), ";")[0])
	var body map[string]map[string]any
	require.NoError(t, json.Unmarshal(res.Body, &body), "body: %s", res.Body)
	require.Len(t, body, 1, "body: %s", res.Body)
	detail := body["error"]
	for k, v := range detail {
		require.Contains(t, []string{"type", "code", "message", "param"}, k, "%s", res.Body)
		require.IsType(t, "", v, "%s is a string, never null: %s", k, res.Body)
	}
	require.Equal(t, typ, detail["type"])
	require.Equal(t, code, detail["code"])
	require.NotEmpty(t, detail["message"])
	return detail
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	s := setup(t, withoutMerchant())
	nm, err := s.store.MerchantCreate(context.Background(), "Body", "")
	require.NoError(t, err)

	// A body of n bytes that is valid JSON with a description too long to
	// pass validation: under the limit it reaches the handler (422), over it
	// never does (413).
	bodyOf := func(n int) []byte {
		head := `{"amount":5000,"currency":"XAF","gateway":"sandbox","description":"`
		tail := `"}`
		return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
	}
	post := func(body []byte, chunked bool) *response {
		req := httptest.NewRequest(http.MethodPost, "/v1/payments", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+nm.APIKey)
		if chunked {
			req.ContentLength = -1 // no Content-Length: the limit applies while reading
		}
		return s.serveRequest(req)
	}

	for _, chunked := range []bool{false, true} {
		res := post(bodyOf(2<<20), chunked)
		requireError(t, res, http.StatusRequestEntityTooLarge, "invalid_request_error", "body_too_large")

		res = post(bodyOf(1<<20+1), chunked)
		requireError(t, res, http.StatusRequestEntityTooLarge, "invalid_request_error", "body_too_large")

		res = post(bodyOf(1<<20), chunked)
		require.NotEqual(t, http.StatusRequestEntityTooLarge, res.Code, "exactly 1 MiB is allowed (chunked=%v)", chunked)
		require.Less(t, res.Code, 500, "%s", res.Body)
	}
	require.Zero(t, dbtest.Count(t, s.store.Pool, `SELECT count(*) FROM payments`))
}

func TestInternalErrorsShowNoInternals(t *testing.T) {
	t.Parallel()
	s := setup(t, withoutMerchant())
	const secret = "password=hunter2 at 10.0.0.7:5432"
	s.e.GET("/test/error", func(c echo.Context) error {
		return errors.New("querying payments: " + secret)
	})
	s.e.GET("/test/panic", func(c echo.Context) error {
		panic("nil map write near " + secret)
	})
	s.e.GET("/test/http-500", func(c echo.Context) error {
		return echo.NewHTTPError(http.StatusInternalServerError, secret)
	})
	s.e.GET("/test/unavailable", func(c echo.Context) error {
		return &db.Error{Code: db.EUnavailable, Message: "try again shortly"}
	})

	for _, path := range []string{"/test/error", "/test/panic", "/test/http-500"} {
		res := s.serveRequest(httptest.NewRequest(http.MethodGet, path, nil))
		detail := requireError(t, res, http.StatusInternalServerError, "api_error", "internal_error")
		require.Equal(t, "internal error", detail["message"])
		require.NotContains(t, detail, "param", "absent, not null")
		require.NotContains(t, string(res.Body), "hunter2", path)

		// The operator sees the cause, under the request id the client got.
		reqID := res.Header.Get(echo.HeaderXRequestID)
		require.NotEmpty(t, reqID)
		line := logLineWith(t, s.logs, reqID, "hunter2")
		require.Equal(t, "ERROR", line["level"])
	}

	res := s.serveRequest(httptest.NewRequest(http.MethodGet, "/test/unavailable", nil))
	detail := requireError(t, res, http.StatusServiceUnavailable, "api_error", "service_unavailable")
	require.Equal(t, "try again shortly", detail["message"])
}

func TestUnknownRouteAndMethod(t *testing.T) {
	t.Parallel()
	s := setup(t, withoutMerchant())
	res := s.serveRequest(httptest.NewRequest(http.MethodGet, "/nope", nil))
	requireError(t, res, http.StatusNotFound, "invalid_request_error", "resource_missing")
	res = s.serveRequest(httptest.NewRequest(http.MethodDelete, "/healthz", nil))
	requireError(t, res, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed")
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	s := setup(t, withoutMerchant())
	a := s.serveRequest(httptest.NewRequest(http.MethodGet, "/healthz", nil))
	b := s.serveRequest(httptest.NewRequest(http.MethodGet, "/healthz", nil))
	require.NotEmpty(t, a.Header.Get(echo.HeaderXRequestID))
	require.NotEqual(t, a.Header.Get(echo.HeaderXRequestID), b.Header.Get(echo.HeaderXRequestID))
	line := logLineWith(t, s.logs, a.Header.Get(echo.HeaderXRequestID))
	require.Equal(t, "request", line["msg"])
	require.Equal(t, "/healthz", line["route"])
	require.EqualValues(t, 200, line["status"])
}

// logLineWith returns the first JSON log line containing every one of subs.
func logLineWith(t *testing.T, logs *dbtest.Logs, subs ...string) map[string]any {
	t.Helper()
	line := logs.Line(subs...)
	if line == nil {
		t.Fatalf("no log line with %q in:\n%s", subs, logs.String())
	}
	return line
}

// TestRequestLogLatencyInMilliseconds: the request line's latency carries
// its unit in its key; a bare Duration would be nanoseconds in JSON.
func TestRequestLogLatencyInMilliseconds(t *testing.T) {
	t.Parallel()
	s := setup(t, withoutMerchant())
	res := s.serveRequest(httptest.NewRequest(http.MethodGet, "/healthz", nil))
	require.Equal(t, http.StatusOK, res.Code)
	line := logLineWith(t, s.logs, `"msg":"request"`, `"/healthz"`)
	require.IsType(t, float64(0), line["latency_ms"])
	require.NotContains(t, line, "latency")
}
