package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
)

// decodeJSON reads a request body into dst strictly: JSON content type
// (415 otherwise), valid UTF-8, one object, no unknown fields (400 naming
// the field: a typo in a payment request should not pass silently), no
// type mismatch (400 naming the field). It returns the raw body too, for
// idempotency hashing.
func decodeJSON(c echo.Context, dst any) ([]byte, error) {
	req := c.Request()
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" || req.ContentLength != 0 {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != echo.MIMEApplicationJSON {
			return nil, echo.NewHTTPError(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		}
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return nil, he // body limit
		}
		return nil, invalid("", "could not read the request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if !utf8.Valid(body) {
		return nil, invalid("", "the request body is not valid UTF-8")
	}
	// Unmarshal accepts null for a struct and leaves it untouched: a body
	// of null would pass as {}.
	if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
		return nil, invalid("", "the request body must be a JSON object")
	}
	// encoding/json/v2 semantics: member names match exactly (AMOUNT is
	// not amount), a name given twice, trailing data and invalid UTF-8
	// are errors, and unknown members are refused.
	if err := json.Unmarshal(body, dst, json.RejectUnknownMembers(true)); err != nil {
		return nil, jsonError(err, reflect.TypeOf(dst))
	}
	return body, nil
}

// jsonError turns a decoding error into a 400 naming the field at fault, as
// a dotted path of dst's fields (a map's keys are the client's: not named).
func jsonError(err error, dst reflect.Type) error {
	var semErr *json.SemanticError
	var synErr *jsontext.SyntacticError
	switch {
	case errors.As(err, &semErr):
		// Field names and map keys come from the client: clipped, so an
		// error never echoes a megabyte back.
		field := fieldPath(dst, semErr.JSONPointer)
		if !cleanText(field, "") {
			field = ""
		}
		field = clip(field)
		switch {
		case errors.Is(semErr.Err, json.ErrUnknownName):
			if field == "" {
				return invalid("", "unknown field")
			}
			return invalid(field, fmt.Sprintf("unknown field %q", field))
		case errors.Is(semErr.Err, jsontext.ErrDuplicateName):
			return invalid(field, "the request body names a member twice")
		case field == "" || semErr.GoType == nil:
			return invalid("", "the request body must be a JSON object")
		}
		return invalid(field, fmt.Sprintf("%s must be %s", field, jsonTypeName(semErr.GoType)))
	case errors.As(err, &synErr), errors.Is(err, io.ErrUnexpectedEOF):
		if errors.Is(err, jsontext.ErrDuplicateName) {
			return invalid("", "the request body names a member twice")
		}
		return invalid("", "the request body is not valid JSON")
	}
	return invalid("", "the request body is not valid JSON")
}

// fieldPath names where ptr points in a value of type t, as a path:
// "metadata.n", "recipient.phone", "enabled_events[1]". Struct members go by
// their JSON names; the path ends at the first name t does not have (an
// unknown field).
func fieldPath(t reflect.Type, ptr jsontext.Pointer) string {
	var b strings.Builder
	for tok := range ptr.Tokens() {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			b.WriteString("[" + tok + "]")
			t = t.Elem()
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
		switch {
		case t == nil:
		case t.Kind() == reflect.Map:
			t = t.Elem()
		case t.Kind() == reflect.Struct:
			f, ok := fieldByJSONName(t, tok)
			if !ok {
				return b.String()
			}
			t = f.Type
		default:
			t = nil
		}
	}
	return b.String()
}

func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// jsonTypeName names a Go type as JSON calls it, with its article.
func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch kind := t.Kind().String(); kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "a boolean"
	default:
		return "a " + kind
	}
}

// invalid is a 400 for a malformed request, naming the parameter at fault.
func invalid(param, msg string) error {
	return &db.Error{Code: db.EInvalid, Param: param, Message: msg}
}

// invalidField is a 422 for a well-formed request whose field value is not acceptable.
func invalidField(param, msg string) error {
	return &db.Error{Code: db.EValidation, Param: param, Message: msg}
}

// pathID parses a UUID path parameter. A malformed id is treated as unknown
// (404), the same answer as another merchant's id.
func pathID(c echo.Context, name string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil || len(c.Param(name)) != 36 {
		return uuid.Nil, db.ErrNotFound
	}
	return id, nil
}

// listParams reads ?limit=1..100 (default 10)&starting_after=<id> and the
// route's filter parameter (status or type), which must be one of allowed
// when that is given. A value out of its range is unacceptable, not
// malformed: 422, like a bad field of a JSON body.
func listParams(c echo.Context, filter string, allowed ...string) (db.ListParams, error) {
	p := db.ListParams{Limit: 10, Filter: c.QueryParam(filter)}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return p, invalidField("limit", "limit must be an integer from 1 to 100")
		}
		p.Limit = n
	}
	if v := c.QueryParam("starting_after"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return p, invalidField("starting_after", "starting_after must be an object id")
		}
		p.StartingAfter = &id
	}
	if len(p.Filter) > 64 {
		return p, invalidField(filter, filter+" is too long")
	}
	if p.Filter != "" && len(allowed) > 0 && !oneOf(p.Filter, allowed) {
		return p, invalidField(filter, filter+" must be one of "+strings.Join(allowed, ", "))
	}
	return p, nil
}

// listBody is the one list shape: {"object":"list","data":[…],"has_more":bool}.
type listBody[T any] struct {
	Object  string `json:"object"`
	Data    []T    `json:"data"`
	HasMore bool   `json:"has_more"`
}

func newList[T any](items []T, hasMore bool) listBody[T] {
	if items == nil {
		items = []T{}
	}
	return listBody[T]{Object: "list", Data: items, HasMore: hasMore}
}
