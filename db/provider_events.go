package db

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// What a provider event asks of the object it concerns, whatever the
// provider called it. Each provider's parser maps its event types onto these.
const (
	ProviderActionRecord        = "record"          // recorded only: nothing to change
	ProviderActionAuthorize     = "authorize"       // payment AUTHORIZED
	ProviderActionSucceed       = "succeed"         // payment or payout SUCCEEDED
	ProviderActionFail          = "fail"            // payment (not terminal) or payout FAILED
	ProviderActionCancel        = "cancel"          // payment CANCELLED (also an uncaptured charge released)
	ProviderActionProcess       = "process"         // payout PROCESSING
	ProviderActionRefund        = "refund"          // payment refunded: AmountRefunded is the new total
	ProviderActionRefundFailed  = "refund_failed"   // a refund of RefundAmount was undone
	ProviderActionDisputeOpen   = "dispute_created" // DisputeStatus is the new dispute's status
	ProviderActionDisputeClosed = "dispute_closed"  // DisputeStatus is how it ended
)

// Amount units: how a provider writes amounts.
const (
	UnitMinor = "minor" // integers in the currency's minor unit (Stripe)
	UnitMajor = "major" // decimal major units (eBilling; 5000 XAF is "5000")
)

// ProviderEventInput is one authentic provider call, parsed by its
// provider's parser into what the checks need. Amounts are kept as the
// provider wrote them, with their unit: ProviderEventApply converts them
// through the one currency-exponent table.
type ProviderEventInput struct {
	Provider string `json:"provider"`
	Key      string `json:"key"`  // unique per provider: what makes a replay a replay
	Type     string `json:"type"` // the provider's event type, as sent

	Object string    `json:"object"`           // ObjectPayment, ObjectPayout, or "" when none of ours
	Action string    `json:"action"`           // a ProviderAction*
	OurID  uuid.UUID `json:"our_id,omitzero"`  // our id echoed back (metadata, eBilling's reference)
	Ref    string    `json:"ref,omitempty"`    // the provider's id of the object the event is filed under
	Money  string    `json:"money,omitempty"`  // the provider object carrying the money (default Ref)
	Detail string    `json:"detail,omitempty"` // why it is recorded only, or what the provider said

	Currency string `json:"currency,omitempty"` // as sent; compared case-insensitively
	Unit     string `json:"unit,omitempty"`     // UnitMinor or UnitMajor
	// Amount is the object's amount; AtLeast accepts more than ours
	// (Moneroo: what was paid). Empty: not stated.
	Amount           string  `json:"amount,omitempty"`
	AtLeast          bool    `json:"at_least,omitempty"`
	AmountCapturable string  `json:"amount_capturable,omitempty"` // AUTHORIZED: must be ours
	AmountReceived   string  `json:"amount_received,omitempty"`   // what was captured
	AmountRefunded   string  `json:"amount_refunded,omitempty"`   // refunds: the new total
	RefundAmount     string  `json:"refund_amount,omitempty"`     // a failed refund's amount
	NotPaid          string  `json:"not_paid,omitempty"`          // the object's own status contradicts a success: why
	DisputeStatus    string  `json:"dispute_status,omitempty"`
	FailureReason    *string `json:"failure_reason,omitempty"`

	Payload []byte `json:"-"` // the raw body, kept as sent
}

// ProviderEventResult is what applying a provider event did.
type ProviderEventResult struct {
	Outcome  string // an Outcome*
	Object   string
	ObjectID uuid.UUID // uuid.Nil unless found
	Detail   string
}

// ProviderEvent is one authentic inbound provider call, kept raw.
type ProviderEvent struct {
	ID         int64      `db:"id"`
	Provider   string     `db:"provider"`
	EventKey   string     `db:"event_key"`
	EventType  string     `db:"event_type"`
	ObjectType *string    `db:"object_type"`
	ObjectID   *uuid.UUID `db:"object_id"`
	ObjectRef  *string    `db:"object_ref"`
	Result     string     `db:"result"`
	Detail     *string    `db:"detail"`
	Payload    string     `db:"payload"`
	ReceivedAt time.Time  `db:"received_at"`
}

