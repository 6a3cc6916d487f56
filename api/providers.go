package api

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/metrics"
)

// inboundProvider is one provider that reports to us through a webhook:
// everything its route, the configuration and the metrics need. Adding a
// provider is its parser file and one entry in inboundProviders.
type inboundProvider struct {
	Name    string // the route /v1/webhooks/{Name}; payments' gateway and payouts' provider
	Setting string // the environment variable holding its secret
	Parse   providerParseFunc
	// Types are the event types it maps onto an action; any other type is
	// recorded, ignored, and counted as "other".
	Types map[string]providerType
}

// providerType is what one of a provider's event types concerns and asks.
type providerType struct {
	Object string // db.ObjectPayment or db.ObjectPayout
	Action string // a db.ProviderAction*; parsers may refine it from the object
}

// providerParseFunc authenticates one provider call with the provider's
// secret and parses its raw body. Authentication failures are
// EUnauthorized errors, malformed bodies EInvalid.
type providerParseFunc func(secret string, r *http.Request, body []byte) (*db.ProviderEventInput, error)

// inboundProviders is the one table of providers that call us.
var inboundProviders = []inboundProvider{
	{Name: db.ProviderStripe, Setting: "STRIPE_WEBHOOK_SECRET", Parse: parseStripe, Types: stripeTypes},
	{Name: db.ProviderMoneroo, Setting: "MONEROO_WEBHOOK_SECRET", Parse: parseMoneroo, Types: monerooTypes},
	{Name: db.ProviderEBilling, Setting: "EBILLING_CALLBACK_TOKEN", Parse: parseEBilling, Types: ebillingTypes},
}

// InboundProviderSetting names a provider's secret setting.
type InboundProviderSetting struct {
	Name    string // the provider
	Setting string // the environment variable
}

// InboundProviderSettings lists every inbound provider's secret setting,
// for the configuration to read into Config.ProviderSecrets.
func InboundProviderSettings() []InboundProviderSetting {
	out := make([]InboundProviderSetting, len(inboundProviders))
	for i, p := range inboundProviders {
		out[i] = InboundProviderSetting{p.Name, p.Setting}
	}
	return out
}

// registerProviderMetrics makes every provider's webhooks_received_total
// series exist from the first scrape.
func registerProviderMetrics(m *metrics.Metrics) {
	for _, p := range inboundProviders {
		types := make([]string, 0, len(p.Types))
		for t := range p.Types {
			types = append(types, t)
		}
		m.WebhookProvider(p.Name, types)
	}
}

// providerAnswer is the 200 body: the provider only needs the status code,
// an operator replaying a call by hand can read what it did.
type providerAnswer struct {
	Received bool   `json:"received"`
	Result   string `json:"result"`
}

// maxProviderKeyLen bounds ids we index; real ones are a few dozen characters.
const maxProviderKeyLen = 255

// handleProviderWebhook is the one shape of every provider route: refuse when
// its secret is not configured (never accept unsigned calls), read the raw
// body once (signatures are over its bytes), authenticate and parse it,
// apply it (db decides the outcome), then report the call in one place.
// Every authentic event answers 200, whatever its outcome: a provider
// retries anything else, and Stripe disables an endpoint that keeps failing.
func handleProviderWebhook(p inboundProvider, secret string, store *db.Store, log *slog.Logger, m *metrics.Metrics) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in *db.ProviderEventInput
		var res *db.ProviderEventResult
		err := func() error {
			if secret == "" {
				return &db.Error{Code: db.EUnavailable, Message: fmt.Sprintf(
					"%s webhooks are disabled: %s is not set", p.Name, p.Setting)}
			}
			body, err := io.ReadAll(c.Request().Body)
			if err != nil {
				var he *echo.HTTPError
				if errors.As(err, &he) {
					return he // body limit
				}
				return invalid("", "could not read the request body")
			}
			if in, err = p.Parse(secret, c.Request(), body); err != nil {
				return err
			}
			in.Provider, in.Payload = p.Name, body
			if t, ok := p.Types[in.Type]; ok {
				in.Object = t.Object
				in.Action = cmp.Or(in.Action, t.Action)
			} else {
				in.Object, in.Action = "", db.ProviderActionRecord
			}
			if len(in.Ref) > maxProviderKeyLen || !isText(in.Ref) {
				in.Ref = "" // the provider chose it; it goes into an index
			}
			res, err = store.ProviderEventApply(c.Request().Context(), in)
			return err
		}()
		typ := "unknown"
		if in != nil {
			typ = in.Type
			if _, ok := p.Types[typ]; !ok {
				typ = "other"
			}
		}
		result := receivedResult(res, err)
		received(c, log, m, p.Name, typ, result, res)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, providerAnswer{Received: true, Result: res.Outcome})
	}
}

