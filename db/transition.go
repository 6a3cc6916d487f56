package db

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Review says why a payment or payout needs a human: set when a provider
// told us something surprising, cleared by an admin's resolve.
type Review struct {
	Reason string    `json:"reason"`
	Detail string    `json:"detail"`
	At     time.Time `json:"at"`
}

func newReview(reason, format string, args ...any) *Review {
	return &Review{Reason: reason, Detail: fmt.Sprintf(format, args...), At: time.Now().UTC().Truncate(time.Microsecond)}
}

// paymentMoves are the moves a provider may make (and so sandbox's
// simulate and an admin's override): a status is what the money did, as
// the provider last told us. FAILED is not terminal (the customer may pay
// on a retry); CANCELLED → SUCCEEDED is money captured after a local cancel;
// REFUNDED → SUCCEEDED is a refund the provider reports failed.
var paymentMoves = map[string][]string{
	PaymentPending:    {PaymentAuthorized, PaymentSucceeded, PaymentFailed, PaymentCancelled},
	PaymentAuthorized: {PaymentSucceeded, PaymentFailed, PaymentCancelled},
	PaymentFailed:     {PaymentAuthorized, PaymentSucceeded, PaymentCancelled},
	PaymentSucceeded:  {PaymentRefunded},
	PaymentRefunded:   {PaymentSucceeded},
	PaymentCancelled:  {PaymentSucceeded},
}

// paymentMerchantMoves: a merchant may only stop tracking a payment that
// has not moved money.
var paymentMerchantMoves = map[string][]string{
	PaymentPending:    {PaymentCancelled},
	PaymentAuthorized: {PaymentCancelled},
	PaymentFailed:     {PaymentCancelled},
}

// payoutMoves: FAILED → SUCCEEDED is money that left after all. A failure
// after SUCCEEDED is never applied on a provider's word (a conflict for a
// human); only an admin may make it.
var payoutMoves = map[string][]string{
	PayoutPending:    {PayoutProcessing, PayoutSucceeded, PayoutFailed},
	PayoutProcessing: {PayoutSucceeded, PayoutFailed},
	PayoutFailed:     {PayoutSucceeded},
}

var payoutAdminMoves = map[string][]string{
	PayoutSucceeded: {PayoutFailed},
}

// disputeClosedStatuses are the dispute statuses after which a "created"
// for the same payment is a replay.
var disputeClosedStatuses = []string{"won", "lost", "warning_closed"}

// TransitionParams describe a status change asked for by an actor.
type TransitionParams struct {
	// MerchantID scopes the change to one merchant's object; uuid.Nil means
	// any (admin overrides, which name the object by id alone).
	MerchantID    uuid.UUID
	ID            uuid.UUID
	Actor         Actor
	Status        string
	FailureReason *string
	// Sandbox and admin only: what the provider would report with it.
	AmountReceived *int64 // SUCCEEDED: captured (default: the amount)
	AmountRefunded *int64 // total refunded: REFUNDED, or a partial refund on SUCCEEDED
}

// paymentMove is one change the one transition path makes to a locked
// payment: a status move, a refund total, a failed refund, or a dispute.
type paymentMove struct {
	Actor          Actor
	Status         string
	FailureReason  *string
	AmountReceived *int64
	AmountRefunded *int64  // new total refunded
	RefundFailed   *int64  // a refund of this much was undone
	Dispute        *string // the dispute's status
	DisputeClosed  bool
}

// lockedPayment is a payment whose row tx holds locked.
type lockedPayment struct {
	p *Payment
}

// lockedPayout is a payout whose row tx holds locked.
type lockedPayout struct {
	p *Payout
}

// paymentLockTx locks a payment for the rest of tx: concurrent changes to
// one payment serialize here, so each real transition emits one event.
func paymentLockTx(ctx context.Context, tx pgx.Tx, where string, args ...any) (*lockedPayment, error) {
	p, err := scanPayment(tx.QueryRow(ctx, `SELECT `+paymentColumns.String()+` FROM payments p
		WHERE `+where+` FOR UPDATE`, args...))
	if err != nil {
		return nil, err
	}
	return &lockedPayment{p: p}, nil
}

