package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"
)

// rateLimitPerKey limits each API key to perSecond requests a second, with a
// burst of twice that, in this process (Echo's token-bucket store, one
// golang.org/x/time/rate limiter per key, forgotten after 3 idle minutes).
// It runs after the key is resolved, so only real keys take memory. Over
// the limit: 429 rate_limited with Retry-After, in whole seconds, until the
// next request is allowed. perSecond <= 0 limits nothing.
func rateLimitPerKey(perSecond float64) echo.MiddlewareFunc {
	if perSecond <= 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	burst := max(1, int(math.Ceil(2*perSecond)))
	retryAfter := strconv.Itoa(max(1, int(math.Ceil(1/perSecond))))
	msg := fmt.Sprintf("too many requests: this API key may make %s requests a second", strconv.FormatFloat(perSecond, 'f', -1, 64))
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store: middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
			Rate: rate.Limit(perSecond), Burst: burst, ExpiresIn: 3 * time.Minute,
		}),
		// The key's hash: the store need not hold secrets.
		IdentifierExtractor: func(c echo.Context) (string, error) {
			sum := sha256.Sum256([]byte(apiKeyFrom(c)))
			return hex.EncodeToString(sum[:]), nil
		},
		DenyHandler: func(c echo.Context, _ string, _ error) error {
			c.Response().Header().Set("Retry-After", retryAfter)
			return echo.NewHTTPError(http.StatusTooManyRequests, msg)
		},
	})
}