// ProviderEventApply applies one authentic provider event, in one
// transaction, running the checks in order:
//
//  1. dedupe: (provider, key) is unique in provider_events; a replay, or a
//     concurrent duplicate (which waits on the index), is "duplicate" and
//     changes nothing;
//  2. find the object: by our id from the provider's metadata, only among
//     this provider's objects; else by its unique provider_reference. The
//     first match binds the provider's id as provider_reference when the
//     object has none. Not found: "unmatched", parked under the provider's
//     id and applied when an object is created or bound with it;
//  3. verify the money: currency, amount in the provider's unit; a
//     mismatch changes nothing and sets review; a second provider object
//     paying a paid payment is "duplicate_payment";
//  4. apply through the one transition path.
//
// The raw payload and the outcome are recorded together with the change.
func (s *Store) ProviderEventApply(ctx context.Context, in *ProviderEventInput) (*ProviderEventResult, error) {
	if in.Money == "" {
		in.Money = in.Ref
	}
	parsed, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encoding provider event: %w", err)
	}
	var res *ProviderEventResult
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO provider_events
				(provider, event_key, event_type, object_type, object_ref, money_ref, parsed, result, payload)
			VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), NULLIF($6, ''), $7, 'received', $8)
			ON CONFLICT (provider, event_key) DO NOTHING
			RETURNING id`,
			in.Provider, in.Key, in.Type, in.Object, in.Ref, in.Money, parsed, string(in.Payload)).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			res = &ProviderEventResult{Outcome: OutcomeDuplicate, Object: in.Object}
			return nil
		}
		if err != nil {
			return fmt.Errorf("recording %s event %q: %w", in.Provider, in.Key, err)
		}
		res, err = s.providerEventApplyTx(ctx, tx, id, in)
		return err
	})
	return res, err
}

// providerEventApplyTx runs the find, verify and apply checks for the
// recorded event id, and records their outcome on it.
func (s *Store) providerEventApplyTx(ctx context.Context, tx pgx.Tx, id int64, in *ProviderEventInput) (*ProviderEventResult, error) {
	res := &ProviderEventResult{Object: in.Object}
	var err error
	switch in.Object {
	case ObjectPayment:
		var lp *lockedPayment
		if lp, err = s.paymentFindTx(ctx, tx, in); err == nil {
			res.ObjectID = lp.p.ID
			res.Outcome, res.Detail, err = s.paymentApplyTx(ctx, tx, lp, in)
		}
	case ObjectPayout:
		var lp *lockedPayout
		if lp, err = s.payoutFindTx(ctx, tx, in); err == nil {
			res.ObjectID = lp.p.ID
			res.Outcome, res.Detail, err = s.payoutApplyTx(ctx, tx, lp, in)
		}
	default:
		res.Outcome, res.Detail = OutcomeIgnored, cmp.Or(in.Detail, "event type not handled")
	}
	switch {
	case errors.Is(err, ErrNotFound):
		res.Outcome, res.Detail = OutcomeUnmatched, fmt.Sprintf("no %s %s matches %s", in.Provider, in.Object, cmp.Or(in.Ref, "this event"))
	case err != nil:
		return nil, err
	}
	var objectID *uuid.UUID
	if res.ObjectID != uuid.Nil {
		objectID = &res.ObjectID
	}
	if _, err := tx.Exec(ctx, `UPDATE provider_events SET result = $2, detail = NULLIF($3, ''), object_id = $4 WHERE id = $1`,
		id, res.Outcome, res.Detail, objectID); err != nil {
		return nil, fmt.Errorf("recording result of provider event %d: %w", id, err)
	}
	return res, nil
}

// paymentFindTx finds and locks the payment in's event concerns, binding
// in.Ref to it when it has no provider_reference yet (and applying what
// was parked under in.Ref first).
//
// Returns ErrNotFound.
func (s *Store) paymentFindTx(ctx context.Context, tx pgx.Tx, in *ProviderEventInput) (*lockedPayment, error) {
	if in.Ref != "" {
		// Take turns with a payment being created or bound with this ref.
		if err := referenceLockTx(ctx, tx, ObjectPayment, in.Provider, in.Ref); err != nil {
			return nil, err
		}
	}
	var lp *lockedPayment
	var err error = ErrNotFound
	if in.OurID != uuid.Nil {
		lp, err = paymentLockTx(ctx, tx, `p.id = $1 AND p.gateway = $2`, in.OurID, in.Provider)
	}
	if errors.Is(err, ErrNotFound) && in.Ref != "" {
		return paymentLockTx(ctx, tx, `p.gateway = $1 AND p.provider_reference = $2`, in.Provider, in.Ref)
	}
	if err != nil {
		return nil, err
	}
	if lp.p.ProviderReference == nil && in.Ref != "" {
		if err := s.paymentBindTx(ctx, tx, lp, in.Ref); err != nil {
			return nil, err
		}
	}
	return lp, nil
}

// paymentBindTx binds ref to the locked payment, unless another payment
// holds it already, and applies the events parked under it.
func (s *Store) paymentBindTx(ctx context.Context, tx pgx.Tx, lp *lockedPayment, ref string) error {
	var bound bool
	err := tx.QueryRow(ctx, `UPDATE payments SET provider_reference = $2, updated_at = now()
		WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM payments WHERE gateway = $3 AND provider_reference = $2)
		RETURNING true`, lp.p.ID, ref, lp.p.Gateway).Scan(&bound)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("binding provider_reference to payment %s: %w", lp.p.ID, err)
	}
	lp.p.ProviderReference = &ref
	return s.parkedApplyTx(ctx, tx, lp, nil)
}

func (s *Store) payoutFindTx(ctx context.Context, tx pgx.Tx, in *ProviderEventInput) (*lockedPayout, error) {
	if in.Ref != "" {
		if err := referenceLockTx(ctx, tx, ObjectPayout, in.Provider, in.Ref); err != nil {
			return nil, err
		}
	}
	var lp *lockedPayout
	var err error = ErrNotFound
	if in.OurID != uuid.Nil {
		lp, err = payoutLockTx(ctx, tx, `p.id = $1 AND p.provider = $2`, in.OurID, in.Provider)
	}
	if errors.Is(err, ErrNotFound) && in.Ref != "" {
		return payoutLockTx(ctx, tx, `p.provider = $1 AND p.provider_reference = $2`, in.Provider, in.Ref)
	}
	if err != nil {
		return nil, err
	}
	if lp.p.ProviderReference == nil && in.Ref != "" {
		var bound bool
		err := tx.QueryRow(ctx, `UPDATE payouts SET provider_reference = $2, updated_at = now()
			WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM payouts WHERE provider = $3 AND provider_reference = $2)
			RETURNING true`, lp.p.ID, in.Ref, lp.p.Provider).Scan(&bound)
		switch {
		case err == nil:
			lp.p.ProviderReference = &in.Ref
			if err := s.parkedApplyTx(ctx, tx, nil, lp); err != nil {
				return nil, err
			}
		case !errors.Is(err, pgx.ErrNoRows):
			return nil, fmt.Errorf("binding provider_reference to payout %s: %w", lp.p.ID, err)
		}
	}
	return lp, nil
}

// parkedApplyTx applies, oldest first, the unmatched events parked under
// the provider_reference of the locked payment (or payout) just created or
// bound, and records their outcomes. The caller holds the reference lock.
func (s *Store) parkedApplyTx(ctx context.Context, tx pgx.Tx, pay *lockedPayment, po *lockedPayout) error {
	object, provider, ref := ObjectPayment, "", ""
	if pay != nil {
		provider, ref = pay.p.Gateway, *pay.p.ProviderReference
	} else {
		object, provider, ref = ObjectPayout, po.p.Provider, *po.p.ProviderReference
	}
	rows, err := tx.Query(ctx, `SELECT id, parsed FROM provider_events
		WHERE provider = $1 AND object_type = $2 AND object_ref = $3 AND result = 'unmatched' AND parsed IS NOT NULL
		ORDER BY id FOR UPDATE`, provider, object, ref)
	if err != nil {
		return fmt.Errorf("reading parked provider events: %w", err)
	}
	type parked struct {
		id int64
		in ProviderEventInput
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (parked, error) {
		var p parked
		err := row.Scan(&p.id, &p.in)
		return p, err
	})
	if err != nil {
		return fmt.Errorf("reading parked provider events: %w", err)
	}
	for _, e := range all {
		var outcome, detail string
		var objectID uuid.UUID
		if pay != nil {
			objectID = pay.p.ID
			outcome, detail, err = s.paymentApplyTx(ctx, tx, pay, &e.in)
		} else {
			objectID = po.p.ID
			outcome, detail, err = s.payoutApplyTx(ctx, tx, po, &e.in)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE provider_events SET result = $2, detail = NULLIF($3, ''), object_id = $4 WHERE id = $1`,
			e.id, outcome, cmp.Or(detail, "applied when its "+object+" was bound"), objectID); err != nil {
			return fmt.Errorf("recording result of parked provider event %d: %w", e.id, err)
		}
	}
	return nil
}

