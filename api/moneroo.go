package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/boohpay/boohpay/db"
)

// monerooTypes are Moneroo's event types. A cancelled payment was
// abandoned: not paid, and not final either (the customer may try again).
var monerooTypes = map[string]providerType{
	"payment.initiated": {db.ObjectPayment, db.ProviderActionRecord},
	"payment.success":   {db.ObjectPayment, db.ProviderActionSucceed},
	"payment.failed":    {db.ObjectPayment, db.ProviderActionFail},
	"payment.cancelled": {db.ObjectPayment, db.ProviderActionFail},
	"payout.initiated":  {db.ObjectPayout, db.ProviderActionProcess},
	"payout.success":    {db.ObjectPayout, db.ProviderActionSucceed},
	"payout.failed":     {db.ObjectPayout, db.ProviderActionFail},
}

// parseMoneroo verifies X-Moneroo-Signature and parses the event.
func parseMoneroo(secret string, r *http.Request, body []byte) (*db.ProviderEventInput, error) {
	if err := verifyMonerooSignature(r.Header.Get("X-Moneroo-Signature"), body, secret); err != nil {
		return nil, err
	}
	return parseMonerooEvent(body)
}

// verifyMonerooSignature checks X-Moneroo-Signature: the hex HMAC-SHA256 of
// the raw body keyed with the webhook secret, compared in constant time.
//
// Returns an EUnauthorized error.
func verifyMonerooSignature(header string, body []byte, secret string) error {
	header = strings.TrimSpace(header)
	if header == "" {
		return &db.Error{Code: db.EUnauthorized, Message: "X-Moneroo-Signature header is missing"}
	}
	sig, err := hex.DecodeString(header)
	if err != nil || !hmac.Equal(sig, hmacSHA256(secret, body)) {
		return &db.Error{Code: db.EUnauthorized, Message: "X-Moneroo-Signature does not match the body"}
	}
	return nil
}

// monerooEvent is Moneroo's {event, data}; unknown fields are fine.
type monerooEvent struct {
	Event string `json:"event"`
	Data  struct {
		ID       json.RawMessage `json:"id"`
		Amount   json.Number     `json:"amount"`
		Currency string          `json:"currency"`
		Status   string          `json:"status"`
		Metadata json.RawMessage `json:"metadata"`
	} `json:"data"`
}

// parseMonerooEvent reads a verified Moneroo event. Moneroo sends no event
// id, so the key is the object id and the event (payment.success of py_1);
// an event we do not map and that has no object id is keyed by its body's
// hash. The payment is named by data.metadata.boohpay_payment_id (a payout by
// boohpay_payout_id), else by data.id as provider_reference. Amounts are
// integers; Moneroo does not say in which unit (the same for XAF and XOF,
// which have no minor unit), so they are read as minor units: were they
// major units, a payment in a two-decimal currency would be refused as too
// little and reviewed, never accepted short. A success must have paid at
// least the payment's amount and say data.status "success".
//
// Returns an EInvalid error for a malformed body.
func parseMonerooEvent(body []byte) (*db.ProviderEventInput, error) {
	if err := checkStorable(body); err != nil {
		return nil, err
	}
	if err := checkJSONText(body); err != nil {
		return nil, err
	}
	var e monerooEvent
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, invalid("", "the request body is not a Moneroo event")
	}
	if err := checkKey("event", e.Event); err != nil {
		return nil, err
	}
	objectID := looseString(e.Data.ID)
	in := &db.ProviderEventInput{Type: e.Event}
	t, known := monerooTypes[e.Event]
	// The id becomes part of a key we index and store, for every event
	// type: a NUL in an unmapped event's id once reached Postgres as is.
	if known || objectID != "" {
		if err := checkKey("data.id", objectID); err != nil {
			return nil, err
		}
	} else {
		sum := sha256.Sum256(body)
		objectID = "sha256-" + hex.EncodeToString(sum[:])
	}
	in.Key = objectID + ":" + e.Event
	if len(in.Key) > maxProviderKeyLen {
		return nil, invalid("data.id", "data.id and event are too long")
	}
	if !known {
		return in, nil // recorded, ignored
	}
	in.Ref, in.Currency, in.Unit = objectID, storableText(e.Data.Currency), db.UnitMinor
	in.OurID = ourID(metadataValue(e.Data.Metadata, "boohpay_"+t.Object+"_id"))
	switch e.Event {
	case "payment.initiated":
		in.Detail = "nothing to change: payments start PENDING"
	case "payment.success":
		in.Amount, in.AtLeast = e.Data.Amount.String(), true
		if e.Data.Status != "success" {
			in.NotPaid = fmt.Sprintf("payment.success whose data.status is %q, not \"success\"", storableText(e.Data.Status))
		}
	case "payment.failed":
		reason := "failed"
		in.FailureReason = &reason
	case "payment.cancelled":
		reason := "abandoned"
		in.FailureReason = &reason
	case "payout.initiated", "payout.success", "payout.failed":
		in.Amount = e.Data.Amount.String()
	}
	return in, nil
}
