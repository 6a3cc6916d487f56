package api

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/metrics"
)

// ebillingEventType names eBilling's one callback: it has no event types,
// its arrival means the bill was paid.
const ebillingEventType = "payment.paid"

// handleEBillingCallback receives eBilling's payment callbacks:
// POST /v1/webhooks/ebilling?token=<EBILLING_CALLBACK_TOKEN>.
func handleEBillingCallback(token string, store *db.Store, log *slog.Logger, m *metrics.Metrics) echo.HandlerFunc {
	return handleProviderWebhook("ebilling", "EBILLING_CALLBACK_TOKEN", token, func(c echo.Context, body []byte) (*providerEvent, error) {
		if !tokenEqual(c.QueryParam("token"), token) {
			return nil, &db.Error{Code: db.EUnauthorized, Message: "a valid ?token= is required"}
		}
		return parseEBillingCallback(c.Request().Header.Get(echo.HeaderContentType), body)
	}, store, log, m)
}

// parseEBillingCallback reads eBilling's form callback (billingid,
// merchantid, customerid, transactionid, reference, payer_id, paymentsystem,
// amount, state, …), url-encoded or multipart, as form readers on the
// integrators' side accept both. Its arrival means paid: the payment named
// by reference (our payment id, given as the bill's external_reference),
// else by billingid as provider_reference, moves to SUCCEEDED when amount
// (major units of XAF) is the payment's. The key is transactionid, else
// billingid.
//
// Returns an EInvalid error for a malformed body, or a 415 for a body that
// is not a form.
func parseEBillingCallback(contentType string, body []byte) (*providerEvent, error) {
	if err := checkStorable(body); err != nil {
		return nil, err
	}
	form, err := parseForm(contentType, body)
	if err != nil {
		return nil, err
	}
	ev := &providerEvent{
		Provider: "ebilling", Type: ebillingEventType, Known: true, Payload: body,
		Object: "payment", Status: db.PaymentSucceeded,
	}
	billingID := strings.TrimSpace(form.Get("billingid"))
	switch txn := strings.TrimSpace(form.Get("transactionid")); {
	case txn != "":
		ev.Key = "transaction:" + txn
	case billingID != "":
		ev.Key = "bill:" + billingID
	default:
		return nil, invalid("transactionid", "transactionid or billingid is required")
	}
	if err := checkKey("transactionid", ev.Key); err != nil {
		return nil, err
	}
	amount, ok := parseDecimalAmount(form.Get("amount"))
	if !ok {
		return nil, invalid("amount", "amount must be a decimal number")
	}
	ev.Amount = amount
	ev.ID = ourID(strings.TrimSpace(form.Get("reference")))
	ev.Ref = billingID
	return ev, nil
}

// parseForm reads a url-encoded (the default when no type is given) or
// multipart form from body; file parts are skipped.
func parseForm(contentType string, body []byte) (url.Values, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if contentType == "" {
		mt, err = echo.MIMEApplicationForm, nil
	}
	if err != nil {
		return nil, echo.NewHTTPError(http.StatusUnsupportedMediaType, "Content-Type must be a form")
	}
	switch mt {
	case echo.MIMEApplicationForm:
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, invalid("", "the request body is not a valid url-encoded form")
		}
		return form, nil
	case echo.MIMEMultipartForm:
		if params["boundary"] == "" {
			return nil, invalid("", "the multipart form has no boundary")
		}
		form := url.Values{}
		r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			part, err := r.NextPart()
			if errors.Is(err, io.EOF) {
				return form, nil
			}
			if err != nil {
				return nil, invalid("", "the request body is not a valid multipart form")
			}
			name := part.FormName()
			if name == "" || part.FileName() != "" {
				continue
			}
			value, err := io.ReadAll(part)
			if err != nil {
				return nil, invalid("", "the request body is not a valid multipart form")
			}
			form.Add(name, string(value))
		}
	}
	return nil, echo.NewHTTPError(http.StatusUnsupportedMediaType, "Content-Type must be application/x-www-form-urlencoded or multipart/form-data")
}