// receivedResult names a call for webhooks_received_total{result}: the
// outcome db decided, or why there was none.
func receivedResult(res *db.ProviderEventResult, err error) string {
	switch {
	case db.ErrorCode(err) == db.EUnauthorized:
		return metrics.ReceivedInvalidSignature
	case err != nil:
		return metrics.ReceivedError
	}
	return res.Outcome
}

// received reports one provider call, once, in the metrics and the log;
// outcomes a human must look at are warnings.
func received(c echo.Context, log *slog.Logger, m *metrics.Metrics, provider, typ, result string, res *db.ProviderEventResult) {
	m.WebhookReceived(provider, typ, result)
	level := slog.LevelInfo
	switch result {
	case metrics.ReceivedInvalidSignature, metrics.ReceivedError, db.OutcomeAmountMismatch, db.OutcomeDuplicatePayment,
		db.OutcomeConflict:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{slog.String("provider", provider), slog.String("type", typ), slog.String("result", result),
		slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID))}
	if res != nil {
		if res.ObjectID != uuid.Nil {
			attrs = append(attrs, slog.String(res.Object+"_id", res.ObjectID.String()))
		}
		if res.Detail != "" {
			attrs = append(attrs, slog.String("detail", res.Detail))
		}
	}
	log.LogAttrs(c.Request().Context(), level, "provider webhook", attrs...)
}

// isText reports whether Postgres text can keep s as is: valid UTF-8, no NUL.
func isText[T string | []byte](s T) bool {
	return utf8.Valid([]byte(s)) && !strings.ContainsRune(string(s), 0)
}

// checkStorable refuses a body Postgres text cannot keep as is.
func checkStorable(body []byte) error {
	if !isText(body) {
		return invalid("", "the request body is not valid UTF-8 text")
	}
	return nil
}

// checkKey refuses an event id or type that is missing, too long to index or
// not text.
func checkKey(param, v string) error {
	switch {
	case v == "":
		return invalid(param, param+" is required")
	case len(v) > maxProviderKeyLen:
		return invalid(param, fmt.Sprintf("%s is longer than %d characters", param, maxProviderKeyLen))
	case !isText(v):
		return invalid(param, param+" is not valid UTF-8 text")
	}
	return nil
}

// storableText keeps provider-chosen text storable: valid UTF-8, no NUL.
func storableText(s string) string {
	if isText(s) {
		return s
	}
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}

// hmacSHA256 is HMAC-SHA256(key, parts...), the scheme Stripe and Moneroo sign with.
func hmacSHA256(key string, parts ...[]byte) []byte {
	mac := hmac.New(sha256.New, []byte(key))
	for _, p := range parts {
		mac.Write(p)
	}
	return mac.Sum(nil)
}

// ourID reads our id echoed back by a provider; anything but a canonical
// UUID is no id (the lookup falls back to the provider's reference).
func ourID(s string) uuid.UUID {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil
	}
	return id
}

// metadataValue reads key from a provider's metadata object. Values should
// be strings; a number is taken as its text, anything else (or metadata that
// is not an object, like PHP's empty []) as absent.
func metadataValue(raw json.RawMessage, key string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	return looseString(m[key])
}

// looseString reads a JSON string or number as text; "" for anything else.
func looseString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// parseDecimalAmount validates a non-negative decimal amount ("5000",
// "5000.00") and returns it trimmed.
func parseDecimalAmount(s string) (string, bool) {
	s = strings.TrimSpace(s)
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || len(whole) > 18 || !allDigits(whole) || (hasFrac && (frac == "" || len(frac) > 18 || !allDigits(frac))) {
		return "", false
	}
	return s, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
