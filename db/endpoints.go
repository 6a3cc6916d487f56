package db

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/boohpay/boohpay/signing"
)

// Endpoint statuses and the reasons a disabled endpoint gives.
const (
	EndpointEnabled  = "enabled"
	EndpointDisabled = "disabled"

	DisabledByMerchant = "merchant" // PATCH {"disabled": true}
	DisabledFailing    = "failing"  // every attempt failed for WEBHOOK_DISABLE_AFTER
)

const (
	// EndpointMax is how many endpoints a merchant may have, the default one included.
	EndpointMax = 16
	// AllEvents is the enabled_events entry that matches every event type.
	AllEvents = "*"
	// SecretGraceDefault is how long a rotated-out secret keeps signing
	// when the merchant does not say.
	SecretGraceDefault = 24 * time.Hour
	// SecretGraceMax bounds previous_secret_expires_in.
	SecretGraceMax = 7 * 24 * time.Hour
	// RecoverMax bounds the events one recover call may replay.
	RecoverMax = 10000

	// Errors that end a delivery without an attempt.
	errEndpointDisabled = "endpoint disabled"
	errEndpointDeleted  = "endpoint deleted"
)

// Endpoint is one of a merchant's webhook endpoints. The default one is
// the old single URL: merchants.webhook_url / webhook_secret mirror it.
type Endpoint struct {
	ID                      uuid.UUID  `db:"id"`
	MerchantID              uuid.UUID  `db:"merchant_id"`
	Default                 bool       `db:"is_default"`
	URL                     string     `db:"url"`
	Description             *string    `db:"description"`
	EnabledEvents           []string   `db:"enabled_events"`
	Secret                  *string    `db:"secret"`
	PreviousSecret          *string    `db:"previous_secret"`
	PreviousSecretExpiresAt *time.Time `db:"previous_secret_expires_at"`
	Status                  string     `db:"status"`
	DisabledReason          *string    `db:"disabled_reason"`
	FailingSince            *time.Time `db:"failing_since"`
	CreatedAt               time.Time  `db:"created_at"`
	UpdatedAt               time.Time  `db:"updated_at"`

	// NewSecret is set only in the answer that generated the secret
	// (create, the first set of the default URL, rotation): shown once.
	NewSecret string `db:"-"`
}

// MarshalJSON renders an endpoint for the API; the secret only as NewSecret.
func (e *Endpoint) MarshalJSON() ([]byte, error) {
	var graceEnds *time.Time
	if e.PreviousSecret != nil && e.PreviousSecretExpiresAt != nil && e.PreviousSecretExpiresAt.After(time.Now()) {
		graceEnds = e.PreviousSecretExpiresAt
	}
	return json.Marshal(struct {
		ID                      uuid.UUID  `json:"id"`
		Object                  string     `json:"object"`
		URL                     string     `json:"url"`
		Description             *string    `json:"description"`
		EnabledEvents           []string   `json:"enabled_events"`
		Default                 bool       `json:"default"`
		Status                  string     `json:"status"`
		DisabledReason          *string    `json:"disabled_reason"`
		FailingSince            *time.Time `json:"failing_since"`
		Secret                  string     `json:"secret,omitempty"`
		PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
		CreatedAt               time.Time  `json:"created_at"`
		UpdatedAt               time.Time  `json:"updated_at"`
	}{e.ID, "webhook_endpoint", e.URL, e.Description, e.EnabledEvents, e.Default, e.Status, e.DisabledReason,
		e.FailingSince, e.NewSecret, graceEnds, e.CreatedAt, e.UpdatedAt})
}

var endpointColumns = columnsOf[Endpoint]()

func scanEndpoint(row pgx.Row) (*Endpoint, error) {
	var e Endpoint
	if err := row.Scan(endpointColumns.dest(&e)...); err != nil {
		return nil, notFound(err)
	}
	return &e, nil
}

