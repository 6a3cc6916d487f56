package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
)

func handleHealthz() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	}
}

// handleReadyz answers 200 only when the database answers and its schema is
// the one this binary embeds, clean. It waits on the database no longer than
// any request does (DATABASE_TIMEOUT, set by boundDatabaseWait): one knob.
func handleReadyz(store *db.Store) echo.HandlerFunc {
	want := db.LatestVersion()
	return func(c echo.Context) error {
		version, dirty, err := store.SchemaVersion(c.Request().Context())
		if err != nil {
			return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "reason": "database unreachable"})
		}
		if dirty || version != want {
			return c.JSON(http.StatusServiceUnavailable, map[string]any{
				"status": "unavailable", "reason": "schema not current", "schema_version": version, "want_version": want, "dirty": dirty,
			})
		}
		return c.JSON(http.StatusOK, map[string]any{"status": "ok", "schema_version": version})
	}
}
