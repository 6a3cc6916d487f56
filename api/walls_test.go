package api_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/api"
)

// Walls (issue 8): tenants cannot see or touch each other's objects, every
// route sits behind the guard it should, secrets never reach a log or an
// answer they should not, and secrets are compared in constant time.
// Routes are enumerated from the router itself, so a route added later
// without a guard, or with an id this file does not know, fails here.

// idRouteBodies is the body each merchant route with an :id is sent with;
// a route missing here fails TestWallsOtherMerchantsIDsAnswer404.
var idRouteBodies = map[string]string{
	"GET /v1/payments/:id":                         "",
	"POST /v1/payments/:id/cancel":                 "",
	"POST /v1/payments/:id/simulate":               `{"status":"AUTHORIZED"}`,
	"GET /v1/payouts/:id":                          "",
	"POST /v1/payouts/:id/simulate":                `{"status":"PROCESSING"}`,
	"GET /v1/events/:id":                           "",
	"GET /v1/webhook-deliveries/:id":               "",
	"POST /v1/webhook-deliveries/:id/retry":        "",
	"GET /v1/webhook-endpoints/:id":                "",
	"PATCH /v1/webhook-endpoints/:id":              `{"description":"x"}`,
	"DELETE /v1/webhook-endpoints/:id":             "",
	"POST /v1/webhook-endpoints/:id/rotate-secret": "",
	"POST /v1/webhook-endpoints/:id/test":          "",
	"POST /v1/webhook-endpoints/:id/recover":       `{"since":"2026-01-01T00:00:00Z"}`,
	"DELETE /v1/api-keys/:id":                      "",
}

// routeOf names a route as "METHOD /path/:param".
func routeOf(r *echo.Route) string { return r.Method + " " + r.Path }

// TestWallsOtherMerchantsIDsAnswer404 tries every merchant route that takes
// an id with each of another merchant's objects (of every type): 404
// resource_missing, the very answer an id that exists nowhere gets (no
// oracle), and nothing written. The merchant's own ids work on the same
// routes, so the walls are not just every id failing.
func TestWallsOtherMerchantsIDsAnswer404(t *testing.T) {
	t.Parallel()
	b := setupHostile(t)
	ours := map[string]string{"payments": b.payment, "payouts": b.payout, "events": b.event, "webhook-deliveries": b.delivery,
		"webhook-endpoints": b.endpoint}
	theirs := []string{b.otherPayment, b.otherPayout, b.otherEvent, b.otherDelivery, b.otherEndpoint}
	seen := 0
	before := b.snapshot()
	for _, r := range b.e.Routes() {
		if !strings.HasPrefix(r.Path, "/v1/") || !strings.Contains(r.Path, ":id") || r.Method == echo.RouteNotFound {
			continue
		}
		body, ok := idRouteBodies[routeOf(r)]
		if !ok {
			t.Errorf("%s takes an id: add it to idRouteBodies so its wall is tested", routeOf(r))
			continue
		}
		seen++
		send := func(id string) *response {
			c := hostileCase{method: r.Method, target: strings.Replace(r.Path, ":id", id, 1)}
			if body != "" {
				c.body = []byte(body)
			}
			return b.send(c)
		}
		nowhere := send(uuid.NewString())
		requireError(t, nowhere, http.StatusNotFound, "invalid_request_error", "resource_missing")
		for _, id := range theirs {
			res := send(id)
			requireError(t, res, http.StatusNotFound, "invalid_request_error", "resource_missing")
			require.Equal(t, string(nowhere.Body), string(res.Body), "%s with another merchant's %s: the same answer as an id that exists nowhere", routeOf(r), id)
		}
		after := b.snapshot()
		require.Equal(t, before, after, "%s with another merchant's ids wrote something", routeOf(r))

		// Our own object of the route's type gets past the wall.
		if r.Method == http.MethodGet {
			kind := strings.Split(r.Path, "/")[2]
			res := send(ours[kind])
			require.Equal(t, http.StatusOK, res.Code, "%s with our own id: %s", routeOf(r), res.Body)
		}
	}
	require.Equal(t, len(idRouteBodies), seen, "every route in idRouteBodies exists")
}

