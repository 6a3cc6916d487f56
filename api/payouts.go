package api

import (
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
)

type payoutCreateRequest struct {
	Amount    *int64        `json:"amount"`
	Currency  string        `json:"currency"`
	Provider  string        `json:"provider"`
	Recipient *db.Recipient `json:"recipient"`
	Reference *string       `json:"reference"`
	// ProviderReference is the provider's id for the payout, when the
	// merchant started it there: its webhooks find the payout by it.
	ProviderReference *string `json:"provider_reference"`
}

func (r *payoutCreateRequest) validate() error {
	if err := firstErr(
		checkAmount(r.Amount),
		checkCurrency(r.Currency),
		checkChoice("provider", r.Provider, db.PayoutProviders),
		checkText("reference", r.Reference, maxReferenceLen),
		checkText("provider_reference", r.ProviderReference, maxReferenceLen),
	); err != nil {
		return err
	}
	if r.Recipient == nil || (r.Recipient.Phone == nil && r.Recipient.Account == nil) {
		return invalidField("recipient", "recipient needs a phone or an account")
	}
	return firstErr(
		checkText("recipient.phone", r.Recipient.Phone, 32),
		checkText("recipient.name", r.Recipient.Name, 200),
		checkText("recipient.account", r.Recipient.Account, 64),
	)
}

func handlePayoutCreate(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req payoutCreateRequest
		body, err := decodeJSON(c, &req)
		if err != nil {
			return err
		}
		if err := req.validate(); err != nil {
			return err
		}
		merchant := merchantOf(c)
		return createIdempotent(c, store, body, func(tx pgx.Tx) (any, error) {
			return store.PayoutCreateTx(c.Request().Context(), tx, db.PayoutCreateParams{
				MerchantID: merchant.ID,
				Amount:     *req.Amount,
				Currency:   req.Currency,
				Provider:   req.Provider,
				Recipient:  *req.Recipient,
				Reference:  req.Reference,

				ProviderReference: req.ProviderReference,
			})
		})
	}
}

func handlePayoutGet(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		p, err := store.PayoutGet(c.Request().Context(), merchantOf(c).ID, id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, p)
	}
}

func handlePayoutList(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		params, err := listParams(c, "status", db.PayoutStatuses...)
		if err != nil {
			return err
		}
		items, hasMore, err := store.PayoutList(c.Request().Context(), merchantOf(c).ID, params)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, newList(items, hasMore))
	}
}

// handlePayoutSimulate drives a sandbox payout through any legal transition.
func handlePayoutSimulate(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		params, err := decodeSimulate(c, db.PayoutStatuses, false)
		if err != nil {
			return err
		}
		ctx := c.Request().Context()
		current, err := store.PayoutGet(ctx, params.MerchantID, params.ID)
		if err != nil {
			return err
		}
		if current.Provider != db.ProviderSandbox {
			return &db.Error{Code: db.EConflict, Param: "provider",
				Message: "simulate works only on payouts with provider sandbox"}
		}
		p, _, err := store.PayoutTransition(ctx, params)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, p)
	}
}