func payoutLockTx(ctx context.Context, tx pgx.Tx, where string, args ...any) (*lockedPayout, error) {
	p, err := scanPayout(tx.QueryRow(ctx, `SELECT `+payoutColumns.String()+` FROM payouts p
		WHERE `+where+` FOR UPDATE`, args...))
	if err != nil {
		return nil, err
	}
	return &lockedPayout{p: p}, nil
}

// PaymentTransitionTx is the one path by which a payment's status changes
// on a merchant's, sandbox's or admin's request (provider events take it
// too, through ProviderEventApply). In tx it locks the row, checks the move
// for the actor, updates it and emits the event(s) (with their delivery
// rows and River jobs). A move to the current status is a no-op: it returns
// changed=false and emits nothing.
//
// Returns ErrNotFound, or an EInvalidTransition error for a move the actor
// may not make.
func (s *Store) PaymentTransitionTx(ctx context.Context, tx pgx.Tx, params TransitionParams) (p *Payment, changed bool, err error) {
	if params.Actor == ActorProvider || params.Actor == "" {
		return nil, false, fmt.Errorf("payment transition: actor %q cannot ask here", params.Actor)
	}
	lp, err := paymentLockTx(ctx, tx, `p.id = $1 AND ($2::uuid IS NULL OR p.merchant_id = $2)`,
		params.ID, anyMerchant(params.MerchantID))
	if err != nil {
		return nil, false, err
	}
	move := paymentMove{Actor: params.Actor, Status: params.Status, FailureReason: params.FailureReason,
		AmountReceived: params.AmountReceived, AmountRefunded: params.AmountRefunded}
	if params.Status == PaymentSucceeded && lp.p.Status == PaymentSucceeded && params.AmountRefunded != nil {
		move.Status = "" // a partial refund keeps SUCCEEDED
	}
	outcome, err := s.paymentMoveTx(ctx, tx, lp, move)
	return lp.p, outcome == OutcomeApplied, err
}

// PaymentTransition runs PaymentTransitionTx in its own transaction.
func (s *Store) PaymentTransition(ctx context.Context, params TransitionParams) (p *Payment, changed bool, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		p, changed, err = s.PaymentTransitionTx(ctx, tx, params)
		return err
	})
	return p, changed, err
}

// PayoutTransitionTx is the one path by which a payout's status changes;
// see PaymentTransitionTx. Merchants may not move payouts.
func (s *Store) PayoutTransitionTx(ctx context.Context, tx pgx.Tx, params TransitionParams) (p *Payout, changed bool, err error) {
	if params.Actor == ActorProvider || params.Actor == "" {
		return nil, false, fmt.Errorf("payout transition: actor %q cannot ask here", params.Actor)
	}
	lp, err := payoutLockTx(ctx, tx, `p.id = $1 AND ($2::uuid IS NULL OR p.merchant_id = $2)`,
		params.ID, anyMerchant(params.MerchantID))
	if err != nil {
		return nil, false, err
	}
	outcome, err := s.payoutMoveTx(ctx, tx, lp, params.Actor, params.Status, params.FailureReason)
	return lp.p, outcome == OutcomeApplied, err
}

// PayoutTransition runs PayoutTransitionTx in its own transaction.
func (s *Store) PayoutTransition(ctx context.Context, params TransitionParams) (p *Payout, changed bool, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		p, changed, err = s.PayoutTransitionTx(ctx, tx, params)
		return err
	})
	return p, changed, err
}

