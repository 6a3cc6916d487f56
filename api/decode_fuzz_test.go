package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
)

// FuzzDecodeJSON feeds request decoding (decodeJSON, the one way every
// route reads a JSON body) arbitrary bodies and content types, into the
// richest request types (pointers, maps, a nested struct). It must never
// panic; it answers 400 or 415 in the error shape, never a 5xx, with a
// bounded message; and what it accepts is one valid JSON object (or no
// body), returned byte for byte for idempotency hashing.
// Seeds: testdata/fuzz/FuzzDecodeJSON and the f.Add calls below.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []struct{ body, ct string }{
		{`{"amount":5000,"currency":"XAF","gateway":"sandbox"}`, "application/json"},
		{`{"amount":5000,"currency":"XAF","gateway":"sandbox","metadata":{"order":"42"}}`, "application/json; charset=utf-8"},
		{`{"amount":2500,"currency":"XOF","provider":"sandbox","recipient":{"phone":"+221700000000"}}`, "application/json"},
		{``, ""},
		{`null`, "application/json"},
		{`{}{}`, "application/json"},
		{`{"amount":1e400}`, "application/json"},
		{`{"amount":"5000"}`, "application/json"},
		{`{"unknown":1}`, "application/json"},
		{"{\"reference\":\"\xff\"}", "application/json"},
		{`[` + strings.Repeat(`[`, 200) + `]`, "application/json"},
		{`{"amount":5000}`, "text/plain"},
		{`{"` + strings.Repeat("k", 1000) + `":1}`, "application/json"},
		{`{"metadata":{"k":` + strings.Repeat("1", 1000) + `}}`, "application/json"},
	} {
		f.Add([]byte(seed.body), seed.ct)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		if !utf8.ValidString(contentType) || strings.ContainsAny(contentType, "\r\n") {
			contentType = "application/json" // not sendable as a header
		}
		for _, dst := range []any{&paymentCreateRequest{}, &payoutCreateRequest{}, &simulateRequest{}} {
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			req.Header.Set(echo.HeaderContentType, contentType)
			c := echo.New().NewContext(req, httptest.NewRecorder())

			raw, err := decodeJSON(c, dst)
			if err != nil {
				status, shape := errorResponse(err)
				require.Contains(t, []int{http.StatusBadRequest, http.StatusUnsupportedMediaType}, status, "%v", err)
				require.NotEmpty(t, shape.Error.Code)
				require.LessOrEqual(t, len(shape.Error.Message), 300, "an error message echoes at most a clip of the input")
				require.LessOrEqual(t, len(shape.Error.Param), 300)
				continue
			}
			trimmed := bytes.TrimSpace(body)
			if len(trimmed) == 0 {
				require.Equal(t, "{}", string(raw))
				continue
			}
			require.Equal(t, body, raw, "the raw body is returned as sent")
			require.True(t, utf8.Valid(body))
			require.True(t, json.Valid(body), "accepted invalid JSON %q", body)
			require.Equal(t, byte('{'), trimmed[0], "accepted a body that is not an object: %q", body)
		}
	})
}

// FuzzListParams: list parameters and path ids of any shape answer 422 or
// 404, never a panic or a 5xx, and accepted values are in range.
func FuzzListParams(f *testing.F) {
	f.Add("10", "", "PENDING", "0190a0a0-0000-7000-8000-000000000000")
	f.Add("-1", "not-an-id", "' OR 1=1 --", "../../etc/passwd")
	f.Add("99999999999999999999", "0190a0a0-0000-7000-8000-000000000000", strings.Repeat("x", 100), "{0190a0a0-0000-7000-8000-000000000000}")
	f.Fuzz(func(t *testing.T, limit, startingAfter, status, id string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.RawQuery = url.Values{"limit": {limit}, "starting_after": {startingAfter}, "status": {status}}.Encode()
		c := echo.New().NewContext(req, httptest.NewRecorder())
		c.SetParamNames("id")
		c.SetParamValues(id)

		p, err := listParams(c, "status")
		if err != nil {
			status, _ := errorResponse(err)
			require.Equal(t, http.StatusUnprocessableEntity, status)
		} else {
			require.GreaterOrEqual(t, p.Limit, 1)
			require.LessOrEqual(t, p.Limit, 100)
			require.LessOrEqual(t, len(p.Filter), 64)
		}
		parsed, err := pathID(c, "id")
		if err != nil {
			status, _ := errorResponse(err)
			require.Equal(t, http.StatusNotFound, status)
		} else {
			require.Equal(t, strings.ToLower(id), parsed.String(), "only the canonical 36-character form is an id")
		}
	})
}
