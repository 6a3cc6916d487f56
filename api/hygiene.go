package api

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// checkInput is the one hygiene rule at the edge, before any handler: every
// string a request carries in its path, query, headers or JSON body is valid
// UTF-8 without NUL or control characters (tab, CR and LF are text inside a
// JSON string value or, for tab, a header), and a JSON object names each
// member once, case-insensitively ({"amount":1,"AMOUNT":9} is two readings
// of one request). Anything else answers 400 in the error shape before it
// can reach a query, a log line or a text column.
func checkInput() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if !cleanText(req.URL.Path, "") {
				return invalid("", "the request path must be UTF-8 text without control characters")
			}
			query, err := url.ParseQuery(req.URL.RawQuery)
			if err != nil {
				return invalid("", "the query string is malformed")
			}
			for k, vs := range query {
				if !cleanText(k, "") {
					return invalid("", "query parameter names must be UTF-8 text without control characters")
				}
				for _, v := range vs {
					if !cleanText(v, "") {
						return invalid(k, k+" must be UTF-8 text without control characters")
					}
				}
			}
			for k, vs := range req.Header {
				for _, v := range vs {
					if !cleanText(v, "\t") {
						return invalid(k, "the "+k+" header must be UTF-8 text without control characters")
					}
				}
			}
			if isJSON(req.Header.Get(echo.HeaderContentType)) {
				body, err := io.ReadAll(req.Body)
				if err != nil {
					var he *echo.HTTPError
					if errors.As(err, &he) {
						return he // body limit
					}
					return invalid("", "could not read the request body")
				}
				req.Body = io.NopCloser(bytes.NewReader(body))
				if err := checkJSONText(body); err != nil {
					return err
				}
			}
			return next(c)
		}
	}
}

// isJSON reports whether a Content-Type names JSON (application/json or a
// +json type).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == echo.MIMEApplicationJSON || strings.HasSuffix(mt, "+json"))
}

// cleanText reports whether s is valid UTF-8 with no control character
// other than those in allowed.
func cleanText(s, allowed string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) && !strings.ContainsRune(allowed, r) {
			return false
		}
	}
	return true
}

// checkJSONText walks a JSON body (checkInput's, and a provider's, which is
// JSON whatever its Content-Type says) token by token (an empty body is left to
// the handler): syntax, UTF-8, each member named once regardless of case,
// and every name and string value clean text.
func checkJSONText(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if !utf8.Valid(body) {
		return invalid("", "the request body is not valid UTF-8")
	}
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	var names []map[string]bool // per open object or array: the object's folded member names
	for {
		kind := dec.PeekKind()
		// A string where the innermost object expects a name is a name.
		in, n := dec.StackIndex(dec.StackDepth())
		isName := kind == '"' && in == '{' && n%2 == 0
		tok, err := dec.ReadToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if errors.Is(err, jsontext.ErrDuplicateName) {
				return invalid("", "the request body names a member twice")
			}
			return invalid("", "the request body is not valid JSON")
		}
		switch kind {
		case '{':
			names = append(names, map[string]bool{})
		case '[':
			names = append(names, nil)
		case '}', ']':
			names = names[:len(names)-1]
		case '"':
			s := tok.String()
			if !isName {
				if !cleanText(s, "\t\n\r") {
					return invalid(paramAt(dec), "JSON strings must be UTF-8 text without NUL or control characters")
				}
				continue
			}
			if !cleanText(s, "") {
				return invalid("", "JSON member names must be UTF-8 text without control characters")
			}
			folded := foldName(s)
			if names[len(names)-1][folded] {
				return invalid(paramAt(dec), "the request body names a member twice (names are compared regardless of case)")
			}
			names[len(names)-1][folded] = true
		}
	}
}

// foldName maps a member name to one spelling per case-insensitive class:
// each rune becomes the smallest rune of its Unicode simple-folding orbit,
// so "ID" and "id", K and the Kelvin sign, s and ſ,
// which encoding/json v1 treats as one name, collide here too.
func foldName(s string) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, s)
}

// paramAt names where the decoder stands, for the error's param: the JSON
// pointer without its leading slash, clipped, or "" when a name in it is not
// clean text (an error must not echo what it refuses).
func paramAt(dec *jsontext.Decoder) string {
	p := strings.TrimPrefix(string(dec.StackPointer()), "/")
	if !cleanText(p, "") {
		return ""
	}
	return clip(p)
}

// maxRequestIDLen bounds a client's X-Request-Id; ours is a UUID.
const maxRequestIDLen = 64

// requestID gives every request an id, echoed in X-Request-Id and logged:
// the client's when it is a short token of safe characters (a proxy's or a
// caller's trace id), otherwise a new UUID. It replaces the client's in the
// request too, so that everything downstream reads the same id.
func requestID() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			given := c.Request().Header.Get(echo.HeaderXRequestID)
			id := given
			if !safeToken(id, maxRequestIDLen) {
				id = uuid.NewString()
			}
			c.Request().Header.Set(echo.HeaderXRequestID, id)
			c.Response().Header().Set(echo.HeaderXRequestID, id)
			if !cleanText(given, "\t") {
				// Replaced above, so checkInput no longer sees it: refused
				// here like any other header that is not text.
				return invalid(echo.HeaderXRequestID, "the X-Request-Id header must be UTF-8 text without control characters")
			}
			return next(c)
		}
	}
}

// safeToken reports whether s is 1 to max bytes of letters, digits and
// - _ . : only.
func safeToken(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_' || b == '.' || b == ':') {
			return false
		}
	}
	return true
}