// paymentMoveTx applies m to the locked payment and says what it did:
// applied, ignored (nothing to change) or stale (a backward move or an old
// fact, from a provider). A move the actor may not make is an
// EInvalidTransition error, except from a provider, whose word about money
// is recorded, not refused: stale.
func (s *Store) paymentMoveTx(ctx context.Context, tx pgx.Tx, lp *lockedPayment, m paymentMove) (string, error) {
	p := lp.p
	refused := func() (string, error) {
		if m.Actor == ActorProvider {
			return OutcomeStale, nil
		}
		return "", invalidTransition(ObjectPayment, p.Status, m.Status)
	}
	switch {
	case m.Dispute != nil:
		if m.Actor == ActorMerchant {
			return refused()
		}
		if p.DisputeStatus != nil && *p.DisputeStatus == *m.Dispute {
			return OutcomeIgnored, nil
		}
		if !m.DisputeClosed && p.DisputeStatus != nil && slices.Contains(disputeClosedStatuses, *p.DisputeStatus) {
			return OutcomeStale, nil
		}
		next := *p
		next.DisputeStatus = m.Dispute
		event := EventPaymentDisputed
		if m.DisputeClosed {
			event = EventPaymentDisputeClosed
		}
		return OutcomeApplied, s.paymentSaveTx(ctx, tx, lp, &next, event)

	case m.RefundFailed != nil:
		if m.Actor == ActorMerchant {
			return refused()
		}
		if p.AmountRefunded == 0 {
			return OutcomeStale, nil // nothing refunded to undo
		}
		next := *p
		next.AmountRefunded = max(0, p.AmountRefunded-*m.RefundFailed)
		event := ""
		if p.Status == PaymentRefunded {
			next.Status, event = PaymentSucceeded, EventPaymentSucceeded
		}
		next.Review = newReview(ReviewRefundFailed, "a refund of %d %s failed: the customer did not get it back", *m.RefundFailed, p.Currency)
		return OutcomeApplied, s.paymentSaveTx(ctx, tx, lp, &next, event)

	case m.Status == PaymentRefunded || (m.Status == "" && m.AmountRefunded != nil):
		if m.Actor == ActorMerchant {
			return refused()
		}
		if slices.Contains([]string{PaymentPending, PaymentAuthorized, PaymentFailed, PaymentCancelled}, p.Status) {
			// A refund reported before the success (providers do not
			// promise order): the money was captured first.
			if _, err := s.paymentMoveTx(ctx, tx, lp, paymentMove{Actor: m.Actor, Status: PaymentSucceeded,
				AmountReceived: m.AmountReceived}); err != nil {
				return "", err
			}
			p = lp.p
		}
		if p.Status != PaymentSucceeded && p.Status != PaymentRefunded {
			return refused()
		}
		captured := p.Amount
		if p.AmountReceived != nil {
			captured = *p.AmountReceived
		}
		total := captured
		if m.AmountRefunded != nil {
			total = min(*m.AmountRefunded, captured)
		}
		switch {
		case total == p.AmountRefunded && (p.Status == PaymentRefunded) == (total == captured):
			return OutcomeIgnored, nil
		case total < p.AmountRefunded:
			if m.Actor == ActorProvider {
				return OutcomeStale, nil // an older refund total, delivered late
			}
			return "", invalidTransition(ObjectPayment, p.Status, m.Status)
		}
		next := *p
		next.AmountRefunded = total
		event := EventPaymentPartiallyRefunded
		if total == captured {
			next.Status, event = PaymentRefunded, EventPaymentRefunded
		}
		return OutcomeApplied, s.paymentSaveTx(ctx, tx, lp, &next, event)
	}

	if m.Status == p.Status {
		return OutcomeIgnored, nil
	}
	moves := paymentMoves
	if m.Actor == ActorMerchant {
		moves = paymentMerchantMoves
	}
	if !slices.Contains(moves[p.Status], m.Status) ||
		// A provider undoes a refund only by reporting it failed.
		m.Actor == ActorProvider && p.Status == PaymentRefunded {
		return refused()
	}
	next := *p
	next.Status = m.Status
	next.Review = nil
	switch m.Status {
	case PaymentFailed:
		if m.FailureReason != nil {
			next.FailureReason = m.FailureReason
		}
	case PaymentSucceeded:
		next.FailureReason = nil
		if p.Status == PaymentRefunded {
			next.AmountRefunded = 0
			if m.AmountRefunded != nil {
				next.AmountRefunded = *m.AmountRefunded
			}
		} else {
			received := p.Amount
			if m.AmountReceived != nil {
				received = *m.AmountReceived
			}
			next.AmountReceived = &received
		}
		if r := next.AmountReceived; r != nil && *r < p.Amount && p.Status != PaymentRefunded && m.Actor != ActorAdmin {
			next.Review = newReview(ReviewPartialCapture, "the provider captured %d of %d %s", *r, p.Amount, p.Currency)
		}
		if p.Status == PaymentCancelled && m.Actor != ActorAdmin {
			next.Review = newReview(ReviewCapturedAfterCancel,
				"the provider captured %d %s for this payment after it was cancelled here: refund the customer or honour the order",
				*next.AmountReceived, p.Currency)
		}
	default:
		if m.FailureReason != nil {
			next.FailureReason = m.FailureReason
		}
	}
	if next.Review == nil {
		next.Review = p.Review // an open review stays until resolved
	}
	return OutcomeApplied, s.paymentSaveTx(ctx, tx, lp, &next, eventType(ObjectPayment, next.Status))
}

