package api

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
)

func handleDeliveryList(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		params, err := listParams(c, "status", db.DeliveryStatuses...)
		if err != nil {
			return err
		}
		for _, column := range []string{"endpoint_id", "event_id"} {
			if v := c.QueryParam(column); v != "" {
				id, err := uuid.Parse(v)
				if err != nil {
					return invalid(column, column+" must be an object id")
				}
				params.Where = append(params.Where, db.ListCond{Column: column, Value: id})
			}
		}
		items, hasMore, err := store.DeliveryList(c.Request().Context(), merchantOf(c).ID, params)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, newList(items, hasMore))
	}
}

func handleDeliveryGet(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		d, err := store.DeliveryGet(c.Request().Context(), merchantOf(c).ID, id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, d)
	}
}

// handleDeliveryRetry starts a fresh delivery cycle (all retries again) for
// a FAILED or SUCCEEDED delivery; one still PENDING or PROCESSING answers
// 409. It takes no body.
func handleDeliveryRetry(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		d, err := store.DeliveryRetry(c.Request().Context(), merchantOf(c).ID, id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, d)
	}
}
