package api

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
)

// ebillingEventType names eBilling's one callback: it has no event types,
// its arrival means the bill was paid.
const ebillingEventType = "payment.paid"

var ebillingTypes = map[string]providerType{
	ebillingEventType: {db.ObjectPayment, db.ProviderActionSucceed},
}

// parseEBilling checks the callback token in ?token= and parses the form.
func parseEBilling(token string, r *http.Request, body []byte) (*db.ProviderEventInput, error) {
	if !tokenEqual(r.URL.Query().Get("token"), token) {
		return nil, &db.Error{Code: db.EUnauthorized, Message: "a valid ?token= is required"}
	}
	return parseEBillingCallback(r.Header.Get(echo.HeaderContentType), body)
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
func parseEBillingCallback(contentType string, body []byte) (*db.ProviderEventInput, error) {
	if err := checkStorable(body); err != nil {
		return nil, err
	}
	form, err := parseForm(contentType, body)
	if err != nil {
		return nil, err
	}
	in := &db.ProviderEventInput{Type: ebillingEventType}
	billingID := strings.TrimSpace(form.Get("billingid"))
	txn := strings.TrimSpace(form.Get("transactionid"))
	switch {
	case txn != "":
		in.Key = "transaction:" + txn
	case billingID != "":
		in.Key = "bill:" + billingID
	default:
		return nil, invalid("transactionid", "transactionid or billingid is required")
	}
	if err := checkKey("transactionid", in.Key); err != nil {
		return nil, err
	}
	amount, ok := parseDecimalAmount(form.Get("amount"))
	if !ok {
		return nil, invalid("amount", "amount must be a decimal number")
	}
	// eBilling bills in XAF, amounts in major units.
	in.Amount, in.Currency, in.Unit = amount, "XAF", db.UnitMajor
	in.OurID = ourID(strings.TrimSpace(form.Get("reference")))
	in.Ref, in.Money = billingID, in.Key
	switch state := strings.ToLower(strings.TrimSpace(form.Get("state"))); state {
	case "", "paid", "processed":
	default:
		in.Action, in.Detail = db.ProviderActionRecord, "state "+storableText(clip(state))+" is not paid"
	}
	return in, nil
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