// paymentSaveTx writes next over the locked payment and emits event (none
// when ""), then payment.requires_review when next brings a new review.
func (s *Store) paymentSaveTx(ctx context.Context, tx pgx.Tx, lp *lockedPayment, next *Payment, event string) error {
	before := lp.p
	p, err := scanPayment(tx.QueryRow(ctx, `UPDATE payments SET status = $2, failure_reason = $3,
			amount_received = $4, amount_refunded = $5, dispute_status = $6, review = $7, updated_at = now()
		WHERE id = $1 RETURNING `+paymentColumns.String(),
		next.ID, next.Status, next.FailureReason, next.AmountReceived, next.AmountRefunded, next.DisputeStatus, next.Review))
	if err != nil {
		return fmt.Errorf("updating payment %s: %w", next.ID, err)
	}
	lp.p = p
	if event != "" {
		if _, err := s.eventEmitTx(ctx, tx, p.MerchantID, event, p.ID, p); err != nil {
			return err
		}
	}
	if p.Status != before.Status {
		notePayment(tx, p, false) // metrics, once tx commits
	}
	if p.Review != nil && (before.Review == nil || *before.Review != *p.Review) {
		if _, err := s.eventEmitTx(ctx, tx, p.MerchantID, EventPaymentRequiresReview, p.ID, p); err != nil {
			return err
		}
	}
	return nil
}

// paymentReviewTx flags the locked payment for a human without moving it.
func (s *Store) paymentReviewTx(ctx context.Context, tx pgx.Tx, lp *lockedPayment, r *Review) error {
	next := *lp.p
	next.Review = r
	return s.paymentSaveTx(ctx, tx, lp, &next, "")
}

// payoutMoveTx is paymentMoveTx for payouts.
func (s *Store) payoutMoveTx(ctx context.Context, tx pgx.Tx, lp *lockedPayout, actor Actor, status string, failureReason *string) (string, error) {
	p := lp.p
	if status == p.Status {
		return OutcomeIgnored, nil
	}
	legal := actor != ActorMerchant && slices.Contains(payoutMoves[p.Status], status) ||
		actor == ActorAdmin && slices.Contains(payoutAdminMoves[p.Status], status)
	if !legal {
		switch {
		case actor != ActorProvider:
			return "", invalidTransition(ObjectPayout, p.Status, status)
		case p.Status == PayoutSucceeded && status == PayoutFailed:
			// The money left, then the provider says it failed: never
			// applied on its word alone.
			detail := "the provider reported this payout failed after it succeeded"
			if failureReason != nil {
				detail += ": " + *failureReason
			}
			return OutcomeConflict, s.payoutReviewTx(ctx, tx, lp, newReview(ReviewFailureAfterSuccess, "%s", detail))
		}
		return OutcomeStale, nil
	}
	next := *p
	next.Status = status
	switch status {
	case PayoutFailed:
		if failureReason != nil {
			next.FailureReason = failureReason
		}
	case PayoutSucceeded:
		next.FailureReason = nil
		if p.Status == PayoutFailed && actor != ActorAdmin {
			next.Review = newReview(ReviewLateSuccess, "the provider reported this payout succeeded after it had failed: the money left")
		}
	}
	return OutcomeApplied, s.payoutSaveTx(ctx, tx, lp, &next, eventType(ObjectPayout, status))
}

