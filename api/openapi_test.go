package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/api"
	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// loadOpenAPI fetches GET /openapi.yaml from e and loads it with kin-openapi,
// which validates it as an OpenAPI 3.1 document.
func loadOpenAPI(t *testing.T, e *echo.Echo) *openapi3.T {
	t.Helper()
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.yaml", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(rec.Body.Bytes())
	require.NoError(t, err)
	require.Equal(t, "3.1.0", doc.OpenAPI)
	require.NoError(t, doc.Validate(loader.Context), "the document is not valid OpenAPI 3.1")
	return doc
}

// TestOpenAPIDocumentValid: the served document is valid OpenAPI 3.1 (the
// command-line validators in scripts/openapi-lint.sh check it too), its
// webhooks section lists exactly the event catalogue, and every object a
// response answers says which of its fields are always there.
func TestOpenAPIDocumentValid(t *testing.T) {
	t.Parallel()
	e := api.NewServer(api.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)), dbtest.Store(t), nil)
	doc := loadOpenAPI(t, e)

	var webhooks, catalogue []string
	for name := range doc.Webhooks {
		webhooks = append(webhooks, name)
	}
	for _, et := range db.EventCatalogue {
		catalogue = append(catalogue, et.Name)
		if item := doc.Webhooks[et.Name]; item != nil && item.Post != nil {
			require.Equal(t, et.Description, item.Post.Description, "webhooks %s: the catalogue's description", et.Name)
		}
	}
	sort.Strings(webhooks)
	sort.Strings(catalogue)
	require.Equal(t, catalogue, webhooks, "one webhooks entry per event type")

	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status, res := range op.Responses.Map() {
				for mt, content := range res.Value.Content {
					if content.Schema == nil {
						continue
					}
					where := method + " " + path + " " + status + " " + mt
					requireRequiredFields(t, where, content.Schema.Value, map[*openapi3.Schema]bool{})
				}
			}
		}
	}
}

// openapiLintDir holds two independent OpenAPI 3.1 validators from npm
// (package.json, lockfile): Redocly CLI's lint and
// @seriousme/openapi-schema-validator, which checks the document against the
// OpenAPI Initiative's own 3.1 JSON Schema. `make test` installs them
// (scripts/test-tools.sh); without them the test skips, except under CI.
var openapiLintDir = filepath.Join("testdata", "openapilint")

