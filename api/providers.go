package api

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/metrics"
)

// providerEvent is one provider call, authenticated and parsed: which of our
// objects it concerns and what it asks of it. Each provider's file turns its
// wire format into this; applyProviderEvent does the rest the same way for all.
type providerEvent struct {
	Provider string // stripe, moneroo, ebilling: also the payment's gateway and the payout's provider
	Key      string // unique per provider event: what makes a replay a replay
	Type     string // the provider's event type, as sent
	Known    bool   // Type is one we map; metrics label any other "other"

	Object        string    // "payment" or "payout"; "" when the event concerns none of ours
	ID            uuid.UUID // our id, when the provider echoes it back (metadata, eBilling's reference)
	Ref           string    // the provider's id for the object, to find it when ID does not
	Status        string    // the status the event moves the object to; "" to record and ignore it
	FailureReason *string
	Ignored       string // why an event is ignored, for provider_events.detail
	Amount        string // eBilling: the amount paid, checked against the payment's; "" for no check

	Payload []byte
}

// providerParseFunc authenticates one provider call and parses its raw body.
// Authentication failures are EUnauthorized errors, malformed bodies EInvalid.
type providerParseFunc func(c echo.Context, body []byte) (*providerEvent, error)

// providerAnswer is the 200 body: the provider only needs the status code,
// an operator replaying a call by hand can read what it did.
type providerAnswer struct {
	Received bool   `json:"received"`
	Result   string `json:"result"`
}

// resultDuplicate is the answer's result for a replayed event; the others
// are provider_events results (db.ProviderEvent…).
const resultDuplicate = "duplicate"

// maxProviderKeyLen bounds ids we index; real ones are a few dozen characters.
const maxProviderKeyLen = 255

// handleProviderWebhook is the one shape of every provider route: refuse when
// its secret is not configured (never accept unsigned calls), read the raw
// body once (signatures are over its bytes), authenticate and parse it, apply
// it exactly once, then report the call in one place.
func handleProviderWebhook(provider, setting, secret string, parse providerParseFunc, store *db.Store, log *slog.Logger, m *metrics.Metrics) echo.HandlerFunc {
	return func(c echo.Context) error {
		var ev *providerEvent
		var result string
		err := func() error {
			if secret == "" {
				return &db.Error{Code: db.EUnavailable, Message: fmt.Sprintf(
					"%s webhooks are disabled: %s is not set", provider, setting)}
			}
			body, err := io.ReadAll(c.Request().Body)
			if err != nil {
				var he *echo.HTTPError
				if errors.As(err, &he) {
					return he // body limit
				}
				return invalid("", "could not read the request body")
			}
			if ev, err = parse(c, body); err != nil {
				return err
			}
			result, err = applyProviderEvent(c.Request().Context(), store, log, ev)
			return err
		}()
		typ, label := receivedLabels(ev, result, err)
		received(c, log, m, provider, typ, label)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, providerAnswer{Received: true, Result: result})
	}
}

// receivedLabels names a call for webhooks_received_total: its type (the
// provider's when we map it, "other" for the rest, "unknown" when the call
// was not parsed) and its result.
func receivedLabels(ev *providerEvent, result string, err error) (typ, label string) {
	switch {
	case ev == nil:
		typ = "unknown"
	case ev.Known:
		typ = ev.Type
	default:
		typ = "other"
	}
	switch {
	case db.ErrorCode(err) == db.EUnauthorized:
		label = "invalid_signature"
	case db.ErrorCode(err) == db.ENotFound:
		label = "unknown_payment"
	case err != nil:
		label = "error"
	case result == resultDuplicate:
		label = "duplicate"
	default:
		label = "ok"
	}
	return typ, label
}

// received reports one provider call, once, with the labels of
// webhooks_received_total{provider,type,result}.
func received(c echo.Context, log *slog.Logger, m *metrics.Metrics, provider, typ, result string) {
	m.WebhookReceived(provider, typ, result)
	level := slog.LevelInfo
	if result == "invalid_signature" || result == "error" {
		level = slog.LevelWarn
	}
	log.LogAttrs(c.Request().Context(), level, "provider webhook",
		slog.String("provider", provider), slog.String("type", typ), slog.String("result", result),
		slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)))
}

