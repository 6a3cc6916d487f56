package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
)

const endpointDescriptionMax = 500

func handleEndpointList(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		items, err := store.EndpointList(c.Request().Context(), merchantOf(c).ID)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, newList(items, false))
	}
}

type endpointCreateRequest struct {
	URL           *string  `json:"url"`
	Description   *string  `json:"description"`
	EnabledEvents []string `json:"enabled_events"`
}

// handleEndpointCreate adds an endpoint and answers 201 with it and its
// secret, shown only then.
func handleEndpointCreate(store *db.Store, allowPrivateNetworks bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req endpointCreateRequest
		body, err := decodeJSON(c, &req)
		if err != nil {
			return err
		}
		if err := firstErr(checkEndpointURL(c, req.URL, allowPrivateNetworks),
			checkText("description", req.Description, endpointDescriptionMax)); err != nil {
			return err
		}
		if req.EnabledEvents != nil && len(req.EnabledEvents) == 0 {
			return invalidField("enabled_events", `enabled_events must not be empty: ["*"] for every event`)
		}
		p := db.EndpointParams{URL: *req.URL, Description: req.Description, EnabledEvents: req.EnabledEvents}
		merchantID := merchantOf(c).ID
		return createIdempotent(c, store, body, func(tx pgx.Tx) (any, error) {
			return store.EndpointCreateTx(c.Request().Context(), tx, merchantID, p)
		})
	}
}

func handleEndpointGet(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		e, err := store.EndpointGet(c.Request().Context(), merchantOf(c).ID, id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, e)
	}
}

// endpointPatchRequest tells "absent" from null for description (null
// clears it) with json.RawMessage.
type endpointPatchRequest struct {
	URL           *string         `json:"url"`
	Description   json.RawMessage `json:"description"`
	EnabledEvents []string        `json:"enabled_events"`
	Disabled      *bool           `json:"disabled"`
}

func handleEndpointPatch(store *db.Store, allowPrivateNetworks bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		var req endpointPatchRequest
		if _, err := decodeJSON(c, &req); err != nil {
			return err
		}
		u := db.EndpointUpdate{URL: req.URL, EnabledEvents: req.EnabledEvents, Disabled: req.Disabled}
		if req.URL != nil {
			if err := checkEndpointURL(c, req.URL, allowPrivateNetworks); err != nil {
				return err
			}
		}
		if req.Description != nil {
			var d *string
			if err := json.Unmarshal(req.Description, &d); err != nil {
				return invalid("description", "description must be a string or null")
			}
			if err := checkText("description", d, endpointDescriptionMax); err != nil {
				return err
			}
			if d == nil {
				d = new(string) // null clears it, as "" does
			}
			u.Description = d
		}
		if req.EnabledEvents != nil && len(req.EnabledEvents) == 0 {
			return invalidField("enabled_events", `enabled_events must not be empty: ["*"] for every event`)
		}
		e, err := store.EndpointPatch(c.Request().Context(), merchantOf(c).ID, id, u)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, e)
	}
}

// handleEndpointDelete answers like Stripe: {id, object, deleted: true}.
func handleEndpointDelete(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		if err := store.EndpointDelete(c.Request().Context(), merchantOf(c).ID, id); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"id": id, "object": "webhook_endpoint", "deleted": true})
	}
}

func handleEndpointRotateSecret(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		return rotateSecret(c, store, id)
	}
}

// rotateSecret gives an endpoint a new secret, shown once. The optional
// {"previous_secret_expires_in": seconds} (0..604800, default 86400) is how
// long the previous secret keeps signing.
func rotateSecret(c echo.Context, store *db.Store, id uuid.UUID) error {
	var req struct {
		ExpiresIn *int64 `json:"previous_secret_expires_in"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		return err
	}
	grace := db.SecretGraceDefault
	if req.ExpiresIn != nil {
		max := int64(db.SecretGraceMax / time.Second)
		if *req.ExpiresIn < 0 || *req.ExpiresIn > max {
			return invalidField("previous_secret_expires_in",
				fmt.Sprintf("previous_secret_expires_in must be from 0 to %d seconds", max))
		}
		grace = time.Duration(*req.ExpiresIn) * time.Second
	}
	e, err := store.EndpointRotateSecret(c.Request().Context(), merchantOf(c).ID, id, grace)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

func handleEndpointTest(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		return sendTest(c, store, id)
	}
}

// handleEndpointRecover replays to one endpoint every event of [since,
// until) (RFC 3339; until defaults to now) it never received.
func handleEndpointRecover(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		var req struct {
			Since *string `json:"since"`
			Until *string `json:"until"`
		}
		if _, err := decodeJSON(c, &req); err != nil {
			return err
		}
		if req.Since == nil {
			return invalidField("since", "since is required (RFC 3339)")
		}
		since, err := time.Parse(time.RFC3339Nano, *req.Since)
		if err != nil {
			return invalidField("since", "since must be an RFC 3339 time")
		}
		until := time.Now()
		if req.Until != nil {
			if until, err = time.Parse(time.RFC3339Nano, *req.Until); err != nil {
				return invalidField("until", "until must be an RFC 3339 time")
			}
		}
		if !since.Before(until) {
			return invalidField("since", "since must be before until")
		}
		r, err := store.EndpointRecover(c.Request().Context(), merchantOf(c).ID, id, since, until)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, struct {
			Object string `json:"object"`
			*db.Recovery
		}{"webhook_endpoint_recovery", r})
	}
}