// paymentApplyTx verifies the money of in against the locked payment and
// applies it: the outcome, and a detail for provider_events.
func (s *Store) paymentApplyTx(ctx context.Context, tx pgx.Tx, lp *lockedPayment, in *ProviderEventInput) (string, string, error) {
	p := lp.p
	if in.Action == ProviderActionRecord {
		return OutcomeIgnored, cmp.Or(in.Detail, "recorded only"), nil
	}
	money, problem := verifyMoney(p.Amount, p.Currency, in)
	if problem != "" {
		return OutcomeAmountMismatch, problem, s.paymentReviewTx(ctx, tx, lp,
			newReview(ReviewAmountMismatch, "%s %s (event %s): %s", in.Provider, in.Type, in.Key, problem))
	}
	paid := p.Status == PaymentSucceeded || p.Status == PaymentRefunded
	if paid && in.Action != ProviderActionDisputeOpen && in.Action != ProviderActionDisputeClosed {
		same, err := sameMoney(ctx, tx, p, in)
		if err != nil {
			return "", "", err
		}
		if !same {
			if in.Action != ProviderActionSucceed {
				return OutcomeIgnored, fmt.Sprintf("concerns %s, not the provider object that paid this payment", in.Money), nil
			}
			detail := fmt.Sprintf("%s %s paid this payment again (%s %s): a refund is owed", in.Provider, in.Money, in.Amount, in.Currency)
			return OutcomeDuplicatePayment, detail, s.paymentReviewTx(ctx, tx, lp, newReview(ReviewDuplicatePayment, "%s", detail))
		}
	}
	move := paymentMove{Actor: ActorProvider, FailureReason: in.FailureReason}
	switch in.Action {
	case ProviderActionAuthorize:
		move.Status = PaymentAuthorized
	case ProviderActionSucceed:
		move.Status = PaymentSucceeded
		move.AmountReceived = money.received
		if !paid && in.Ref != "" && p.ProviderReference != nil && *p.ProviderReference != in.Ref {
			// Another provider object than the one bound paid it: it is
			// now the one that holds the money.
			if _, err := tx.Exec(ctx, `UPDATE payments SET provider_reference = $2
				WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM payments WHERE gateway = $3 AND provider_reference = $2)`,
				p.ID, in.Ref, p.Gateway); err != nil {
				return "", "", fmt.Errorf("rebinding payment %s: %w", p.ID, err)
			}
		}
	case ProviderActionFail:
		move.Status = PaymentFailed
	case ProviderActionCancel:
		move.Status = PaymentCancelled
	case ProviderActionRefund:
		move.AmountRefunded, move.AmountReceived = money.refunded, money.received
		if move.AmountRefunded == nil {
			move.Status = PaymentRefunded
		}
	case ProviderActionRefundFailed:
		move.RefundFailed = money.refund
		if move.RefundFailed == nil {
			return OutcomeIgnored, "the failed refund states no amount", nil
		}
	case ProviderActionDisputeOpen, ProviderActionDisputeClosed:
		status := cmp.Or(in.DisputeStatus, "unknown")
		move.Dispute, move.DisputeClosed = &status, in.Action == ProviderActionDisputeClosed
	default:
		return OutcomeIgnored, "action " + in.Action + " does not apply to a payment", nil
	}
	from := p.Status
	outcome, err := s.paymentMoveTx(ctx, tx, lp, move)
	if err != nil {
		return "", "", err
	}
	switch outcome {
	case OutcomeStale:
		return outcome, fmt.Sprintf("%s %s on a %s payment: nothing changed", in.Provider, in.Type, from), nil
	case OutcomeIgnored:
		return outcome, "already " + from, nil
	}
	return outcome, "", nil
}