// TestWallsListsShowOnlyOwnObjects: every merchant list, with or without a
// cursor taken from the other merchant, shows only the caller's objects.
func TestWallsListsShowOnlyOwnObjects(t *testing.T) {
	t.Parallel()
	b := setupHostile(t)
	owned := func(key, path string) map[string]bool {
		res := b.send(hostileCase{method: "GET", target: path + "?limit=100", auth: "Bearer " + key})
		require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
		var list struct{ Data []struct{ ID string } }
		require.NoError(t, json.Unmarshal(res.Body, &list))
		ids := map[string]bool{}
		for _, o := range list.Data {
			ids[o.ID] = true
		}
		return ids
	}
	seen := 0
	for _, r := range b.e.Routes() {
		if r.Method != http.MethodGet || !strings.HasPrefix(r.Path, "/v1/") || strings.Contains(r.Path, ":") ||
			r.Path == "/v1/webhook-endpoint" {
			continue
		}
		seen++
		mine, theirs := owned(b.key, r.Path), owned(b.otherKey, r.Path)
		require.NotEmpty(t, mine, r.Path)
		require.NotEmpty(t, theirs, r.Path)
		for id := range mine {
			require.False(t, theirs[id], "%s: %s is listed for both merchants", r.Path, id)
		}
		for _, cursor := range []string{b.otherPayment, b.otherEvent, uuid.Must(uuid.NewV7()).String()} {
			res := b.send(hostileCase{method: "GET", target: r.Path + "?limit=100&starting_after=" + cursor})
			require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
			var list struct{ Data []struct{ ID string } }
			require.NoError(t, json.Unmarshal(res.Body, &list))
			for _, o := range list.Data {
				require.True(t, mine[o.ID], "%s?starting_after=%s listed %s, not ours", r.Path, cursor, o.ID)
			}
		}
	}
	require.Equal(t, 6, seen, "payments, payouts, events, webhook-deliveries, api-keys, webhook-endpoints")
}

// TestWallsIdempotencyKeysArePerMerchant: the same Idempotency-Key used by
// two merchants makes two objects; neither sees the other's stored answer.
func TestWallsIdempotencyKeysArePerMerchant(t *testing.T) {
	t.Parallel()
	b := setupHostile(t)
	post := func(key, body string) *response {
		return b.send(hostileCase{method: "POST", target: "/v1/payments", auth: "Bearer " + key, body: []byte(body),
			header: [][2]string{{"Idempotency-Key", "order-42"}}})
	}
	a := post(b.key, `{"amount":5000,"currency":"XAF","gateway":"sandbox"}`)
	require.Equal(t, http.StatusCreated, a.Code)
	// Another body under the same key: for us a 409, for the other
	// merchant a new payment of its own, not a replay of ours.
	require.Equal(t, http.StatusConflict, post(b.key, `{"amount":7000,"currency":"XOF","gateway":"sandbox"}`).Code)
	other := post(b.otherKey, `{"amount":7000,"currency":"XOF","gateway":"sandbox"}`)
	require.Equal(t, http.StatusCreated, other.Code, "%s", other.Body)
	require.Empty(t, other.Header.Get("Idempotent-Replayed"))
	require.NotEqual(t, a.json(t)["id"], other.json(t)["id"])
	require.Equal(t, float64(7000), other.json(t)["amount"])
	again := post(b.key, `{"amount":5000,"currency":"XAF","gateway":"sandbox"}`)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.Equal(t, a.json(t)["id"], again.json(t)["id"])
}

