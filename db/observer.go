package db

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Observer hears about payment and payout statuses once they are committed:
// a new object (PENDING, created) or a transition. It is never told about a
// rolled-back transaction. metrics.Metrics implements it.
//
// Calls happen after the commit, on the committing goroutine: keep them cheap.
type Observer interface {
	PaymentCommitted(gateway, status, currency string, amount int64, created bool)
	PayoutCommitted(provider, status string)
}

// SetObserver makes the Store report committed status changes to o. Call it
// before the Store is shared.
func (s *Store) SetObserver(o Observer) { s.observer = o }

// observedTx is the pgx.Tx that InTx hands its callback. The *Tx functions
// that create or move a payment or payout note the change on it
// (noteCommitted), and InTx reports the notes to the Observer only once the
// transaction has committed. So no call site has to remember metrics, and a
// rollback reports nothing.
//
// A savepoint (tx.Begin inside InTx) is an observedTx too: its notes join its
// parent's when it is released, and are dropped when it is rolled back.
// A change made in a transaction that did not come from InTx is not observed.
type observedTx struct {
	pgx.Tx
	parent *observedTx
	notes  []func(Observer)
}

// Begin starts a savepoint whose notes join t's only if it commits.
func (t *observedTx) Begin(ctx context.Context) (pgx.Tx, error) {
	inner, err := t.Tx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &observedTx{Tx: inner, parent: t}, nil
}

// Commit releases a savepoint and hands its notes to the parent. (InTx
// commits the top-level transaction itself.)
func (t *observedTx) Commit(ctx context.Context) error {
	if err := t.Tx.Commit(ctx); err != nil {
		return err
	}
	if t.parent != nil {
		t.parent.notes = append(t.parent.notes, t.notes...)
		t.notes = nil
	}
	return nil
}

// noteCommitted records note to be told to the Observer if tx commits.
func noteCommitted(tx pgx.Tx, note func(Observer)) {
	if t, ok := tx.(*observedTx); ok {
		t.notes = append(t.notes, note)
	}
}

func notePayment(tx pgx.Tx, p *Payment, created bool) {
	gateway, status, currency, amount := p.Gateway, p.Status, p.Currency, p.Amount
	noteCommitted(tx, func(o Observer) { o.PaymentCommitted(gateway, status, currency, amount, created) })
}

func notePayout(tx pgx.Tx, p *Payout) {
	provider, status := p.Provider, p.Status
	noteCommitted(tx, func(o Observer) { o.PayoutCommitted(provider, status) })
}
