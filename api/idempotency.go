package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
)

const maxIdempotencyKeyLen = 255

// createFunc does a create's work inside the request's transaction and
// returns the object to answer with.
type createFunc func(tx pgx.Tx) (any, error)

// createIdempotent runs create in one transaction and answers 201. With an
// Idempotency-Key header, the key's claim, the created objects and the
// stored response commit together: the same key and request replay the
// first response (Idempotent-Replayed: true), another request or a
// concurrent duplicate answer 409, and no second object is ever made.
// Requests are compared as parsed JSON, so a client that re-encodes the same
// request (keys in another order, other spacing) gets the replay.
func createIdempotent(c echo.Context, store *db.Store, body []byte, create createFunc) error {
	ctx := c.Request().Context()
	merchant := merchantOf(c)
	key := c.Request().Header.Get("Idempotency-Key")
	if utf8.RuneCountInString(key) > maxIdempotencyKeyLen { // characters, not bytes
		return invalid("Idempotency-Key", "Idempotency-Key must be at most 255 characters")
	}
	// Stored as Postgres text: invalid UTF-8 or a NUL would fail the
	// insert (a 500), and no client means a control character.
	if !printable(key) {
		return invalid("Idempotency-Key", "Idempotency-Key must be printable UTF-8 text")
	}
	method, path := c.Request().Method, c.Path()
	canonical, err := canonicalJSON(body)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(canonical)
	hash := sum[:]

	var replay *db.IdempotentResponse
	var out []byte
	err = store.InTx(ctx, func(tx pgx.Tx) error {
		if key != "" {
			var err error
			replay, err = store.IdempotencyKeyBeginTx(ctx, tx, merchant.ID, key, method, path, hash)
			if err != nil || replay != nil {
				return err
			}
		}
		obj, err := create(tx)
		if err != nil {
			return err
		}
		if out, err = json.Marshal(obj); err != nil {
			return err
		}
		if key == "" {
			return nil
		}
		return store.IdempotencyKeySaveTx(ctx, tx, merchant.ID, key, method, path, hash,
			db.IdempotentResponse{StatusCode: http.StatusCreated, Body: out})
	})
	if err != nil {
		return err
	}
	if replay != nil {
		c.Response().Header().Set("Idempotent-Replayed", "true")
		return c.JSONBlob(replay.StatusCode, replay.Body)
	}
	return c.JSONBlob(http.StatusCreated, out)
}

// canonicalJSON re-encodes a decoded JSON body in one spelling: object keys
// sorted, no insignificant space, numbers as written (5000 and 5e3 stay
// different, as the request decoder reads them differently too).
func canonicalJSON(body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, invalid("", "the request body is not valid JSON")
	}
	return json.Marshal(v) // maps marshal with sorted keys
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
