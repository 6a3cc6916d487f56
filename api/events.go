package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
)

func handleEventGet(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		e, err := store.EventGet(c.Request().Context(), merchantOf(c).ID, id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, e)
	}
}

func handleEventList(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		params, err := listParams(c, "type")
		if err != nil {
			return err
		}
		items, hasMore, err := store.EventList(c.Request().Context(), merchantOf(c).ID, params)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, newList(items, hasMore))
	}
}