func (s *Store) payoutSaveTx(ctx context.Context, tx pgx.Tx, lp *lockedPayout, next *Payout, event string) error {
	before := lp.p
	p, err := scanPayout(tx.QueryRow(ctx, `UPDATE payouts SET status = $2, failure_reason = $3, review = $4,
			updated_at = now()
		WHERE id = $1 RETURNING `+payoutColumns.String(), next.ID, next.Status, next.FailureReason, next.Review))
	if err != nil {
		return fmt.Errorf("updating payout %s: %w", next.ID, err)
	}
	lp.p = p
	if event != "" {
		if _, err := s.eventEmitTx(ctx, tx, p.MerchantID, event, p.ID, p); err != nil {
			return err
		}
	}
	if p.Status != before.Status {
		notePayout(tx, p) // metrics, once tx commits
	}
	if p.Review != nil && (before.Review == nil || *before.Review != *p.Review) {
		if _, err := s.eventEmitTx(ctx, tx, p.MerchantID, EventPayoutRequiresReview, p.ID, p); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) payoutReviewTx(ctx context.Context, tx pgx.Tx, lp *lockedPayout, r *Review) error {
	next := *lp.p
	next.Review = r
	return s.payoutSaveTx(ctx, tx, lp, &next, "")
}

func invalidTransition(object, from, to string) error {
	return &Error{Code: EInvalidTransition, Param: "status",
		Message: fmt.Sprintf("a %s cannot move from %s to %s", object, from, to)}
}

// referenceClaimTx checks, in tx, that no other object of the gateway or
// provider holds ref, and holds the lock that makes "park an unmatched
// event under ref" and "create or bind an object with ref" take turns: an
// event arriving while its object is being created is either found by it
// or parked and then applied by it, never neither.
//
// Returns an EProviderReferenceTaken error.
func referenceClaimTx(ctx context.Context, tx pgx.Tx, object, provider, ref string) error {
	if err := referenceLockTx(ctx, tx, object, provider, ref); err != nil {
		return err
	}
	table, column := "payments", "gateway"
	if object == ObjectPayout {
		table, column = "payouts", "provider"
	}
	var taken bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+table+` WHERE `+column+` = $1 AND provider_reference = $2)`,
		provider, ref).Scan(&taken); err != nil {
		return fmt.Errorf("checking provider_reference: %w", err)
	}
	if taken {
		return errReferenceTaken(object, provider)
	}
	return nil
}

func referenceLockTx(ctx context.Context, tx pgx.Tx, object, provider, ref string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
		"provider_reference:"+object+":"+provider+":"+ref); err != nil {
		return fmt.Errorf("locking provider_reference: %w", err)
	}
	return nil
}

func errReferenceTaken(object, provider string) error {
	return &Error{Code: EProviderReferenceTaken, Param: "provider_reference",
		Message: fmt.Sprintf("this provider_reference is already bound to another %s %s", provider, object)}
}

// referenceTaken maps a unique violation of provider_reference (a race the
// claim's lock did not cover) to the domain error.
func referenceTaken(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		switch pgErr.ConstraintName {
		case "payments_provider_reference_key":
			return errReferenceTaken(ObjectPayment, "gateway")
		case "payouts_provider_reference_key":
			return errReferenceTaken(ObjectPayout, "provider")
		}
	}
	return err
}