// TestOpenAPIDocumentPassesOtherValidators: kin-openapi is one validator;
// these are two more, written by other people, that must accept it too.
func TestOpenAPIDocumentPassesOtherValidators(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(openapiLintDir, "node_modules", ".bin")
	if _, err := exec.LookPath("node"); err != nil || !fileExists(filepath.Join(bin, "redocly")) {
		if os.Getenv("CI") == "true" {
			t.Fatal("the OpenAPI validators are not installed: bash scripts/test-tools.sh")
		}
		t.Skip("the OpenAPI validators are not installed: npm ci --prefix api/testdata/openapilint")
	}
	for _, args := range [][]string{
		{"redocly", "lint", "--config", "redocly.yaml", "../../openapi.yaml"},
		{"validate-api", "../../openapi.yaml"},
	} {
		cmd := exec.Command(filepath.Join("node_modules", ".bin", args[0]), args[1:]...)
		cmd.Dir = openapiLintDir
		cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_COLOR=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s refuses api/openapi.yaml:\n%s", args[0], out)
		if args[0] == "validate-api" {
			require.Contains(t, string(out), `"valid": true`, "%s", out)
		}
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// requireRequiredFields walks a response schema: every object with
// properties names the ones always present in required (optional ones are
// the exception, such as a secret shown once, and need at least one required
// neighbour), so generated clients do not type every field as optional.
func requireRequiredFields(t *testing.T, where string, s *openapi3.Schema, seen map[*openapi3.Schema]bool) {
	t.Helper()
	if s == nil || seen[s] {
		return
	}
	seen[s] = true
	if len(s.Properties) > 0 && len(s.Required) == 0 && len(s.AllOf) == 0 && s.AdditionalProperties.Has == nil {
		// A property list added to an allOf branch refines a schema that has its own required.
		if !(s.Type == nil && len(s.Properties) == 1) {
			t.Errorf("%s: an object schema with properties %v has no required list", where, keysOf(s.Properties))
		}
	}
	for _, p := range s.Properties {
		requireRequiredFields(t, where, p.Value, seen)
	}
	for _, sub := range slices.Concat(s.AllOf, s.AnyOf, s.OneOf) {
		requireRequiredFields(t, where, sub.Value, seen)
	}
	if s.Items != nil {
		requireRequiredFields(t, where, s.Items.Value, seen)
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

const (
	conformanceAdminToken = "conformance-admin-token"
	conformanceStripe     = "whsec_Y29uZm9ybWFuY2Ugc3RyaXBlIHNlY3JldA=="
	conformanceMoneroo    = "moneroo_conformance"
	conformanceEBilling   = "ebilling_conformance"
)

// conformance is the whole API, every option on, behind a checker that
// validates each request and each answer against the served document with
// kin-openapi's openapi3filter, and records which operations were exercised.
type conformance struct {
	*apiTest
	router  routers.Router
	doc     *openapi3.T
	covered map[string]bool // "GET /v1/payments/{id}" answered 2xx
}

func setupConformance(t *testing.T) *conformance {
	t.Helper()
	a := setup(t, withMetrics(), withConfig(api.Config{
		AdminToken:           conformanceAdminToken,
		AllowPrivateNetworks: true,
		ProviderSecrets: map[string]string{"stripe": conformanceStripe, "moneroo": conformanceMoneroo,
			"ebilling": conformanceEBilling},
	}))
	doc := loadOpenAPI(t, a.e)
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	return &conformance{apiTest: a, router: router, doc: doc, covered: map[string]bool{}}
}

// exchange sends one request as the merchant (headers: name, value pairs;
// "" removes one) and validates the answer against the document. It
// returns the answer and what the document says about the request (nil:
// the request conforms).
func (c *conformance) exchange(method, target string, body any, headers ...string) (*response, error) {
	c.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		raw, err = json.Marshal(b)
		require.NoError(c.t, err)
	}
	newRequest := func() *http.Request {
		req := httptest.NewRequest(method, "http://localhost:3000"+target, bytes.NewReader(raw))
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		hs := append([]string{"Authorization", "Bearer " + c.key}, headers...)
		for i := 0; i+1 < len(hs); i += 2 {
			if hs[i+1] == "" {
				req.Header.Del(hs[i])
				continue
			}
			req.Header.Set(hs[i], hs[i+1])
		}
		return req
	}

	route, pathParams, err := c.router.FindRoute(newRequest())
	require.NoError(c.t, err, "%s %s is not in the OpenAPI document", method, target)
	ctx := context.Background()
	options := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	reqInput := &openapi3filter.RequestValidationInput{Request: newRequest(), PathParams: pathParams, Route: route, Options: options}
	reqErr := openapi3filter.ValidateRequest(ctx, reqInput)

	rec := httptest.NewRecorder()
	c.e.ServeHTTP(rec, newRequest())
	res := &response{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	resErr := openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqInput,
		Status:                 res.Code,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(res.Body)),
		Options:                options,
	})
	require.NoError(c.t, resErr, "%s %s answered %d, which the document does not allow: %.600s", method, target, res.Code, res.Body)
	if res.Code < 300 {
		c.covered[method+" "+route.Path] = true
	}
	return res, reqErr
}

// ok sends a request the document allows and wants status.
func (c *conformance) ok(status int, method, target string, body any, headers ...string) *response {
	c.t.Helper()
	res, reqErr := c.exchange(method, target, body, headers...)
	require.NoError(c.t, reqErr, "%s %s: the document refuses a request the test means as valid", method, target)
	require.Equal(c.t, status, res.Code, "%s %s: %s", method, target, res.Body)
	return res
}

// refused sends a request the document refuses too, and wants status (the
// answer itself is still validated by exchange).
func (c *conformance) refused(status int, method, target string, body any, headers ...string) *response {
	c.t.Helper()
	res, reqErr := c.exchange(method, target, body, headers...)
	require.Error(c.t, reqErr, "%s %s: the document accepts a request the service refuses with %d", method, target, res.Code)
	require.Equal(c.t, status, res.Code, "%s %s: %s", method, target, res.Body)
	return res
}

func (c *conformance) id(res *response) string {
	c.t.Helper()
	id, _ := res.json(c.t)["id"].(string)
	require.NotEmpty(c.t, id, "%s", res.Body)
	return id
}

var echoParam = regexp.MustCompile(`:([a-z_]+)`)

// registeredOperations lists the operations Echo routes: "GET /v1/payments/{id}".
func registeredOperations(e *echo.Echo) []string {
	var ops []string
	seen := map[string]bool{}
	for _, r := range e.Routes() {
		// Echo's own catch-alls (group 404s, RouteNotFound) and the River UI's
		// mount (a whole application under one prefix) are not operations.
		if r.Method == echo.RouteNotFound || strings.HasSuffix(r.Path, "*") || r.Path == "/v1" ||
			strings.HasPrefix(r.Path, "/admin/river") {
			continue
		}
		op := r.Method + " " + echoParam.ReplaceAllString(r.Path, "{$1}")
		if !seen[op] {
			seen[op] = true
			ops = append(ops, op)
		}
	}
	sort.Strings(ops)
	return ops
}

// TestOpenAPIConformance drives every route through the real router and a
// real database, and checks each request and each answer, errors included,
// against the served document. A route missing from the document, an answer
// it does not describe (a status, a field, a null where it says string), or
// a documented operation no route serves, fails here. A new route needs a
// line below that exercises it.
func TestOpenAPIConformance(t *testing.T) {
	t.Parallel()
	c := setupConformance(t)
	ctx := context.Background()

	// Ops.
	c.ok(200, "GET", "/healthz", nil)
	c.ok(200, "GET", "/readyz", nil)
	c.ok(200, "GET", "/metrics", nil)
	c.ok(200, "GET", "/openapi.yaml", nil)

	// Payments.
	payment := map[string]any{"amount": 5000, "currency": "XAF", "gateway": "sandbox", "reference": "order-1",
		"metadata": map[string]string{"order": "1"}}
	res := c.ok(201, "POST", "/v1/payments", payment, "Idempotency-Key", "conf-1")
	paymentID := c.id(res)
	res = c.ok(201, "POST", "/v1/payments", payment, "Idempotency-Key", "conf-1")
	require.Equal(t, "true", res.Header.Get("Idempotent-Replayed"))
	c.ok(200, "GET", "/v1/payments", nil)
	c.ok(200, "GET", "/v1/payments?status=PENDING&limit=5&starting_after="+paymentID, nil)
	c.ok(200, "GET", "/v1/payments/"+paymentID, nil)
	c.ok(200, "POST", "/v1/payments/"+paymentID+"/simulate", map[string]any{"status": "SUCCEEDED"})
	bare := c.id(c.ok(201, "POST", "/v1/payments", map[string]any{"amount": 100, "currency": "XOF", "gateway": "sandbox"}))
	c.ok(200, "POST", "/v1/payments/"+bare+"/cancel", nil)

	// Payouts.
	payout := map[string]any{"amount": 2500, "currency": "XAF", "provider": "sandbox", "recipient": map[string]string{"phone": "+24177000000"}}
	payoutID := c.id(c.ok(201, "POST", "/v1/payouts", payout))
	c.ok(200, "GET", "/v1/payouts", nil)
	c.ok(200, "GET", "/v1/payouts?status=PENDING", nil)
	c.ok(200, "GET", "/v1/payouts/"+payoutID, nil)
	c.ok(200, "POST", "/v1/payouts/"+payoutID+"/simulate", map[string]any{"status": "PROCESSING"})

	// Events.
	events := c.ok(200, "GET", "/v1/events?type=payment.succeeded", nil).json(t)["data"].([]any)
	require.NotEmpty(t, events)
	c.ok(200, "GET", "/v1/events/"+events[0].(map[string]any)["id"].(string), nil)

	// Webhook endpoint and deliveries.
	c.ok(200, "GET", "/v1/webhook-endpoint", nil)
	c.ok(200, "PUT", "/v1/webhook-endpoint", map[string]any{"url": "https://merchant.example.com/v2/hooks"})
	c.ok(200, "POST", "/v1/webhook-endpoint/rotate-secret", nil)
	deliveryID := c.id(c.ok(201, "POST", "/v1/webhook-endpoint/test", nil))
	c.ok(200, "GET", "/v1/webhook-deliveries", nil)
	c.ok(200, "GET", "/v1/webhook-deliveries?status=PENDING&limit=2", nil)
	c.ok(200, "GET", "/v1/webhook-deliveries/"+deliveryID, nil)
	_, err := c.store.Pool.Exec(ctx, `UPDATE webhook_deliveries SET status = 'FAILED', attempts = 6,
		last_attempt_at = now(), http_status_code = 500, error_message = 'HTTP 500' WHERE id = $1`, deliveryID)
	require.NoError(t, err)
	c.ok(200, "POST", "/v1/webhook-deliveries/"+deliveryID+"/retry", nil)
	c.ok(200, "POST", "/v1/webhook-endpoint/rotate-secret", map[string]any{"previous_secret_expires_in": 0})

	// Webhook endpoints.
	endpoints := c.ok(200, "GET", "/v1/webhook-endpoints", nil).json(t)["data"].([]any)
	require.NotEmpty(t, endpoints)
	endpointID := c.id(c.ok(201, "POST", "/v1/webhook-endpoints", map[string]any{"url": "https://merchant.example.com/payouts",
		"description": "payouts", "enabled_events": []string{"payout.succeeded", "payout.failed"}}))
	c.ok(200, "GET", "/v1/webhook-endpoints/"+endpointID, nil)
	c.ok(200, "PATCH", "/v1/webhook-endpoints/"+endpointID, map[string]any{"description": nil, "disabled": true})
	c.ok(200, "PATCH", "/v1/webhook-endpoints/"+endpointID, map[string]any{"disabled": false, "enabled_events": []string{"*"}})
	c.ok(200, "POST", "/v1/webhook-endpoints/"+endpointID+"/rotate-secret", map[string]any{"previous_secret_expires_in": 3600})
	c.ok(201, "POST", "/v1/webhook-endpoints/"+endpointID+"/test", nil)
	c.ok(200, "POST", "/v1/webhook-endpoints/"+endpointID+"/recover", map[string]any{"since": time.Now().Add(-time.Hour).Format(time.RFC3339)})
	c.ok(200, "GET", "/v1/webhook-deliveries?endpoint_id="+endpointID+"&event_id="+uuid.NewString(), nil)
	c.ok(200, "DELETE", "/v1/webhook-endpoints/"+endpointID, nil)

	// API keys.
	newKey := c.ok(201, "POST", "/v1/api-keys", map[string]any{"name": "ci"}).json(t)
	require.NotEmpty(t, newKey["key"])
	c.ok(201, "POST", "/v1/api-keys", nil)
	c.ok(200, "GET", "/v1/api-keys", nil)
	c.ok(200, "DELETE", "/v1/api-keys/"+newKey["id"].(string), nil)

	// Provider webhooks, each signed as its provider signs.
	stripeEvent := `{"id":"evt_conformance","object":"event","type":"customer.created","data":{"object":{"id":"cus_1","object":"customer"}}}`
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	c.ok(200, "POST", "/v1/webhooks/stripe", stripeEvent, "Authorization", "",
		"Stripe-Signature", "t="+ts+",v1="+hmacHex(conformanceStripe, []byte(ts+"."+stripeEvent)))
	monerooEvent := `{"event":"customer.updated","data":{"id":"cus_conformance"}}`
	c.ok(200, "POST", "/v1/webhooks/moneroo", monerooEvent, "Authorization", "",
		"X-Moneroo-Signature", hmacHex(conformanceMoneroo, []byte(monerooEvent)))
	billed := c.id(c.ok(201, "POST", "/v1/payments", map[string]any{"amount": 5000, "currency": "XAF", "gateway": "ebilling"}))
	form := "billingid=5550001&transactionid=tx_conformance&reference=" + billed + "&amount=5000&state=paid"
	c.ok(200, "POST", "/v1/webhooks/ebilling?token="+conformanceEBilling, form, "Authorization", "",
		"Content-Type", "application/x-www-form-urlencoded")

	// Admin.
	admin := []string{"Authorization", "Bearer " + conformanceAdminToken}
	merchant := c.ok(201, "POST", "/admin/merchants", map[string]any{"name": "Second", "webhook_url": "https://second.example.com/hooks"}, admin...).json(t)
	c.ok(201, "POST", "/admin/merchants/"+merchant["id"].(string)+"/api-keys", map[string]any{"name": "recovery"}, admin...)
	pending := c.id(c.ok(201, "POST", "/v1/payments", map[string]any{"amount": 700, "currency": "XAF", "gateway": "moneroo"}))
	c.ok(200, "POST", "/admin/payments/"+pending+"/status", map[string]any{"status": "FAILED", "reason": "the provider confirmed by phone"}, admin...)
	c.ok(200, "GET", "/admin/webhook-failures?limit=10", nil, admin...)

	// Reviews: money captured after a cancel, a payout whose money left
	// after it failed; both found, both resolved with a note.
	c.ok(200, "POST", "/v1/payments/"+bare+"/simulate", map[string]any{"status": "SUCCEEDED", "amount_received": 100})
	c.ok(200, "GET", "/admin/reviews?object=payment&limit=10", nil, admin...)
	c.ok(200, "POST", "/admin/payments/"+bare+"/review/resolve", map[string]any{"note": "refunded at the provider"}, admin...)
	c.ok(409, "POST", "/admin/payments/"+bare+"/review/resolve", map[string]any{"note": "again"}, admin...)
	late := c.id(c.ok(201, "POST", "/v1/payouts", map[string]any{"amount": 2500, "currency": "XAF", "provider": "sandbox",
		"recipient": map[string]string{"phone": "+24177000000"}, "provider_reference": "sb_po_conformance"}))
	c.ok(409, "POST", "/v1/payouts", map[string]any{"amount": 2500, "currency": "XAF", "provider": "sandbox",
		"recipient": map[string]string{"phone": "+24177000000"}, "provider_reference": "sb_po_conformance"})
	c.ok(200, "POST", "/admin/payouts/"+late+"/status", map[string]any{"status": "FAILED", "reason": "bank said no"}, admin...)
	c.ok(200, "POST", "/v1/payouts/"+late+"/simulate", map[string]any{"status": "SUCCEEDED"})
	c.ok(200, "GET", "/admin/reviews", nil, admin...)
	c.ok(200, "POST", "/admin/payouts/"+late+"/review/resolve", map[string]any{"note": "paid once, checked"}, admin...)

	// Errors: each kind answers the documented shape (param absent, never null).
	c.refused(400, "POST", "/v1/payments", `{"amount":"5000","currency":"XAF","gateway":"sandbox"}`)
	c.refused(400, "POST", "/v1/payments", `{"amount":5000,"currency":"XAF","gateway":"sandbox","colour":"red"}`)
	c.refused(422, "POST", "/v1/payments", map[string]any{"amount": 5000, "currency": "XAF", "gateway": "paypal"})
	c.refused(422, "POST", "/v1/payments", map[string]any{"amount": 0, "currency": "XAF", "gateway": "sandbox"})
	c.refused(422, "GET", "/v1/payments?limit=0", nil)
	c.refused(422, "GET", "/v1/payouts?status=LOST", nil)
	c.refused(415, "POST", "/v1/payouts", "amount=1", "Content-Type", "text/plain")
	c.ok(409, "POST", "/v1/payments", map[string]any{"amount": 6000, "currency": "XAF", "gateway": "sandbox"}, "Idempotency-Key", "conf-1")
	c.ok(409, "POST", "/v1/payments/"+paymentID+"/cancel", nil)
	c.ok(404, "GET", "/v1/payments/"+uuid.NewString(), nil)
	c.ok(401, "GET", "/v1/events", nil, "Authorization", "Bearer bp_nope")
	c.ok(401, "GET", "/admin/webhook-failures", nil, "Authorization", "Bearer wrong")
	c.ok(409, "DELETE", "/v1/api-keys/"+c.lastKeyID(), nil)

	// A method a path does not have: 405 with Allow, in the error shape.
	for _, tc := range []struct{ method, path, allow string }{
		{"PUT", "/v1/payments", "GET, POST"},
		{"DELETE", "/v1/payments/" + paymentID, "GET"},
		{"GET", "/v1/webhooks/stripe", "POST"},
		{"DELETE", "/admin/merchants", "POST"},
		{"POST", "/healthz", "GET"},
	} {
		auth := []string{"Authorization", "Bearer " + c.key}
		if strings.HasPrefix(tc.path, "/admin") {
			auth = admin
		}
		res := serve(t, c.e, tc.method, tc.path, nil, auth...)
		require.Equal(t, http.StatusMethodNotAllowed, res.Code, "%s %s: %s", tc.method, tc.path, res.Body)
		if tc.path == "/healthz" {
			require.Contains(t, res.Header.Get("Allow"), tc.allow) // Echo's own answer: no catch-all on this path
			continue
		}
		require.Equal(t, tc.allow, res.Header.Get("Allow"), "%s %s", tc.method, tc.path)
		var errBody any
		require.NoError(t, json.Unmarshal(res.Body, &errBody))
		require.NoError(t, c.doc.Components.Schemas["Error"].Value.VisitJSON(errBody, openapi3.EnableJSONSchema2020()))
		require.Equal(t, "method_not_allowed", res.errorOf(t)["code"])
	}

	// Every route the server registers is documented and was exercised above;
	// every documented operation is served.
	var documented []string
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	sort.Strings(documented)
	registered := registeredOperations(c.e)
	require.Equal(t, documented, registered, "the document and the routes differ")
	var missed []string
	for _, op := range registered {
		if !c.covered[op] {
			missed = append(missed, op)
		}
	}
	require.Empty(t, missed, "routes the conformance test never drove to a 2xx: add an exchange for each")
}

// lastKeyID revokes every key of the merchant but one, through the API, and
// returns the one left.
func (c *conformance) lastKeyID() string {
	c.t.Helper()
	keys := c.ok(200, "GET", "/v1/api-keys", nil).json(c.t)["data"].([]any)
	var mine string
	for _, k := range keys {
		id := k.(map[string]any)["id"].(string)
		prefix := k.(map[string]any)["prefix"].(string)
		if strings.HasPrefix(c.key, prefix) {
			mine = id
			continue
		}
		c.ok(200, "DELETE", "/v1/api-keys/"+id, nil)
	}
	require.NotEmpty(c.t, mine)
	return mine
}

// TestOpenAPIRateLimitedAnswersConform: every merchant operation documents
// the 429 the per-key rate limit answers, and the answer matches it.
func TestOpenAPIRateLimitedAnswersConform(t *testing.T) {
	t.Parallel()
	c := setupConformance(t)
	// One request's allowance, refilled after hours: the first request passes,
	// every later one is over the limit.
	c.e = api.NewServer(api.Config{AdminToken: conformanceAdminToken, AllowPrivateNetworks: true, RateLimit: 0.0001},
		slog.New(slog.DiscardHandler), c.store, nil)
	c.ok(200, "GET", "/v1/payments", nil)

	n := 0
	for path, item := range c.doc.Paths.Map() {
		if !strings.HasPrefix(path, "/v1/") || strings.HasPrefix(path, "/v1/webhooks/") {
			continue // provider webhooks carry no API key
		}
		target := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllStringFunc(path, func(string) string { return uuid.NewString() })
		for method := range item.Operations() {
			res, _ := c.exchange(method, target, nil) // the answer is validated against the document
			require.Equal(t, http.StatusTooManyRequests, res.Code, "%s %s: %s", method, target, res.Body)
			require.NotEmpty(t, res.Header.Get("Retry-After"), "%s %s", method, target)
			require.Equal(t, "rate_limited", res.json(t)["error"].(map[string]any)["code"], "%s %s", method, target)
			n++
		}
	}
	require.Greater(t, n, 20, "every merchant operation was tried")
}