// sameMoney reports whether in's provider object is the one that paid the
// paid payment p: the one a success was recorded from, or, when none was
// (sandbox, an admin), its provider_reference.
func sameMoney(ctx context.Context, tx pgx.Tx, p *Payment, in *ProviderEventInput) (bool, error) {
	var same, any bool
	err := tx.QueryRow(ctx, `SELECT coalesce(bool_or(money_ref = $2), false), count(*) > 0 FROM provider_events
		WHERE object_type = 'payment' AND object_id = $1 AND money_ref IS NOT NULL
		  AND result = 'applied' AND parsed ->> 'action' IN ('succeed', 'refund')`, p.ID, in.Money).Scan(&same, &any)
	if err != nil {
		return false, fmt.Errorf("reading how payment %s was paid: %w", p.ID, err)
	}
	if any {
		return same, nil
	}
	return p.ProviderReference == nil || *p.ProviderReference == in.Ref, nil
}

func (s *Store) payoutApplyTx(ctx context.Context, tx pgx.Tx, lp *lockedPayout, in *ProviderEventInput) (string, string, error) {
	p := lp.p
	if in.Action == ProviderActionRecord {
		return OutcomeIgnored, cmp.Or(in.Detail, "recorded only"), nil
	}
	if _, problem := verifyMoney(p.Amount, p.Currency, in); problem != "" {
		return OutcomeAmountMismatch, problem, s.payoutReviewTx(ctx, tx, lp,
			newReview(ReviewAmountMismatch, "%s %s (event %s): %s", in.Provider, in.Type, in.Key, problem))
	}
	var status string
	switch in.Action {
	case ProviderActionProcess:
		status = PayoutProcessing
	case ProviderActionSucceed:
		status = PayoutSucceeded
	case ProviderActionFail:
		status = PayoutFailed
	default:
		return OutcomeIgnored, "action " + in.Action + " does not apply to a payout", nil
	}
	from := p.Status
	outcome, err := s.payoutMoveTx(ctx, tx, lp, ActorProvider, status, in.FailureReason)
	if err != nil {
		return "", "", err
	}
	switch outcome {
	case OutcomeStale:
		return outcome, fmt.Sprintf("%s %s on a %s payout: nothing changed", in.Provider, in.Type, from), nil
	case OutcomeConflict:
		return outcome, lp.p.Review.Detail, nil
	case OutcomeIgnored:
		return outcome, "already " + from, nil
	}
	return outcome, "", nil
}

