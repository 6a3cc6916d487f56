package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/netguard"
)

// requireAdmin guards /admin. With no ADMIN_TOKEN every /admin route answers
// 404, as if it did not exist. Otherwise a request carries the token either
// as a bearer (scripts, curl) or as the password of HTTP basic auth, any
// user name (browsers: the River UI; a 401 makes them prompt for it).
//
// A browser replays basic credentials on its own, so unsafe requests that a
// browser marks as cross-origin (Sec-Fetch-Site, Origin) are refused: another
// site cannot make an operator's browser cancel jobs or create merchants.
func requireAdmin(token string) echo.MiddlewareFunc {
	crossOrigin := http.NewCrossOriginProtection()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if token == "" {
				return echo.ErrNotFound
			}
			req := c.Request()
			if !tokenEqual(adminTokenFrom(req), token) {
				c.Response().Header().Set("WWW-Authenticate", `Basic realm="BoohPay admin", charset="UTF-8"`)
				return &db.Error{Code: db.EUnauthorized,
					Message: "the admin token is required: Authorization: Bearer <ADMIN_TOKEN>, or basic auth with it as the password"}
			}
			if err := crossOrigin.Check(req); err != nil {
				return echo.NewHTTPError(http.StatusForbidden, "cross-origin request refused")
			}
			return next(c)
		}
	}
}

// adminTokenFrom returns the bearer token or basic-auth password, or "".
func adminTokenFrom(req *http.Request) string {
	if _, password, ok := req.BasicAuth(); ok {
		return password
	}
	scheme, token, ok := strings.Cut(req.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	return ""
}

type adminMerchantCreateRequest struct {
	Name       string  `json:"name"`
	WebhookURL *string `json:"webhook_url"`
}

// newMerchantBody is what `boohpay merchant create` prints: the API key and
// the webhook secret are shown here once.
type newMerchantBody struct {
	ID            uuid.UUID `json:"id"`
	Name          string    `json:"name"`
	APIKey        string    `json:"api_key"`
	WebhookURL    *string   `json:"webhook_url"`
	WebhookSecret *string   `json:"webhook_secret"`
}

const maxMerchantNameLen = 200 // merchants.name's CHECK

// handleAdminMerchantCreate creates a merchant with its first API key, and a
// signing secret when a webhook URL is given (checked like PUT
// /v1/webhook-endpoint: http(s), and no private address unless
// WEBHOOK_ALLOW_PRIVATE_NETWORKS).
func handleAdminMerchantCreate(store *db.Store, allowPrivateNetworks bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req adminMerchantCreateRequest
		if _, err := decodeJSON(c, &req); err != nil {
			return err
		}
		if strings.TrimSpace(req.Name) == "" {
			return invalidField("name", "name is required")
		}
		if err := checkText("name", &req.Name, maxMerchantNameLen); err != nil {
			return err
		}
		var webhookURL string
		if req.WebhookURL != nil {
			webhookURL = *req.WebhookURL
		}
		ctx := c.Request().Context()
		if webhookURL != "" {
			if err := netguard.CheckURL(ctx, webhookURL, allowPrivateNetworks); err != nil {
				return invalidField("webhook_url", "webhook_url: "+err.Error()+PrivateNetworksHint(err))
			}
		}
		nm, err := store.MerchantCreate(ctx, req.Name, webhookURL)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, newMerchantBody{
			ID: nm.Merchant.ID, Name: nm.Merchant.Name, APIKey: nm.APIKey,
			WebhookURL: nm.Merchant.WebhookURL, WebhookSecret: nm.Merchant.WebhookSecret,
		})
	}
}

// PrivateNetworksHint names the setting that lets a receiver on a private
// network in, for an operator whose URL the SSRF guard refused (the admin
// API, `boohpay merchant create`); "" for any other error.
func PrivateNetworksHint(err error) string {
	if errors.Is(err, netguard.ErrBlocked) {
		return " (for a receiver on this machine or a private network, set WEBHOOK_ALLOW_PRIVATE_NETWORKS=true; make run does)"
	}
	return ""
}

type overrideRequest struct {
	Status        string  `json:"status"`
	Reason        *string `json:"reason"`
	FailureReason *string `json:"failure_reason"`
}

