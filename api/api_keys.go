package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
)

const maxAPIKeyNameLen = 100 // api_keys.name's CHECK

type apiKeyCreateRequest struct {
	Name *string `json:"name"`
}

// decodeAPIKeyCreate reads {name?}; a blank name is no name.
func decodeAPIKeyCreate(c echo.Context) (*string, error) {
	// The answer holds the key in clear, which is never stored, so it cannot
	// be replayed: say so rather than silently make a second key on a retry.
	if c.Request().Header.Get("Idempotency-Key") != "" {
		return nil, invalid("Idempotency-Key", "Idempotency-Key is not accepted when creating an API key: the answer holds a key that is never stored, so it cannot be replayed")
	}
	var req apiKeyCreateRequest
	if _, err := decodeJSON(c, &req); err != nil {
		return nil, err
	}
	if req.Name != nil && strings.TrimSpace(*req.Name) == "" {
		req.Name = nil
	}
	if err := checkText("name", req.Name, maxAPIKeyNameLen); err != nil {
		return nil, err
	}
	return req.Name, nil
}

func handleAPIKeyList(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		params, err := listParams(c, "")
		if err != nil {
			return err
		}
		items, hasMore, err := store.APIKeyList(c.Request().Context(), merchantOf(c).ID, params)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, newList(items, hasMore))
	}
}

// handleAPIKeyCreate makes a key for the calling merchant and answers it in
// clear, the only time it is shown.
func handleAPIKeyCreate(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		name, err := decodeAPIKeyCreate(c)
		if err != nil {
			return err
		}
		k, err := store.APIKeyCreate(c.Request().Context(), merchantOf(c).ID, name)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, k)
	}
}

// handleAPIKeyRevoke revokes one of the merchant's keys, effective on the
// next request; the last active key answers 409.
func handleAPIKeyRevoke(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		k, err := store.APIKeyRevokeByID(c.Request().Context(), merchantOf(c).ID, id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, k)
	}
}

// handleAdminAPIKeyCreate issues a key to any merchant: the way back in for
// one that lost (or revoked, by SQL) all of its own.
func handleAdminAPIKeyCreate(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		merchantID, err := pathID(c, "id")
		if err != nil {
			return err
		}
		name, err := decodeAPIKeyCreate(c)
		if err != nil {
			return err
		}
		k, err := store.APIKeyCreate(c.Request().Context(), merchantID, name)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, k)
	}
}