// CheckEnabledEvents validates an enabled_events list and returns it
// normalised: ["*"] for nil or empty, else the distinct types in catalogue
// order. Returns an EValidation error naming enabled_events.
func CheckEnabledEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return []string{AllEvents}, nil
	}
	if slices.Contains(events, AllEvents) {
		if len(events) > 1 {
			return nil, &Error{Code: EValidation, Param: "enabled_events",
				Message: `enabled_events is either ["*"] or a list of event types, not both`}
		}
		return []string{AllEvents}, nil
	}
	for _, ev := range events {
		if !EventTypeKnown(ev) {
			if len(ev) > 64 {
				ev = ev[:64] + "…"
			}
			return nil, &Error{Code: EValidation, Param: "enabled_events",
				Message: fmt.Sprintf("unknown event type %q: see GET /openapi.yaml (webhooks) or docs/WEBHOOKS.md for the catalogue", ev)}
		}
	}
	var out []string
	for _, t := range EventCatalogue {
		if slices.Contains(events, t.Name) {
			out = append(out, t.Name)
		}
	}
	return out, nil
}

// EndpointList returns all of a merchant's endpoints (at most EndpointMax), newest first.
func (s *Store) EndpointList(ctx context.Context, merchantID uuid.UUID) ([]*Endpoint, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+endpointColumns.String()+` FROM webhook_endpoints
		WHERE merchant_id = $1 AND deleted_at IS NULL ORDER BY id DESC`, merchantID)
	if err != nil {
		return nil, fmt.Errorf("listing webhook endpoints: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Endpoint, error) { return scanEndpoint(row) })
}

// EndpointGet returns a merchant's endpoint, or ErrNotFound.
func (s *Store) EndpointGet(ctx context.Context, merchantID, id uuid.UUID) (*Endpoint, error) {
	return scanEndpoint(s.Pool.QueryRow(ctx, `SELECT `+endpointColumns.String()+` FROM webhook_endpoints
		WHERE id = $1 AND merchant_id = $2 AND deleted_at IS NULL`, id, merchantID))
}

// EndpointGetDefault returns the merchant's default endpoint, or ErrNotFound
// when it has none (no webhook_url).
func (s *Store) EndpointGetDefault(ctx context.Context, merchantID uuid.UUID) (*Endpoint, error) {
	return scanEndpoint(s.Pool.QueryRow(ctx, `SELECT `+endpointColumns.String()+` FROM webhook_endpoints
		WHERE merchant_id = $1 AND is_default AND deleted_at IS NULL`, merchantID))
}

// EndpointParams are a new endpoint's fields, URL already validated.
type EndpointParams struct {
	URL           string
	Description   *string
	EnabledEvents []string
}

// endpointLockTx serialises changes to a merchant's set of endpoints (the
// limit of EndpointMax) and returns how many it has.
func endpointLockTx(ctx context.Context, tx pgx.Tx, merchantID uuid.UUID) (int, error) {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM merchants WHERE id = $1 FOR NO KEY UPDATE`, merchantID); err != nil {
		return 0, fmt.Errorf("locking merchant %s: %w", merchantID, err)
	}
	var n int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM webhook_endpoints WHERE merchant_id = $1 AND deleted_at IS NULL`,
		merchantID).Scan(&n)
	return n, err
}

func errTooManyEndpoints() error {
	return &Error{Code: EConflict, Message: fmt.Sprintf(
		"a merchant may have at most %d webhook endpoints: delete one first", EndpointMax)}
}

// EndpointCreateTx adds an endpoint with a new secret, shown once in
// NewSecret, in tx.
//
// Returns an EValidation error for a bad enabled_events, or an EConflict
// error when the merchant already has EndpointMax endpoints.
func (s *Store) EndpointCreateTx(ctx context.Context, tx pgx.Tx, merchantID uuid.UUID, p EndpointParams) (*Endpoint, error) {
	events, err := CheckEnabledEvents(p.EnabledEvents)
	if err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	n, err := endpointLockTx(ctx, tx, merchantID)
	if err != nil {
		return nil, err
	}
	if n >= EndpointMax {
		return nil, errTooManyEndpoints()
	}
	secret := signing.NewSecret()
	e, err := scanEndpoint(tx.QueryRow(ctx, `INSERT INTO webhook_endpoints (id, merchant_id, url, description, enabled_events, secret)
		VALUES ($1, $2, $3, nullif($4, ''), $5, $6) RETURNING `+endpointColumns.String(), id, merchantID, p.URL, p.Description, events, secret))
	if err != nil {
		return nil, fmt.Errorf("inserting webhook endpoint: %w", err)
	}
	e.NewSecret = secret
	return e, nil
}

