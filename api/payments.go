package api

import (
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
		checkChoice("gateway", r.Gateway, gateways),
		checkText("reference", r.Reference, maxReferenceLen),
		checkText("description", r.Description, maxDescriptionLen),
		checkMetadata(r.Metadata),
		checkText("provider_reference", r.ProviderReference, maxReferenceLen),
	)
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

var paymentStatuses = []string{db.PaymentPending, db.PaymentAuthorized, db.PaymentSucceeded,
	db.PaymentFailed, db.PaymentCancelled, db.PaymentRefunded}

func handlePaymentList(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		params, err := listParams(c, "status", paymentStatuses...)
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

// handlePaymentCancel moves a PENDING or AUTHORIZED payment to CANCELLED.
// It takes no body.
func handlePaymentCancel(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		p, _, err := store.PaymentTransition(c.Request().Context(), db.TransitionParams{
			MerchantID: merchantOf(c).ID, ID: id, Status: db.PaymentCancelled,
		})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, p)
	}
}

type simulateRequest struct {
	Status        string  `json:"status"`
	FailureReason *string `json:"failure_reason"`
}

// decodeSimulate reads a simulate request ({status, failure_reason?}) for
// the object in the path, with status one of statuses.
func decodeSimulate(c echo.Context, statuses []string) (db.TransitionParams, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return db.TransitionParams{}, err
	}
	var req simulateRequest
	if _, err := decodeJSON(c, &req); err != nil {
		return db.TransitionParams{}, err
	}
	if err := firstErr(checkChoice("status", req.Status, statuses),
		checkText("failure_reason", req.FailureReason, maxDescriptionLen)); err != nil {
		return db.TransitionParams{}, err
	}
	return db.TransitionParams{MerchantID: merchantOf(c).ID, ID: id, Status: req.Status, FailureReason: req.FailureReason}, nil
}

// handlePaymentSimulate drives a sandbox payment through any legal
// transition, as a provider would.
func handlePaymentSimulate(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		params, err := decodeSimulate(c, paymentStatuses)
		if err != nil {
			return err
		}
		ctx := c.Request().Context()
		current, err := store.PaymentGet(ctx, params.MerchantID, params.ID)
		if err != nil {
			return err
		}
		if current.Gateway != "sandbox" { // the gateway never changes: no need to lock for this
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