// verifiedMoney are in's amounts in our minor units, once verified.
type verifiedMoney struct {
	received, refunded, refund *int64
}

// verifyMoney checks in's money against an object of amount (minor units)
// in currency, and converts in's amounts to minor units. problem says what
// does not match ("" when all does).
func verifyMoney(amount int64, currency string, in *ProviderEventInput) (m verifiedMoney, problem string) {
	if in.NotPaid != "" {
		return m, in.NotPaid
	}
	if in.Currency != "" && !strings.EqualFold(in.Currency, currency) {
		return m, fmt.Sprintf("currency %s is not the %s's %s", in.Currency, in.Object, currency)
	}
	conv := func(field, v string) (*int64, string) {
		if v == "" {
			return nil, ""
		}
		n, ok := toMinor(v, currency, in.Unit)
		if !ok {
			return nil, fmt.Sprintf("%s %q is not an amount of %s", field, v, currency)
		}
		return &n, ""
	}
	stated, problem := conv("amount", in.Amount)
	if problem != "" {
		return m, problem
	}
	if stated != nil {
		switch {
		case in.AtLeast && *stated < amount:
			return m, fmt.Sprintf("paid %s %s, less than the %s's %d", in.Amount, in.Currency, in.Object, amount)
		case !in.AtLeast && *stated != amount:
			return m, fmt.Sprintf("amount %s %s is not the %s's %d", in.Amount, cmp.Or(in.Currency, currency), in.Object, amount)
		}
	}
	capturable, problem := conv("amount_capturable", in.AmountCapturable)
	if problem != "" {
		return m, problem
	}
	if capturable != nil && *capturable != amount {
		return m, fmt.Sprintf("amount_capturable %s is not the payment's %d", in.AmountCapturable, amount)
	}
	if m.received, problem = conv("amount_received", in.AmountReceived); problem != "" {
		return m, problem
	}
	if r := m.received; r != nil && (*r <= 0 || *r > amount && !in.AtLeast) {
		return m, fmt.Sprintf("amount_received %s is not between 1 and the payment's %d", in.AmountReceived, amount)
	}
	if m.received == nil && in.Action == ProviderActionSucceed && stated != nil {
		m.received = stated // what was paid (Moneroo: possibly more than asked)
	}
	if m.refunded, problem = conv("amount_refunded", in.AmountRefunded); problem != "" {
		return m, problem
	}
	if r := m.refunded; r != nil && m.received != nil && *r > *m.received {
		return m, fmt.Sprintf("amount_refunded %s is more than the %d captured", in.AmountRefunded, *m.received)
	}
	if m.refund, problem = conv("refund amount", in.RefundAmount); problem != "" {
		return m, problem
	}
	return m, ""
}

// toMinor converts a provider's amount text to currency's minor units:
// as is for UnitMinor (an integer), scaled by the currency's exponent for
// UnitMajor ("5000", "12.50"); ok is false for anything that is not a
// whole number of minor units.
func toMinor(v, currency, unit string) (int64, bool) {
	exp, known := CurrencyExponent(strings.ToUpper(currency))
	if !known {
		return 0, false
	}
	r, ok := new(big.Rat).SetString(strings.TrimSpace(v))
	if !ok || r.Sign() < 0 || strings.ContainsAny(v, "eE/") {
		return 0, false
	}
	if unit == UnitMajor {
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil)))
	}
	if !r.IsInt() || !r.Num().IsInt64() {
		return 0, false
	}
	return r.Num().Int64(), true
}