// EndpointSetDefaultURL sets the default endpoint's URL (already
// validated), creating the endpoint if the merchant has none. When the
// endpoint has no secret yet, one is generated and shown once in NewSecret;
// later calls keep the secret.
//
// Returns an EConflict error when a new default would exceed EndpointMax.
func (s *Store) EndpointSetDefaultURL(ctx context.Context, merchantID uuid.UUID, url string) (*Endpoint, error) {
	var e *Endpoint
	var newSecret string
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		n, err := endpointLockTx(ctx, tx, merchantID)
		if err != nil {
			return err
		}
		// The default endpoint's secret, or, when it has none (its URL was
		// cleared), the merchant's: kept, as the old service kept it.
		var secret *string
		var exists bool
		err = tx.QueryRow(ctx, `SELECT coalesce(e.secret, m.webhook_secret), e.id IS NOT NULL
			FROM merchants m LEFT JOIN webhook_endpoints e ON e.merchant_id = m.id AND e.is_default AND e.deleted_at IS NULL
			WHERE m.id = $1`, merchantID).Scan(&secret, &exists)
		if err != nil {
			return notFound(err)
		}
		if secret == nil || *secret == "" {
			newSecret = signing.NewSecret()
			secret = &newSecret
		}
		if exists {
			e, err = scanEndpoint(tx.QueryRow(ctx, `UPDATE webhook_endpoints SET url = $2, secret = $3, updated_at = now()
				WHERE merchant_id = $1 AND is_default AND deleted_at IS NULL RETURNING `+endpointColumns.String(), merchantID, url, *secret))
			return err
		}
		if n >= EndpointMax {
			return errTooManyEndpoints()
		}
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		e, err = scanEndpoint(tx.QueryRow(ctx, `INSERT INTO webhook_endpoints (id, merchant_id, is_default, url, secret)
			VALUES ($1, $2, true, $3, $4) RETURNING `+endpointColumns.String(), id, merchantID, url, *secret))
		return err
	})
	if err != nil {
		return nil, err
	}
	e.NewSecret = newSecret
	return e, nil
}

// EndpointUpdate is a PATCH: nil fields are left as they are.
type EndpointUpdate struct {
	URL           *string // already validated
	Description   *string // "" clears it
	EnabledEvents []string
	Disabled      *bool
}

