package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/metrics"
)

// monerooEvents maps Moneroo's event types to the object and status they
// concern; payment.initiated is recorded and ignored (ours start PENDING).
// A cancelled payment was abandoned: not paid.
var monerooEvents = map[string]struct{ object, status string }{
	"payment.initiated": {"payment", ""},
	"payment.success":   {"payment", db.PaymentSucceeded},
	"payment.failed":    {"payment", db.PaymentFailed},
	"payment.cancelled": {"payment", db.PaymentCancelled},
	"payout.initiated":  {"payout", db.PayoutProcessing},
	"payout.success":    {"payout", db.PayoutSucceeded},
	"payout.failed":     {"payout", db.PayoutFailed},
}

// handleMonerooWebhook receives Moneroo's events: POST /v1/webhooks/moneroo.
func handleMonerooWebhook(secret string, store *db.Store, log *slog.Logger, m *metrics.Metrics) echo.HandlerFunc {
	return handleProviderWebhook("moneroo", "MONEROO_WEBHOOK_SECRET", secret, func(c echo.Context, body []byte) (*providerEvent, error) {
		if err := verifyMonerooSignature(c.Request().Header.Get("X-Moneroo-Signature"), body, secret); err != nil {
			return nil, err
		}
		return parseMonerooEvent(body)
	}, store, log, m)
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
		Metadata json.RawMessage `json:"metadata"`
	} `json:"data"`
}

// parseMonerooEvent reads a verified Moneroo event. Moneroo sends no event
// id, so the key is the object id and the event (payment.success of py_1);
// an event we do not map and that has no object id is keyed by its body's
// hash. The payment is named by data.metadata.boohpay_payment_id (a payout by
// boohpay_payout_id), else by data.id as provider_reference.
//
// Returns an EInvalid error for a malformed body.
func parseMonerooEvent(body []byte) (*providerEvent, error) {
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
	ev := &providerEvent{Provider: "moneroo", Type: e.Event, Payload: body}
	m, known := monerooEvents[e.Event]
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
	ev.Key = objectID + ":" + e.Event
	if len(ev.Key) > maxProviderKeyLen {
		return nil, invalid("data.id", "data.id and event are too long")
	}
	if !known {
		return ev, nil // recorded, ignored
	}
	ev.Known, ev.Object, ev.Status, ev.Ref = true, m.object, m.status, objectID
	ev.ID = ourID(metadataValue(e.Data.Metadata, "boohpay_"+m.object+"_id"))
	if m.status == "" {
		ev.Ignored = "nothing to change: payments start PENDING"
	}
	return ev, nil
}
