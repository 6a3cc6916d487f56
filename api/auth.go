package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
)

const merchantKey = "merchant"

var errUnauthorized = &db.Error{Code: db.EUnauthorized, Message: "a valid API key is required: Authorization: Bearer <key>"}

// requireMerchant resolves the API key (Authorization: Bearer, or X-API-Key)
// to its merchant; missing, unknown and revoked keys all answer 401 alike.
func requireMerchant(store *db.Store) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			key := apiKeyFrom(c)
			if key == "" {
				return errUnauthorized
			}
			m, err := store.MerchantGetByAPIKey(c.Request().Context(), key)
			if errors.Is(err, db.ErrNotFound) {
				return errUnauthorized
			}
			if err != nil {
				return err
			}
			c.Set(merchantKey, m)
			return next(c)
		}
	}
}

func apiKeyFrom(c echo.Context) string {
	if auth := c.Request().Header.Get("Authorization"); auth != "" {
		scheme, key, ok := strings.Cut(auth, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(key)
		}
		return ""
	}
	return strings.TrimSpace(c.Request().Header.Get("X-API-Key"))
}

// merchantOf returns the merchant requireMerchant resolved.
func merchantOf(c echo.Context) *db.Merchant {
	return c.Get(merchantKey).(*db.Merchant)
}

// requireToken guards an ops route with a static bearer token. With no
// token configured the route is open (a scraper on a private network).
func requireToken(token string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if token == "" {
				return next(c)
			}
			auth := c.Request().Header.Get("Authorization")
			given, ok := strings.CutPrefix(auth, "Bearer ")
			if !ok || !tokenEqual(given, token) {
				return echo.NewHTTPError(401, "a valid token is required: Authorization: Bearer <token>")
			}
			return next(c)
		}
	}
}

// tokenEqual compares a secret the client gave with ours in constant time
// without leaking its length: it compares the SHA-256 digests of both, which
// are always 32 bytes (subtle.ConstantTimeCompare returns at once on a
// length mismatch). An empty token never matches.
func tokenEqual(given, want string) bool {
	g, w := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(want))
	return given != "" && want != "" && subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
