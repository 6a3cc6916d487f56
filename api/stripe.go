package api

import (
	"cmp"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/boohpay/boohpay/db"
)

// stripeTolerance is how far a Stripe-Signature timestamp may be from our
// clock, either way: Stripe's own libraries allow 300 s.
const stripeTolerance = 300 * time.Second

// stripeTypes are the Stripe event types we map.
var stripeTypes = map[string]providerType{
	"payment_intent.succeeded":                 {db.ObjectPayment, db.ProviderActionSucceed},
	"payment_intent.payment_failed":            {db.ObjectPayment, db.ProviderActionFail}, // not terminal: a retry may succeed
	"payment_intent.canceled":                  {db.ObjectPayment, db.ProviderActionCancel},
	"payment_intent.amount_capturable_updated": {db.ObjectPayment, db.ProviderActionAuthorize},
	"payment_intent.processing":                {db.ObjectPayment, db.ProviderActionRecord},
	"payment_intent.requires_action":           {db.ObjectPayment, db.ProviderActionRecord},
	"payment_intent.created":                   {db.ObjectPayment, db.ProviderActionRecord},
	"charge.refunded":                          {db.ObjectPayment, db.ProviderActionRefund}, // captured:false: released
	"charge.refund.updated":                    {db.ObjectPayment, db.ProviderActionRecord}, // status failed: undone
	"charge.dispute.created":                   {db.ObjectPayment, db.ProviderActionDisputeOpen},
	"charge.dispute.closed":                    {db.ObjectPayment, db.ProviderActionDisputeClosed},
	"payout.paid":                              {db.ObjectPayout, db.ProviderActionSucceed},
	"payout.failed":                            {db.ObjectPayout, db.ProviderActionFail},
	"payout.canceled":                          {db.ObjectPayout, db.ProviderActionFail},
}

// parseStripe verifies Stripe-Signature and parses the event.
func parseStripe(secret string, r *http.Request, body []byte) (*db.ProviderEventInput, error) {
	if err := verifyStripeSignature(r.Header.Get("Stripe-Signature"), body, secret, time.Now()); err != nil {
		return nil, err
	}
	return parseStripeEvent(body)
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

// stripeObject is the part of a PaymentIntent, Charge, Refund, Dispute or
// Payout we read.
type stripeObject struct {
	ID               string          `json:"id"`
	Object           string          `json:"object"`
	Metadata         json.RawMessage `json:"metadata"`
	PaymentIntent    json.RawMessage `json:"payment_intent"` // Charge, Refund, Dispute: an id, or the intent when expanded
	Currency         string          `json:"currency"`
	Status           string          `json:"status"`
	Amount           *int64          `json:"amount"`
	AmountCapturable *int64          `json:"amount_capturable"`
	AmountReceived   *int64          `json:"amount_received"`
	AmountCaptured   *int64          `json:"amount_captured"`
	AmountRefunded   *int64          `json:"amount_refunded"`
	Captured         *bool           `json:"captured"`
	FailureCode      string          `json:"failure_code"`
	FailureMessage   string          `json:"failure_message"`
	LastPaymentError *struct {
		Code        string `json:"code"`
		DeclineCode string `json:"decline_code"`
		Message     string `json:"message"`
	} `json:"last_payment_error"`
}

// parseStripeEvent reads a verified Stripe event. The object is named by
// data.object.metadata.boohpay_payment_id (boohpay_payout_id for payouts),
// else by its id as provider_reference: the PaymentIntent's for
// PaymentIntent, Charge, Refund and Dispute events (those are filed under
// their payment_intent), the Payout's for payouts. Amounts are in Stripe's
// minor units, currencies lower case.
//
// Returns an EInvalid error for a malformed body.
func parseStripeEvent(body []byte) (*db.ProviderEventInput, error) {
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
	in := &db.ProviderEventInput{Key: e.ID, Type: e.Type}
	t, ok := stripeTypes[e.Type]
	if !ok {
		return in, nil // recorded, ignored
	}
	var obj stripeObject
	if err := json.Unmarshal(e.Data.Object, &obj); err != nil || obj.ID == "" {
		return nil, invalid("data.object", "data.object must be a Stripe object with an id")
	}
	in.Ref, in.Currency, in.Unit = obj.ID, obj.Currency, db.UnitMinor
	in.OurID = ourID(metadataValue(obj.Metadata, "boohpay_"+t.Object+"_id"))
	if pi := stripeID(obj.PaymentIntent); pi != "" && obj.Object != "payment_intent" {
		in.Ref = pi
	}
	switch e.Type {
	case "payment_intent.succeeded":
		in.Amount, in.AmountReceived = amountText(obj.Amount), amountText(obj.AmountReceived)
	case "payment_intent.amount_capturable_updated":
		in.Amount, in.AmountCapturable = amountText(obj.Amount), amountText(obj.AmountCapturable)
	case "payment_intent.payment_failed":
		in.Amount = amountText(obj.Amount)
		if pe := obj.LastPaymentError; pe != nil {
			if reason := cmp.Or(pe.Message, pe.DeclineCode, pe.Code); reason != "" {
				reason = storableText(reason)
				in.FailureReason = &reason
			}
		}
	case "payment_intent.canceled":
		in.Amount = amountText(obj.Amount)
	case "charge.refunded":
		in.Amount = amountText(obj.Amount)
		if obj.Captured != nil && !*obj.Captured {
			in.Action = db.ProviderActionCancel // an uncaptured authorization released
			break
		}
		in.AmountReceived, in.AmountRefunded = amountText(obj.AmountCaptured), amountText(obj.AmountRefunded)
	case "charge.refund.updated":
		if obj.Status == "failed" {
			in.Action, in.RefundAmount = db.ProviderActionRefundFailed, amountText(obj.Amount)
		} else {
			in.Detail = "refund status " + storableText(obj.Status)
		}
	case "charge.dispute.created", "charge.dispute.closed":
		in.DisputeStatus = storableText(obj.Status)
	case "payout.paid":
		in.Amount = amountText(obj.Amount)
	case "payout.failed", "payout.canceled":
		in.Amount = amountText(obj.Amount)
		reason := cmp.Or(obj.FailureMessage, obj.FailureCode, strings.TrimPrefix(e.Type, "payout."))
		reason = storableText(reason)
		in.FailureReason = &reason
	}
	in.Currency = storableText(in.Currency)
	return in, nil
}

// amountText is a Stripe amount as text; "" when absent.
func amountText(n *int64) string {
	if n == nil {
		return ""
	}
	return strconv.FormatInt(*n, 10)
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
