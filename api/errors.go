package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
)

// errorBody is the one error shape every route answers with.
type errorBody struct {
	Error errorDetail `json:"error"`
}

// errorDetail always carries type, code and message; param is there only
// when one parameter is at fault (absent, not null: clients typed from the
// OpenAPI document read it as a string).
type errorDetail struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
}

// statusOf is the one map from domain error code to HTTP status and error type.
var statusOf = map[string]struct {
	status int
	typ    string
}{
	db.ENotFound:               {http.StatusNotFound, "invalid_request_error"},
	db.EInvalid:                {http.StatusBadRequest, "invalid_request_error"},
	db.EValidation:             {http.StatusUnprocessableEntity, "invalid_request_error"},
	db.EConflict:               {http.StatusConflict, "invalid_request_error"},
	db.EInvalidTransition:      {http.StatusConflict, "invalid_request_error"},
	db.EProviderReferenceTaken: {http.StatusConflict, "invalid_request_error"},
	db.EIdempotency:            {http.StatusConflict, "idempotency_error"},
	db.EUnauthorized:           {http.StatusUnauthorized, "authentication_error"},
	db.EUnavailable:            {http.StatusServiceUnavailable, "api_error"},
}

// retryAfterSeconds is the Retry-After of every 503: a restart, a failover
// or a freed connection usually takes a second or two.
const retryAfterSeconds = "2"

// statusClientClosedRequest is nginx's status for a request whose client
// closed the connection before the answer.
const statusClientClosedRequest = 499

// httpCodes names echo's own errors (routing, body limit) in the same shape.
var httpCodes = map[int]string{
	http.StatusNotFound:              "resource_missing",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusRequestEntityTooLarge: "body_too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusTooManyRequests:       "rate_limited",
	http.StatusBadRequest:            "invalid_request",
}

// newErrorHandler writes every error as errorBody. Anything that is neither a
// domain error nor an echo.HTTPError is an internal error: logged in full,
// shown as "internal error".
func newErrorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, body := errorResponse(err)
		switch {
		case body.Error.Code == db.EUnavailable:
			// The database cannot serve now: worth a warning, not an
			// error page for every request while it lasts.
			log.WarnContext(c.Request().Context(), "request answered 503",
				"error", err, "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
				"method", c.Request().Method, "route", c.Path())
		case status >= 500:
			log.ErrorContext(c.Request().Context(), "request failed",
				"error", err, "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
				"method", c.Request().Method, "route", c.Path())
		}
		if body.Error.Code == db.EUnavailable {
			c.Response().Header().Set("Retry-After", retryAfterSeconds)
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status)
			return
		}
		_ = c.JSON(status, body)
	}
}

func errorResponse(err error) (int, errorBody) {
	var de *db.Error
	if errors.As(err, &de) {
		if s, ok := statusOf[de.Code]; ok {
			code := de.Code
			if code == db.ENotFound {
				code = "resource_missing"
			}
			return s.status, errorBody{errorDetail{Type: s.typ, Code: code, Message: de.Message, Param: de.Param}}
		}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) && he.Code < 500 {
		code, ok := httpCodes[he.Code]
		if !ok {
			code = "invalid_request"
		}
		typ := "invalid_request_error"
		if he.Code == http.StatusUnauthorized {
			typ = "authentication_error"
		}
		return he.Code, errorBody{errorDetail{Type: typ, Code: code, Message: messageOf(he)}}
	}
	if errors.Is(err, context.Canceled) {
		// The client went away mid-request (Go cancels a request's context
		// when its connection closes): not a server error, and not worth
		// an error log or a 5xx in the metrics; nobody reads this answer.
		return statusClientClosedRequest, errorBody{errorDetail{Type: "invalid_request_error", Code: "client_closed_request",
			Message: "the client closed the request"}}
	}
	if db.Unavailable(err) {
		return http.StatusServiceUnavailable, errorBody{errorDetail{Type: "api_error", Code: db.EUnavailable,
			Message: "the service is temporarily unavailable; retry later"}}
	}
	return http.StatusInternalServerError, errorBody{errorDetail{Type: "api_error", Code: "internal_error", Message: "internal error"}}
}

// echoMessages word Echo's own errors, which carry only a status text.
var echoMessages = map[int]string{
	http.StatusNotFound:              "no such route",
	http.StatusRequestEntityTooLarge: "the request body is larger than " + maxBodyBytes,
}

func messageOf(he *echo.HTTPError) string {
	if s, ok := he.Message.(string); ok && s != http.StatusText(he.Code) {
		return s
	}
	if s, ok := echoMessages[he.Code]; ok {
		return s
	}
	return http.StatusText(he.Code)
}