// applyProviderEvent applies ev exactly once. The object is looked up first
// (ids, gateways and amounts never change, and the transaction then needs no
// second connection); then one transaction records the event, which waits on
// the unique index for a concurrent duplicate and finds a replay, and makes
// the status change through the one transition path, so the record, the
// change, the merchant's event and its delivery job commit together.
//
// Returns the result recorded (or resultDuplicate), ErrNotFound when the
// object is not ours (nothing is recorded, so the provider's retry can apply
// it later), or an EValidation error when eBilling's amount is not the
// payment's (recorded, nothing changed).
func applyProviderEvent(ctx context.Context, store *db.Store, log *slog.Logger, ev *providerEvent) (string, error) {
	// The provider chose these; they go into a query and a text column.
	if len(ev.Ref) > maxProviderKeyLen || !isText(ev.Ref) {
		ev.Ref = ""
	}
	if r := ev.FailureReason; r != nil && !isText(*r) {
		clean := strings.ToValidUTF8(strings.ReplaceAll(*r, "\x00", ""), "\uFFFD")
		ev.FailureReason = &clean
	}
	var objectID uuid.UUID
	var amount int64
	switch ev.Object {
	case "payment":
		p, err := store.PaymentFindForProvider(ctx, ev.Provider, ev.ID, ev.Ref)
		if err != nil {
			return "", unknownObject(ev, err)
		}
		objectID, amount = p.ID, p.Amount
	case "payout":
		p, err := store.PayoutFindForProvider(ctx, ev.Provider, ev.ID, ev.Ref)
		if err != nil {
			return "", unknownObject(ev, err)
		}
		objectID = p.ID
	}

	var result string
	var detail *string
	err := store.InTx(ctx, func(tx pgx.Tx) error {
		id, created, err := store.ProviderEventCreateTx(ctx, tx, db.ProviderEventCreateParams{
			Provider: ev.Provider, EventKey: ev.Key, EventType: ev.Type,
			ObjectType: ev.Object, ObjectID: objectID, Payload: ev.Payload,
		})
		if err != nil {
			return err
		}
		if !created {
			result = resultDuplicate
			return nil
		}
		result, detail, err = applyStatus(ctx, store, tx, ev, objectID, amount)
		if err != nil {
			return err
		}
		return store.ProviderEventSetResultTx(ctx, tx, id, result, detail)
	})
	if err != nil {
		return "", err
	}
	switch result {
	case db.ProviderEventInvalidTransition:
		log.WarnContext(ctx, "provider event refused by the state machine; recorded, status unchanged",
			"provider", ev.Provider, "event_key", ev.Key, "type", ev.Type, ev.Object+"_id", objectID, "detail", *detail)
	case db.ProviderEventAmountMismatch:
		log.WarnContext(ctx, "provider amount does not match the payment's; recorded, payment unchanged",
			"provider", ev.Provider, "event_key", ev.Key, "payment_id", objectID, "detail", *detail)
		return result, invalidField("amount", "amount does not match the payment's amount; the payment is unchanged")
	}
	return result, nil
}

// applyStatus makes the status change ev asks for, in tx, and says what it did.
func applyStatus(ctx context.Context, store *db.Store, tx pgx.Tx, ev *providerEvent, objectID uuid.UUID, amount int64) (string, *string, error) {
	if ev.Object == "" || ev.Status == "" {
		why := cmp.Or(ev.Ignored, "event type not handled")
		return db.ProviderEventIgnored, &why, nil
	}
	if ev.Amount != "" && !amountMatches(ev.Amount, amount) {
		why := fmt.Sprintf("amount %s does not match the payment's %d", ev.Amount, amount)
		return db.ProviderEventAmountMismatch, &why, nil
	}
	params := db.TransitionParams{ID: objectID, Status: ev.Status, FailureReason: ev.FailureReason}
	var changed bool
	var err error
	var refused *db.Error
	if ev.Object == "payment" {
		_, changed, err = store.PaymentTransitionTx(ctx, tx, params)
	} else {
		_, changed, err = store.PayoutTransitionTx(ctx, tx, params)
	}
	switch {
	case errors.As(err, &refused) && refused.Code == db.EInvalidTransition:
		return db.ProviderEventInvalidTransition, &refused.Message, nil
	case err != nil:
		return "", nil, err
	case changed:
		return db.ProviderEventApplied, nil, nil
	}
	return db.ProviderEventUnchanged, nil, nil
}

func unknownObject(ev *providerEvent, err error) error {
	if !errors.Is(err, db.ErrNotFound) {
		return err
	}
	return &db.Error{Code: db.ENotFound, Message: fmt.Sprintf("no %s %s matches this event", ev.Provider, ev.Object)}
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

// amountMatches reports whether a decimal amount in major units (validated
// by parseDecimalAmount) equals want. Both sides are in the same unit only
// for zero-decimal currencies, the XAF eBilling bills in.
func amountMatches(amount string, want int64) bool {
	whole, frac, _ := strings.Cut(amount, ".")
	if strings.Trim(frac, "0") != "" {
		return false
	}
	n, err := strconv.ParseInt(whole, 10, 64)
	return err == nil && n == want
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
