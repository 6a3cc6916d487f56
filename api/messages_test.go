package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/api"
)

// TestErrorMessagesAsASet: the messages a developer meets first, read
// together: grammatical, naming nested fields by their path, one status per
// kind of problem (400 malformed, 422 unacceptable value, 405 wrong method,
// 404 no such thing), and nothing written by any of them.
func TestErrorMessagesAsASet(t *testing.T) {
	t.Parallel()
	a := setup(t)
	payment := func(extra string) string {
		return `{"amount":5000,"currency":"XAF","gateway":"sandbox"` + extra + `}`
	}
	payout := func(recipient string) string {
		return `{"amount":5000,"currency":"XAF","provider":"sandbox","recipient":` + recipient + `}`
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		param, message     string
	}{
		// Malformed: 400.
		{"POST", "/v1/payments", `{"amount":"5000","currency":"XAF","gateway":"sandbox"}`, 400, "amount", "amount must be an integer"},
		{"POST", "/v1/payments", payment(`,"metadata":{"order":"1","n":1}`), 400, "metadata.n", "metadata.n must be a string"},
		{"POST", "/v1/payments", payment(`,"metadata":["a"]`), 400, "metadata", "metadata must be an object"},
		{"POST", "/v1/payments", payment(`,"description":false`), 400, "description", "description must be a string"},
		{"POST", "/v1/payouts", payout(`{"phone":241}`), 400, "recipient.phone", "recipient.phone must be a string"},
		{"POST", "/v1/payouts", payout(`"+241"`), 400, "recipient", "recipient must be an object"},
		{"POST", "/v1/payments", payment(`,"colour":"red"`), 400, "colour", `unknown field "colour"`},
		{"POST", "/v1/payments", `{"amount":`, 400, "", "the request body is not valid JSON"},
		// Well formed, unacceptable: 422, whether in the body or the query.
		{"POST", "/v1/payments", payment(`,"metadata":{"k":"` + strings.Repeat("v", 501) + `"}`), 422, "metadata.k", "metadata.k must be at most 500 characters"},
		{"POST", "/v1/payments", `{"amount":0,"currency":"XAF","gateway":"sandbox"}`, 422, "amount", "amount must be a positive integer in the currency's minor unit"},
		{"POST", "/v1/payments", `{"amount":1,"currency":"XAF","gateway":"paypal"}`, 422, "gateway", "gateway must be one of stripe, moneroo, ebilling, sandbox"},
		{"GET", "/v1/payments?limit=0", "", 422, "limit", "limit must be an integer from 1 to 100"},
		{"GET", "/v1/payments?limit=ten", "", 422, "limit", "limit must be an integer from 1 to 100"},
		{"GET", "/v1/payments?status=PAID", "", 422, "status", "status must be one of PENDING, AUTHORIZED, SUCCEEDED, FAILED, CANCELLED, REFUNDED"},
		{"GET", "/v1/events?starting_after=nope", "", 422, "starting_after", "starting_after must be an object id"},
		// Wrong method, no such route, too large.
		{"PATCH", "/v1/payments", "", 405, "", "PATCH is not allowed here; allowed: GET, POST"},
		{"GET", "/v1/paymens", "", 404, "", "no such route"},
		{"POST", "/v1/payments", payment(`,"description":"` + strings.Repeat("x", 2<<20) + `"`), 413, "", "the request body is larger than 1MiB"},
	} {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		res := a.do(tc.method, tc.path, body)
		require.Equal(t, tc.status, res.Code, "%s %s %.80s: %s", tc.method, tc.path, tc.body, res.Body)
		detail := res.errorOf(t)
		require.Equal(t, tc.message, detail["message"], "%s %s %.80s", tc.method, tc.path, tc.body)
		if tc.param == "" {
			require.NotContains(t, detail, "param", "absent, not null")
		} else {
			require.Equal(t, tc.param, detail["param"])
		}
		if tc.status == http.StatusMethodNotAllowed {
			require.Equal(t, "GET, POST", res.Header.Get("Allow"))
		}
	}
	require.Zero(t, a.count(`SELECT count(*) FROM payments`)+a.count(`SELECT count(*) FROM payouts`), "nothing written")
}

// TestAdminPrivateURLNamesTheSetting: an operator whose merchant URL the SSRF
// guard refuses is told which setting lets a private receiver in.
func TestAdminPrivateURLNamesTheSetting(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(api.Config{AdminToken: adminToken}))
	res := b.admin("POST", "/admin/merchants", map[string]any{"name": "Local", "webhook_url": "http://127.0.0.1:4242/hooks"})
	require.Equal(t, http.StatusUnprocessableEntity, res.Code, "%s", res.Body)
	detail := res.errorOf(t)
	require.Equal(t, "webhook_url", detail["param"])
	require.Contains(t, detail["message"], "set WEBHOOK_ALLOW_PRIVATE_NETWORKS=true; make run does")
}