// TestWallsEveryRouteIsGuarded walks the router: every route is public (a
// short list), a provider webhook (its own signature), /metrics
// (METRICS_TOKEN), /admin (ADMIN_TOKEN; 404 when unset), or a merchant
// route (an API key). Each guard refuses what it should.
func TestWallsEveryRouteIsGuarded(t *testing.T) {
	t.Parallel()
	b := setupHostile(t)
	public := []string{"GET /healthz", "GET /readyz", "GET /openapi.yaml"}
	concrete := func(path string) string {
		path = strings.ReplaceAll(path, ":id", b.payment)
		return strings.ReplaceAll(path, "*", "jobs")
	}
	// The same routes with ADMIN_TOKEN and METRICS_TOKEN unset.
	open := setup(t, withMetrics(), withoutMerchant(), withConfig(api.Config{RiverUI: http.NotFoundHandler()}))
	serveOpen := func(method, target, auth string) *response {
		h := &hostileBundle{apiTest: open}
		return h.send(hostileCase{method: method, target: target, auth: auth})
	}

	kinds := map[string]int{}
	for _, r := range b.e.Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		name, target := routeOf(r), concrete(r.Path)
		send := func(auth string) *response {
			c := hostileCase{method: r.Method, target: target, auth: auth}
			if r.Method == http.MethodPost || r.Method == http.MethodPut {
				c.body = []byte(`{}`)
			}
			return b.send(c)
		}
		switch {
		case slices.Contains(public, name):
			kinds["public"]++
			require.Less(t, send("-").Code, 500, name)
		case strings.HasPrefix(r.Path, "/v1/webhooks/"):
			kinds["provider"]++
			res := send("-")
			require.Equal(t, http.StatusUnauthorized, res.Code, "%s unsigned: %s", name, res.Body)
		case r.Path == "/metrics":
			kinds["metrics"]++
			for _, auth := range []string{"-", "Bearer nope", "Bearer " + b.key, "Bearer " + hostileAdminToken} {
				require.Equal(t, http.StatusUnauthorized, send(auth).Code, "%s with %q", name, auth)
			}
			require.Equal(t, http.StatusOK, send("Bearer "+hostileMetricsToken).Code)
			require.Equal(t, http.StatusOK, serveOpen(r.Method, target, "-").Code, "without METRICS_TOKEN /metrics is open")
		case r.Path == "/admin" || strings.HasPrefix(r.Path, "/admin/"):
			kinds["admin"]++
			for _, auth := range []string{"-", "Bearer nope", "Bearer " + b.key, "Bearer " + hostileMetricsToken, basicAuth("admin", "nope")} {
				res := send(auth)
				require.Equal(t, http.StatusUnauthorized, res.Code, "%s with %q: %s", name, auth, res.Body)
			}
			res := serveOpen(r.Method, target, "Bearer "+hostileAdminToken)
			require.Equal(t, http.StatusNotFound, res.Code, "%s without ADMIN_TOKEN: as if it did not exist", name)
		default:
			kinds["merchant"]++
			require.True(t, strings.HasPrefix(r.Path, "/v1/"), "%s is outside /v1 and not in the public list: what guards it?", name)
			for _, auth := range []string{"-", "Bearer " + b.revokedKey, "Bearer " + hostileAdminToken, "Bearer " + hostileMetricsToken} {
				res := send(auth)
				requireError(t, res, http.StatusUnauthorized, "authentication_error", "unauthorized")
			}
		}
	}
	t.Logf("routes by guard: %v", kinds)
	require.Equal(t, len(public), kinds["public"])
	require.Equal(t, 3, kinds["provider"])
	require.Equal(t, 1, kinds["metrics"])
	require.GreaterOrEqual(t, kinds["admin"], 3)
	require.GreaterOrEqual(t, kinds["merchant"], 18)
}