// EndpointPatch changes an endpoint. Disabling it (the merchant's pause)
// ends its queued deliveries FAILED with "endpoint disabled"; enabling it
// clears its failure streak (missed events come back with recover).
//
// Returns ErrNotFound, or an EValidation error for a bad enabled_events.
func (s *Store) EndpointPatch(ctx context.Context, merchantID, id uuid.UUID, u EndpointUpdate) (*Endpoint, error) {
	var events []string
	if u.EnabledEvents != nil {
		var err error
		if events, err = CheckEnabledEvents(u.EnabledEvents); err != nil {
			return nil, err
		}
	}
	var e *Endpoint
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		old, err := scanEndpoint(tx.QueryRow(ctx, `SELECT `+endpointColumns.String()+` FROM webhook_endpoints
			WHERE id = $1 AND merchant_id = $2 AND deleted_at IS NULL FOR UPDATE`, id, merchantID))
		if err != nil {
			return err
		}
		status, reason, failingSince := old.Status, old.DisabledReason, old.FailingSince
		if u.Disabled != nil {
			switch {
			case *u.Disabled && old.Status == EndpointEnabled:
				r := DisabledByMerchant
				status, reason = EndpointDisabled, &r
			case !*u.Disabled && old.Status == EndpointDisabled:
				status, reason, failingSince = EndpointEnabled, nil, nil
			}
		}
		e, err = scanEndpoint(tx.QueryRow(ctx, `UPDATE webhook_endpoints SET
				url = coalesce($2, url),
				description = CASE WHEN $3::boolean THEN nullif($4, '') ELSE description END,
				enabled_events = coalesce($5, enabled_events),
				status = $6, disabled_reason = $7, failing_since = $8,
				updated_at = now()
			WHERE id = $1 RETURNING `+endpointColumns.String(),
			id, u.URL, u.Description != nil, u.Description, events, status, reason, failingSince))
		if err != nil {
			return fmt.Errorf("updating webhook endpoint %s: %w", id, err)
		}
		if status == EndpointDisabled && old.Status == EndpointEnabled {
			return endpointEndDeliveriesTx(ctx, tx, id, errEndpointDisabled)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// EndpointDelete deletes an endpoint; its queued deliveries end FAILED with
// "endpoint deleted". Deleting the default endpoint clears
// merchants.webhook_url. Returns ErrNotFound.
func (s *Store) EndpointDelete(ctx context.Context, merchantID, id uuid.UUID) error {
	return s.InTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET deleted_at = now(), updated_at = now()
			WHERE id = $1 AND merchant_id = $2 AND deleted_at IS NULL`, id, merchantID)
		if err != nil {
			return fmt.Errorf("deleting webhook endpoint %s: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return endpointEndDeliveriesTx(ctx, tx, id, errEndpointDeleted)
	})
}

// endpointEndDeliveriesTx ends every unfinished delivery of an endpoint
// (queued, in a retry, or waiting for a recovery attempt) FAILED with msg
// and no further attempt. An attempt already in flight still records its
// outcome.
func endpointEndDeliveriesTx(ctx context.Context, tx pgx.Tx, endpointID uuid.UUID, msg string) error {
	_, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = 'FAILED', next_retry_at = NULL,
			error_message = $2, updated_at = now()
		WHERE endpoint_id = $1
			AND (status IN ('PENDING', 'PROCESSING') OR (status = 'FAILED' AND next_retry_at IS NOT NULL))`,
		endpointID, msg)
	if err != nil {
		return fmt.Errorf("ending deliveries of webhook endpoint %s: %w", endpointID, err)
	}
	return nil
}

// EndpointRotateSecret gives an endpoint a new secret, shown once in
// NewSecret. The replaced secret keeps signing for grace (0 ends it now).
// Returns ErrNotFound.
func (s *Store) EndpointRotateSecret(ctx context.Context, merchantID, id uuid.UUID, grace time.Duration) (*Endpoint, error) {
	secret := signing.NewSecret()
	e, err := scanEndpoint(s.Pool.QueryRow(ctx, `UPDATE webhook_endpoints SET
			previous_secret = secret,
			previous_secret_expires_at = CASE WHEN secret IS NULL THEN NULL
				ELSE now() + $4::bigint * interval '1 microsecond' END,
			secret = $3,
			updated_at = now()
		WHERE id = $1 AND merchant_id = $2 AND deleted_at IS NULL
		RETURNING `+endpointColumns.String(), id, merchantID, secret, grace.Microseconds()))
	if err != nil {
		return nil, err
	}
	e.NewSecret = secret
	return e, nil
}

// EndpointSendTestTx emits a webhook.test event with one delivery, to this
// endpoint only (whatever its filter), in tx, and returns the delivery.
//
// Returns ErrNotFound, or an EConflict error when the endpoint is disabled.
func (s *Store) EndpointSendTestTx(ctx context.Context, tx pgx.Tx, merchantID, endpointID uuid.UUID) (*Delivery, error) {
	var status string
	err := tx.QueryRow(ctx, `SELECT status FROM webhook_endpoints WHERE id = $1 AND merchant_id = $2 AND deleted_at IS NULL`,
		endpointID, merchantID).Scan(&status)
	if err != nil {
		return nil, notFound(err)
	}
	if status != EndpointEnabled {
		return nil, &Error{Code: EConflict, Message: "the endpoint is disabled: enable it first (PATCH {\"disabled\": false})"}
	}
	e, _, err := s.eventInsertTx(ctx, tx, merchantID, EventWebhookTest, uuid.Nil, map[string]any{
		"object":  "webhook_test",
		"message": "This is a test webhook from BoohPay.",
	}, false)
	if err != nil {
		return nil, err
	}
	ids, err := s.deliveriesCreateTx(ctx, tx, []*Event{e}, []uuid.UUID{endpointID})
	if err != nil {
		return nil, err
	}
	d, err := scanDelivery(tx.QueryRow(ctx, `SELECT `+deliveryColumns.String()+` FROM webhook_deliveries WHERE id = $1`, ids[0]))
	if err != nil {
		return nil, fmt.Errorf("reading test delivery: %w", err)
	}
	d.AttemptLog = []*DeliveryAttempt{}
	return d, nil
}

// Recovery is what EndpointRecover did.
type Recovery struct {
	EndpointID uuid.UUID `json:"endpoint_id"`
	Since      time.Time `json:"since"`
	Until      time.Time `json:"until"`
	Deliveries int       `json:"deliveries_created"`
}

// EndpointRecover creates a new delivery to this endpoint for every event of
// the merchant in [since, until) that matches its filter and was never
// delivered to it: its delivery FAILED, or none was made (the endpoint was
// disabled, or did not exist yet). Events with a delivery to it that
// succeeded or is still under way are skipped; a FAILED one still waiting
// for recovery attempts stops waiting (the new delivery replaces it).
// webhook.test events are never recovered.
//
// Returns ErrNotFound, an EConflict error when the endpoint is disabled, or
// an EValidation error when the window holds more than RecoverMax events.
func (s *Store) EndpointRecover(ctx context.Context, merchantID, id uuid.UUID, since, until time.Time) (*Recovery, error) {
	r := &Recovery{EndpointID: id, Since: since, Until: until}
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var status string
		err := tx.QueryRow(ctx, `SELECT status FROM webhook_endpoints WHERE id = $1 AND merchant_id = $2 AND deleted_at IS NULL`,
			id, merchantID).Scan(&status)
		if err != nil {
			return notFound(err)
		}
		if status != EndpointEnabled {
			return &Error{Code: EConflict, Message: "the endpoint is disabled: enable it first (PATCH {\"disabled\": false}), then recover"}
		}
		rows, err := tx.Query(ctx, `SELECT `+eventColumns.String()+` FROM events ev
			WHERE ev.merchant_id = $1 AND ev.created_at >= $3 AND ev.created_at < $4 AND ev.type <> 'webhook.test'
				AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = $2
					AND ('*' = ANY (e.enabled_events) OR ev.type = ANY (e.enabled_events)))
				AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.merchant_id = $1 AND d.event_id = ev.id
					AND d.endpoint_id = $2 AND d.status IN ('PENDING', 'PROCESSING', 'SUCCEEDED'))
			ORDER BY ev.id LIMIT $5`, merchantID, id, since, until, RecoverMax+1)
		if err != nil {
			return fmt.Errorf("selecting events to recover: %w", err)
		}
		events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Event, error) { return scanEvent(row) })
		if err != nil {
			return fmt.Errorf("selecting events to recover: %w", err)
		}
		if len(events) > RecoverMax {
			return &Error{Code: EValidation, Param: "since", Message: fmt.Sprintf(
				"the window holds more than %d events to recover: recover a shorter window at a time", RecoverMax)}
		}
		if len(events) == 0 {
			return nil
		}
		eventIDs := make([]uuid.UUID, len(events))
		endpoints := make([]uuid.UUID, len(events))
		for i, e := range events {
			eventIDs[i], endpoints[i] = e.ID, id
		}
		if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET next_retry_at = NULL, updated_at = now()
			WHERE merchant_id = $1 AND endpoint_id = $2 AND event_id = ANY ($3)
				AND status = 'FAILED' AND next_retry_at IS NOT NULL`, merchantID, id, eventIDs); err != nil {
			return fmt.Errorf("ending superseded recovery attempts: %w", err)
		}
		if _, err := s.deliveriesCreateTx(ctx, tx, events, endpoints); err != nil {
			return err
		}
		r.Deliveries = len(events)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}
