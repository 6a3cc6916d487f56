package api

import (
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
)

type paymentCreateRequest struct {
	Amount            *int64            `json:"amount"`
	Currency          string            `json:"currency"`
	Gateway           string            `json:"gateway"`
	Reference         *string           `json:"reference"`
	Description       *string           `json:"description"`
	Metadata          map[string]string `json:"metadata"`
	ProviderReference *string           `json:"provider_reference"`
}

func (r *paymentCreateRequest) validate() error {
	return firstErr(
		checkAmount(r.Amount),
		checkCurrency(r.Currency),
		checkChoice("gateway", r.Gateway, db.Gateways),
		checkGatewayCurrency(r.Gateway, r.Currency),
		checkText("reference", r.Reference, maxReferenceLen),
		checkText("description", r.Description, maxDescriptionLen),
		checkMetadata(r.Metadata),
		checkText("provider_reference", r.ProviderReference, maxReferenceLen),
	)
}

// checkGatewayCurrency: eBilling bills in XAF only.
func checkGatewayCurrency(gateway, currency string) error {
	if gateway == db.ProviderEBilling && currency != "XAF" {
		return invalidField("currency", "gateway ebilling takes XAF only")
	}
	return nil
}

func handlePaymentCreate(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req paymentCreateRequest
		body, err := decodeJSON(c, &req)
		if err != nil {
			return err
		}
		if err := req.validate(); err != nil {
			return err
		}
		merchant := merchantOf(c)
		return createIdempotent(c, store, body, func(tx pgx.Tx) (any, error) {
			return store.PaymentCreateTx(c.Request().Context(), tx, db.PaymentCreateParams{
				MerchantID:        merchant.ID,
				Amount:            *req.Amount,
				Currency:          req.Currency,
				Gateway:           req.Gateway,
				Reference:         req.Reference,
				Description:       req.Description,
				Metadata:          req.Metadata,
				ProviderReference: req.ProviderReference,
			})
		})
	}
}

func handlePaymentGet(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		p, err := store.PaymentGet(c.Request().Context(), merchantOf(c).ID, id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, p)
	}
}

func handlePaymentList(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		params, err := listParams(c, "status", db.PaymentStatuses...)
		if err != nil {
			return err
		}
		items, hasMore, err := store.PaymentList(c.Request().Context(), merchantOf(c).ID, params)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, newList(items, hasMore))
	}
}

// handlePaymentCancel moves a PENDING, AUTHORIZED or FAILED payment to
// CANCELLED: BoohPay stops tracking it (nothing is voided at the
// provider). It takes no body.
func handlePaymentCancel(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		p, _, err := store.PaymentTransition(c.Request().Context(), db.TransitionParams{
			MerchantID: merchantOf(c).ID, ID: id, Actor: db.ActorMerchant, Status: db.PaymentCancelled,
		})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, p)
	}
}

type simulateRequest struct {
	Status         string  `json:"status"`
	FailureReason  *string `json:"failure_reason"`
	AmountReceived *int64  `json:"amount_received"`
	AmountRefunded *int64  `json:"amount_refunded"`
}

// decodeSimulate reads a simulate request ({status, failure_reason?,
// amount_received?, amount_refunded?}) for the object in the path, with
// status one of statuses; the amounts only when allowAmounts.
func decodeSimulate(c echo.Context, statuses []string, allowAmounts bool) (db.TransitionParams, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return db.TransitionParams{}, err
	}
	var req simulateRequest
	if _, err := decodeJSON(c, &req); err != nil {
		return db.TransitionParams{}, err
	}
	if err := firstErr(checkChoice("status", req.Status, statuses),
		checkText("failure_reason", req.FailureReason, maxDescriptionLen),
		checkSimulateAmount("amount_received", req.AmountReceived, allowAmounts),
		checkSimulateAmount("amount_refunded", req.AmountRefunded, allowAmounts)); err != nil {
		return db.TransitionParams{}, err
	}
	return db.TransitionParams{MerchantID: merchantOf(c).ID, ID: id, Actor: db.ActorSandbox, Status: req.Status,
		FailureReason: req.FailureReason, AmountReceived: req.AmountReceived, AmountRefunded: req.AmountRefunded}, nil
}

func checkSimulateAmount(param string, v *int64, allowed bool) error {
	switch {
	case v == nil:
		return nil
	case !allowed:
		return invalidField(param, param+" applies to payments only")
	case *v < 0 || *v > maxAmount:
		return invalidField(param, fmt.Sprintf("%s must be between 0 and %d", param, int64(maxAmount)))
	}
	return nil
}

// handlePaymentSimulate drives a sandbox payment through any move a
// provider could make (amount_received with SUCCEEDED: a partial capture;
// amount_refunded: a partial or full refund).
func handlePaymentSimulate(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		params, err := decodeSimulate(c, db.PaymentStatuses, true)
		if err != nil {
			return err
		}
		ctx := c.Request().Context()
		current, err := store.PaymentGet(ctx, params.MerchantID, params.ID)
		if err != nil {
			return err
		}
		if current.Gateway != db.ProviderSandbox { // the gateway never changes: no need to lock for this
			return &db.Error{Code: db.EConflict, Param: "gateway",
				Message: "simulate works only on payments with gateway sandbox"}
		}
		p, _, err := store.PaymentTransition(ctx, params)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, p)
	}
}