// TestWallsSecretsNeverLoggedOrAnswered runs a flow that handles every kind
// of secret — API keys (good, wrong, revoked, of another merchant), webhook
// signing secrets (generated, rotated), the admin and metrics tokens, the
// provider secrets and eBilling's token in the query string — with the log
// at debug level, and with the database gone at the end (5xx are logged in
// full). No secret appears in the log, and none in any answer but the one
// that shows it once.
func TestWallsSecretsNeverLoggedOrAnswered(t *testing.T) {
	t.Parallel()
	b := setupHostile(t)
	var answers []string
	do := func(c hostileCase) *response {
		res := b.send(c)
		answers = append(answers, string(res.Body))
		return res
	}
	admin := "Bearer " + hostileAdminToken

	// Secrets shown once: the new merchant's key and signing secret, then
	// each rotation. The answers that show them are kept apart.
	created := b.send(hostileCase{method: "POST", target: "/admin/merchants", auth: admin, body: []byte(`{"name":"Walls","webhook_url":"https://walls.example.com/hooks"}`)})
	require.Equal(t, http.StatusCreated, created.Code, "%s", created.Body)
	var nm struct {
		APIKey        string `json:"api_key"`
		WebhookSecret string `json:"webhook_secret"`
	}
	require.NoError(t, json.Unmarshal(created.Body, &nm))
	newKey := "Bearer " + nm.APIKey
	rotated := b.send(hostileCase{method: "POST", target: "/v1/webhook-endpoint/rotate-secret", auth: newKey})
	require.Equal(t, http.StatusOK, rotated.Code)
	var rot struct{ Secret string }
	require.NoError(t, json.Unmarshal(rotated.Body, &rot))
	require.NotEmpty(t, rot.Secret)

	for _, c := range []hostileCase{
		{method: "GET", target: "/v1/webhook-endpoint", auth: newKey},
		{method: "PUT", target: "/v1/webhook-endpoint", auth: newKey, body: []byte(`{"url":"https://walls.example.com/v2"}`)},
		{method: "POST", target: "/v1/webhook-endpoint/test", auth: newKey},
		{method: "GET", target: "/v1/webhook-deliveries", auth: newKey},
		{method: "GET", target: "/v1/events", auth: newKey},
		{method: "GET", target: "/v1/payments", auth: "Bearer " + b.key},
		{method: "GET", target: "/v1/payments", header: [][2]string{{"X-API-Key", b.otherKey}}, auth: "-"},
		{method: "GET", target: "/v1/payments", auth: "Bearer " + b.revokedKey},
		{method: "GET", target: "/v1/payments", auth: "Bearer " + b.key + "x"},
		{method: "GET", target: "/v1/payments/not-an-id", auth: "Bearer " + b.key},
		{method: "POST", target: "/v1/payments", auth: "Bearer " + b.key, body: []byte(`{"amount":"` + b.key + `"}`)},
		{method: "GET", target: "/metrics", auth: "Bearer " + hostileMetricsToken},
		{method: "GET", target: "/metrics", auth: "Bearer " + hostileMetricsToken + "x"},
		{method: "GET", target: "/admin/webhook-failures", auth: admin},
		{method: "GET", target: "/admin/webhook-failures", auth: basicAuth("ops", hostileAdminToken+"x")},
		{method: "POST", target: "/v1/webhooks/stripe", auth: "-", body: []byte(`{"id":"evt_w"}`),
			header: [][2]string{{"Stripe-Signature", stripeHeaderAt(hostileStripeSecret, time.Now(), []byte(`{}`))}}},
		{method: "POST", target: "/v1/webhooks/moneroo", auth: "-", body: []byte(`{"event":"payment.success"}`),
			header: [][2]string{{"X-Moneroo-Signature", hmacHex(hostileMonerooSecret, []byte("other"))}}},
		{method: "POST", target: "/v1/webhooks/ebilling?token=" + hostileEBillingToken, auth: "-", body: []byte("reference=" + uuid.NewString() + "&amount=1"),
			header: [][2]string{{"Content-Type", "application/x-www-form-urlencoded"}}},
		{method: "POST", target: "/v1/webhooks/ebilling?token=" + hostileEBillingToken + "x", auth: "-", body: []byte("reference=x"),
			header: [][2]string{{"Content-Type", "application/x-www-form-urlencoded"}}},
	} {
		do(c)
	}
	// The database goes away: every lookup fails inside, a 5xx logged in full.
	b.store.Pool.Close()
	do(hostileCase{method: "GET", target: "/v1/payments", auth: "Bearer " + b.otherKey})
	do(hostileCase{method: "POST", target: "/admin/merchants", auth: admin, body: []byte(`{"name":"Down"}`)})

	logs := b.logs.String()
	require.Contains(t, logs, `"level":"ERROR"`, "the 5xx was logged in full")
	require.Contains(t, logs, "/v1/webhooks/ebilling", "the eBilling call was logged")
	secrets := map[string]string{
		"API key":                 b.key,
		"other API key":           b.otherKey,
		"revoked API key":         b.revokedKey,
		"new merchant's API key":  nm.APIKey,
		"signing secret":          nm.WebhookSecret,
		"rotated signing secret":  rot.Secret,
		"admin token":             hostileAdminToken,
		"metrics token":           hostileMetricsToken,
		"Stripe secret":           hostileStripeSecret,
		"Moneroo secret":          hostileMonerooSecret,
		"eBilling callback token": hostileEBillingToken,
	}
	for what, secret := range secrets {
		// The part of a key its stored prefix does not reveal, too.
		for _, s := range []string{secret, secret[len(secret)/2:]} {
			require.NotContains(t, logs, s, "the %s reached the log", what)
			for _, a := range answers {
				require.NotContains(t, a, s, "the %s in an answer: %.200s", what, a)
			}
		}
	}
	require.NotContains(t, string(rotated.Body), nm.WebhookSecret, "a rotation shows the new secret, not the old")
}