func (r *overrideRequest) validate(statuses []string) error {
	if r.Reason == nil || strings.TrimSpace(*r.Reason) == "" {
		return invalidField("reason", "reason is required: say why the status is being changed by hand")
	}
	return firstErr(
		checkChoice("status", r.Status, statuses),
		checkText("reason", r.Reason, maxDescriptionLen),
		checkText("failure_reason", r.FailureReason, maxDescriptionLen),
	)
}

// decodeOverride reads an override request for the object in the path.
func decodeOverride(c echo.Context, statuses []string) (db.OverrideParams, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return db.OverrideParams{}, err
	}
	var req overrideRequest
	if _, err := decodeJSON(c, &req); err != nil {
		return db.OverrideParams{}, err
	}
	if err := req.validate(statuses); err != nil {
		return db.OverrideParams{}, err
	}
	return db.OverrideParams{
		ID:            id,
		Status:        req.Status,
		FailureReason: req.FailureReason,
		Reason:        strings.TrimSpace(*req.Reason),
		RequestID:     c.Response().Header().Get(echo.HeaderXRequestID),
	}, nil
}

// handleAdminPaymentStatus changes any merchant's payment status by hand,
// through the one transition path with the admin actor (the moves a
// provider may make) in one transaction, recording the operator's reason
// in admin_actions. It answers the payment. An illegal move answers 409
// invalid_transition; a move to the current status changes and records
// nothing.
func handleAdminPaymentStatus(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		params, err := decodeOverride(c, db.PaymentStatuses)
		if err != nil {
			return err
		}
		p, _, err := store.PaymentStatusOverride(c.Request().Context(), params)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, p)
	}
}

// handleAdminPayoutStatus is handleAdminPaymentStatus for payouts.
func handleAdminPayoutStatus(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		params, err := decodeOverride(c, db.PayoutStatuses)
		if err != nil {
			return err
		}
		p, _, err := store.PayoutStatusOverride(c.Request().Context(), params)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, p)
	}
}

// handleAdminReviewList lists every payment and payout whose review is
// set (the objects_in_review view), newest review first:
// ?object=payment|payout&limit=&starting_after=<id>.
func handleAdminReviewList(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		params, err := listParams(c, "object", db.Objects...)
		if err != nil {
			return err
		}
		items, hasMore, err := store.ReviewList(c.Request().Context(), db.ReviewListParams{
			Object: params.Filter, Limit: params.Limit, StartingAfter: params.StartingAfter,
		})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, newList(items, hasMore))
	}
}

type reviewResolveRequest struct {
	Note *string `json:"note"`
}

// handleAdminReviewResolve clears an object's review with the operator's
// note ({"note": "…"}, required), recorded in admin_actions with the review
// it closed. It answers the object; 409 when it is not in review.
func handleAdminReviewResolve(store *db.Store, object string) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		var req reviewResolveRequest
		if _, err := decodeJSON(c, &req); err != nil {
			return err
		}
		if req.Note == nil || strings.TrimSpace(*req.Note) == "" {
			return invalidField("note", "note is required: say what was done about the review")
		}
		if err := checkText("note", req.Note, maxDescriptionLen); err != nil {
			return err
		}
		obj, _, err := store.ReviewResolve(c.Request().Context(), db.ReviewResolveParams{
			Object: object, ID: id, Note: strings.TrimSpace(*req.Note),
			RequestID: c.Response().Header().Get(echo.HeaderXRequestID),
		})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, obj)
	}
}

// handleAdminWebhookFailureList lists the webhook_failures_recent view (FAILED
// in the last 7 days), most recently failed first:
// ?merchant_id=&limit=&starting_after=<delivery_id>.
func handleAdminWebhookFailureList(store *db.Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		params, err := listParams(c, "merchant_id")
		if err != nil {
			return err
		}
		var merchantID uuid.UUID
		if params.Filter != "" {
			if merchantID, err = uuid.Parse(params.Filter); err != nil {
				return invalidField("merchant_id", "merchant_id must be a merchant id")
			}
		}
		items, hasMore, err := store.WebhookFailureList(c.Request().Context(), db.WebhookFailureListParams{
			MerchantID: merchantID, Limit: params.Limit, StartingAfter: params.StartingAfter,
		})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, newList(items, hasMore))
	}
}
