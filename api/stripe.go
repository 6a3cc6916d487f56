package api

import (
	"cmp"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/metrics"
)

// stripeTolerance is how far a Stripe-Signature timestamp may be from our
// clock, either way: Stripe's own libraries allow 300 s.
const stripeTolerance = 300 * time.Second

// stripeEvents maps the Stripe event types we act on (SPEC §4).
var stripeEvents = map[string]string{
	"payment_intent.succeeded":                 db.PaymentSucceeded,
	"payment_intent.payment_failed":            db.PaymentFailed,
	"payment_intent.canceled":                  db.PaymentCancelled,
	"payment_intent.amount_capturable_updated": db.PaymentAuthorized,
	"charge.refunded":                          db.PaymentRefunded,
}

// handleStripeWebhook receives Stripe's events: POST /v1/webhooks/stripe.
func handleStripeWebhook(secret string, store *db.Store, log *slog.Logger, m *metrics.Metrics) echo.HandlerFunc {
	return handleProviderWebhook("stripe", "STRIPE_WEBHOOK_SECRET", secret, func(c echo.Context, body []byte) (*providerEvent, error) {
		if err := verifyStripeSignature(c.Request().Header.Get("Stripe-Signature"), body, secret, time.Now()); err != nil {
			return nil, err
		}
		return parseStripeEvent(body)
	}, store, log, m)
}

// verifyStripeSignature checks a Stripe-Signature header
// (t=<unix s>,v1=<hex>[,v1=<hex>…]) against body: some v1 must be the hex
// HMAC-SHA256 of "<t>.<body>" keyed with the endpoint secret as given (the
// whole whsec_… string, not decoded), and t within stripeTolerance of now.
// Several v1 appear while Stripe rolls a secret; v0 and unknown schemes are
// ignored. Compares are constant-time.
//
// Returns an EUnauthorized error saying what is wrong.
func verifyStripeSignature(header string, body []byte, secret string, now time.Time) error {
	if header == "" {
		return stripeUnauthorized("Stripe-Signature header is missing")
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			if ts != "" {
				return stripeUnauthorized("Stripe-Signature has more than one timestamp")
			}
			ts = v
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	// The timestamp is signed as sent; digits only, so the text signed and
	// the time checked cannot disagree.
	if ts == "" || len(ts) > 12 || !allDigits(ts) {
		return stripeUnauthorized("Stripe-Signature has no valid timestamp")
	}
	if len(sigs) == 0 {
		return stripeUnauthorized("Stripe-Signature has no v1 signature")
	}
	want := hmacSHA256(secret, []byte(ts), []byte("."), body)
	match := false
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			match = true
		}
	}
	if !match {
		return stripeUnauthorized("no Stripe-Signature v1 signature matches the body")
	}
	unix, _ := strconv.ParseInt(ts, 10, 64)
	if d := now.Sub(time.Unix(unix, 0)); d > stripeTolerance || d < -stripeTolerance {
		return stripeUnauthorized("Stripe-Signature timestamp is outside the 300 s tolerance")
	}
	return nil
}

func stripeUnauthorized(msg string) error {
	return &db.Error{Code: db.EUnauthorized, Message: msg}
}

// stripeEvent is the part of a Stripe event object we read; Stripe adds
// fields freely, so unknown ones are fine.
type stripeEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

// stripeObject is the part of a PaymentIntent or Charge we read.
type stripeObject struct {
	ID               string          `json:"id"`
	Metadata         json.RawMessage `json:"metadata"`
	PaymentIntent    json.RawMessage `json:"payment_intent"` // Charge: an id, or the intent when expanded
	Amount           int64           `json:"amount"`
	AmountRefunded   int64           `json:"amount_refunded"`
	Refunded         *bool           `json:"refunded"`
	LastPaymentError *struct {
		Code        string `json:"code"`
		DeclineCode string `json:"decline_code"`
		Message     string `json:"message"`
	} `json:"last_payment_error"`
}

// parseStripeEvent reads a verified Stripe event. The payment is named by
// data.object.metadata.boohpay_payment_id, else by the PaymentIntent id
// (for a Charge, its payment_intent) as provider_reference.
//
// Returns an EInvalid error for a malformed body.
func parseStripeEvent(body []byte) (*providerEvent, error) {
	if err := checkStorable(body); err != nil {
		return nil, err
	}
	if err := checkJSONText(body); err != nil {
		return nil, err
	}
	var e stripeEvent
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, invalid("", "the request body is not a Stripe event")
	}
	if err := checkKey("id", e.ID); err != nil {
		return nil, err
	}
	if err := checkKey("type", e.Type); err != nil {
		return nil, err
	}
	ev := &providerEvent{Provider: "stripe", Key: e.ID, Type: e.Type, Payload: body}
	status, ok := stripeEvents[e.Type]
	if !ok {
		return ev, nil // recorded, ignored
	}
	var obj stripeObject
	if err := json.Unmarshal(e.Data.Object, &obj); err != nil || obj.ID == "" {
		return nil, invalid("data.object", "data.object must be a Stripe object with an id")
	}
	ev.Known, ev.Object, ev.Status = true, "payment", status
	ev.ID = ourID(metadataValue(obj.Metadata, "boohpay_payment_id"))
	ev.Ref = obj.ID
	switch e.Type {
	case "charge.refunded":
		if pi := stripeID(obj.PaymentIntent); pi != "" {
			ev.Ref = pi
		}
		// charge.refunded also fires for partial refunds; REFUNDED means all of it.
		full := obj.Refunded != nil && *obj.Refunded ||
			obj.Refunded == nil && obj.Amount > 0 && obj.AmountRefunded >= obj.Amount
		if !full {
			ev.Status, ev.Ignored = "", "partial refund"
		}
	case "payment_intent.payment_failed":
		if pe := obj.LastPaymentError; pe != nil {
			if reason := cmp.Or(pe.Message, pe.DeclineCode, pe.Code); reason != "" {
				ev.FailureReason = &reason
			}
		}
	}
	return ev, nil
}

// stripeID reads an expandable field: an id string, or the object with its id.
func stripeID(raw json.RawMessage) string {
	var id string
	if json.Unmarshal(raw, &id) == nil {
		return id
	}
	var obj struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return obj.ID
	}
	return ""
}