// TestTimingSafeComparisons scans the module's Go code (tests aside) for ==,
// != and bytes.Equal-style comparisons on anything named like a secret,
// token, signature, MAC, password, API key or hash: those must go through
// hmac.Equal or subtle.ConstantTimeCompare. Comparisons with a literal, nil
// or len() are fine (an empty secret is not one). API keys are not compared
// at all: their SHA-256 is looked up in an index.
func TestTimingSafeComparisons(t *testing.T) {
	t.Parallel()
	// The scanner catches what it should (a check that cannot fail proves
	// nothing).
	const bad = `package x
func f(token, given string, h struct{ Secret string }, sig, want []byte) bool {
	if given == "" || len(sig) != 32 { return false }
	return h.Secret == given || token != given || bytes.Equal(sig, want)
}`
	found := scanComparisons(t, map[string][]byte{"x.go": []byte(bad)})
	require.Len(t, found, 3, "%v", found)

	files := map[string][]byte{}
	root := filepath.Join("..")
	require.NoError(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files[path] = b
		}
		return nil
	}))
	require.Greater(t, len(files), 40, "the scan read the module")
	require.Empty(t, scanComparisons(t, files), "compare secrets with hmac.Equal or subtle.ConstantTimeCompare")
}

var secretName = regexp.MustCompile(`(?i)(token|secret|signature|^sig|sig$|sigs$|mac$|password|passwd|apikey|api_key|keyhash|key_hash|hash$|digest|credential)`)

// scanComparisons returns "file:line: a == b" for every non-constant-time
// comparison of secret-named values in files.
func scanComparisons(t *testing.T, files map[string][]byte) []string {
	t.Helper()
	fset := token.NewFileSet()
	var found []string
	for path, src := range files {
		f, err := parser.ParseFile(fset, path, src, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if n.Op != token.EQL && n.Op != token.NEQ || constantOperand(n.X) || constantOperand(n.Y) {
					return true
				}
				if secretName.MatchString(lastName(n.X)) || secretName.MatchString(lastName(n.Y)) {
					found = append(found, fmt.Sprintf("%s: %s %s %s", fset.Position(n.Pos()), exprName(n.X), n.Op, exprName(n.Y)))
				}
			case *ast.CallExpr:
				switch exprName(n.Fun) {
				case "bytes.Equal", "bytes.Compare", "strings.Compare", "strings.EqualFold", "reflect.DeepEqual", "slices.Equal":
					for _, arg := range n.Args {
						if secretName.MatchString(lastName(arg)) {
							found = append(found, fmt.Sprintf("%s: %s(%s, …)", fset.Position(n.Pos()), exprName(n.Fun), exprName(arg)))
							break
						}
					}
				}
			}
			return true
		})
	}
	slices.Sort(found)
	return found
}

func constantOperand(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return true
	case *ast.Ident:
		return e.Name == "nil" || e.Name == "true" || e.Name == "false"
	case *ast.CallExpr:
		id, ok := e.Fun.(*ast.Ident)
		return ok && (id.Name == "len" || id.Name == "cap")
	}
	return false
}

func exprName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprName(e.X) + "." + e.Sel.Name
	case *ast.CallExpr:
		return exprName(e.Fun) + "()"
	case *ast.IndexExpr:
		return exprName(e.X) + "[]"
	case *ast.SliceExpr:
		return exprName(e.X) + "[:]"
	case *ast.StarExpr:
		return "*" + exprName(e.X)
	case *ast.ParenExpr:
		return exprName(e.X)
	}
	return ""
}

// lastName is the last identifier of an operand: Secret in h.Secret,
// Signature in r.Header.Signature(), sig in sig[:].
func lastName(e ast.Expr) string {
	s := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(exprName(e), "()"), "[]"), "[:]")
	if i := strings.LastIndex(s, "."); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimPrefix(s, "*")
}
