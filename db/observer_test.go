package db_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// recorder is an Observer that remembers what it was told.
type recorder struct {
	mu    sync.Mutex
	heard []string
}

func (r *recorder) PaymentCommitted(gateway, status, currency string, amount int64, created bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heard = append(r.heard, fmt.Sprintf("payment %s %s %s %d created=%t", gateway, status, currency, amount, created))
}

func (r *recorder) PayoutCommitted(provider, status string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heard = append(r.heard, fmt.Sprintf("payout %s %s", provider, status))
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.heard
	r.heard = nil
	return h
}

func setupObserved(t *testing.T) (*db.Store, *recorder, *db.Merchant) {
	t.Helper()
	store := dbtest.Store(t)
	rec := &recorder{}
	store.SetObserver(rec)
	nm, err := store.MerchantCreate(context.Background(), "Observed", "https://merchant.example.com/hooks")
	require.NoError(t, err)
	return store, rec, nm.Merchant
}

func TestObserverHearsCommittedChangesOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, rec, m := setupObserved(t)

	var p *db.Payment
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		p, err = store.PaymentCreateTx(ctx, tx, db.PaymentCreateParams{MerchantID: m.ID, Amount: 5000, Currency: "XAF", Gateway: "sandbox"})
		require.Empty(t, rec.take(), "nothing is reported before the commit")
		return err
	}))
	require.Equal(t, []string{"payment sandbox PENDING XAF 5000 created=true"}, rec.take())

	// A transition whose transaction rolls back is never reported.
	errAbort := errors.New("abort")
	err := store.InTx(ctx, func(tx pgx.Tx) error {
		if _, _, err := store.PaymentTransitionTx(ctx, tx, db.TransitionParams{Actor: db.ActorSandbox, ID: p.ID, Status: db.PaymentSucceeded}); err != nil {
			return err
		}
		return errAbort
	})
	require.ErrorIs(t, err, errAbort)
	require.Empty(t, rec.take())

	// A no-op transition is not a change; a real one is reported once.
	_, changed, err := store.PaymentTransition(ctx, db.TransitionParams{Actor: db.ActorSandbox, ID: p.ID, Status: db.PaymentPending})
	require.NoError(t, err)
	require.False(t, changed)
	require.Empty(t, rec.take())
	_, _, err = store.PaymentTransition(ctx, db.TransitionParams{Actor: db.ActorSandbox, ID: p.ID, Status: db.PaymentSucceeded})
	require.NoError(t, err)
	require.Equal(t, []string{"payment sandbox SUCCEEDED XAF 5000 created=false"}, rec.take())

	// An illegal move fails its transaction: nothing to report.
	_, _, err = store.PaymentTransition(ctx, db.TransitionParams{Actor: db.ActorSandbox, ID: p.ID, Status: db.PaymentFailed})
	require.Error(t, err)
	require.Empty(t, rec.take())
}

func TestObserverHearsPayoutsAndReleasedSavepointsOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, rec, m := setupObserved(t)

	var po *db.Payout
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		po, err = store.PayoutCreateTx(ctx, tx, db.PayoutCreateParams{MerchantID: m.ID, Amount: 700, Currency: "XOF", Provider: "moneroo"})
		if err != nil {
			return err
		}
		// A savepoint rolled back takes its change with it...
		sp, err := tx.Begin(ctx)
		if err != nil {
			return err
		}
		if _, _, err := store.PayoutTransitionTx(ctx, sp, db.TransitionParams{Actor: db.ActorSandbox, ID: po.ID, Status: db.PayoutFailed}); err != nil {
			return err
		}
		if err := sp.Rollback(ctx); err != nil {
			return err
		}
		// ...a released one keeps it.
		return pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
			_, _, err := store.PayoutTransitionTx(ctx, sp, db.TransitionParams{Actor: db.ActorSandbox, ID: po.ID, Status: db.PayoutProcessing})
			return err
		})
	}))
	require.Equal(t, []string{"payout moneroo PENDING", "payout moneroo PROCESSING"}, rec.take())

	_, _, err := store.PayoutTransition(ctx, db.TransitionParams{Actor: db.ActorSandbox, ID: po.ID, Status: db.PayoutSucceeded})
	require.NoError(t, err)
	require.Equal(t, []string{"payout moneroo SUCCEEDED"}, rec.take())
}
