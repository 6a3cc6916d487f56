package db_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

func providerEventParams(key string) db.ProviderEventCreateParams {
	return db.ProviderEventCreateParams{Provider: "stripe", EventKey: key, EventType: "payment_intent.succeeded",
		Payload: []byte(`{"id":"` + key + `"}`)}
}

// TestProviderEventCreateOnce: a second insert of (provider, key) creates
// nothing; the same key at another provider is another event.
func TestProviderEventCreateOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)

	create := func(p db.ProviderEventCreateParams) (created bool) {
		require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) (err error) {
			var id int64
			id, created, err = store.ProviderEventCreateTx(ctx, tx, p)
			if err != nil || !created {
				return err
			}
			return store.ProviderEventSetResultTx(ctx, tx, id, db.ProviderEventIgnored, nil)
		}))
		return created
	}
	require.True(t, create(providerEventParams("evt_1")))
	require.False(t, create(providerEventParams("evt_1")))
	other := providerEventParams("evt_1")
	other.Provider = "moneroo"
	require.True(t, create(other))

	e, err := store.ProviderEventGet(ctx, "stripe", "evt_1")
	require.NoError(t, err)
	require.Equal(t, db.ProviderEventIgnored, e.Result)
	require.Equal(t, `{"id":"evt_1"}`, e.Payload)
	require.Nil(t, e.ObjectID)
	_, err = store.ProviderEventGet(ctx, "stripe", "evt_2")
	require.ErrorIs(t, err, db.ErrNotFound)
}

// TestProviderEventConcurrentDuplicate: the second insert of a key waits on
// the unique index for the first transaction. If the first commits, the
// second creates nothing; if it rolls back, the second creates the row.
func TestProviderEventConcurrentDuplicate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)

	for _, firstCommits := range []bool{true, false} {
		key := "evt_concurrent_" + uuid.NewString()
		first, err := store.Pool.Begin(ctx)
		require.NoError(t, err)
		_, created, err := store.ProviderEventCreateTx(ctx, first, providerEventParams(key))
		require.NoError(t, err)
		require.True(t, created)

		second := make(chan bool, 1)
		go func() {
			var created bool
			err := store.InTx(ctx, func(tx pgx.Tx) (err error) {
				_, created, err = store.ProviderEventCreateTx(ctx, tx, providerEventParams(key))
				return err
			})
			if err != nil {
				t.Error(err)
			}
			second <- created
		}()
		// While the first transaction is open the second cannot answer; its
		// answer, below, depends on how the first one ends.
		select {
		case <-second:
			t.Fatal("the duplicate insert did not wait for the first transaction")
		case <-time.After(200 * time.Millisecond):
		}
		if firstCommits {
			require.NoError(t, first.Commit(ctx))
		} else {
			require.NoError(t, first.Rollback(ctx))
		}
		require.Equal(t, !firstCommits, <-second, "first commits: %t", firstCommits)
	}
}

// TestPaymentFindForProvider: our id first, within the gateway only, then
// the provider's reference.
func TestPaymentFindForProvider(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	nm, err := store.MerchantCreate(ctx, "Finder", "")
	require.NoError(t, err)
	create := func(gateway, ref string) *db.Payment {
		var p *db.Payment
		require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) (err error) {
			p, err = store.PaymentCreateTx(ctx, tx, db.PaymentCreateParams{MerchantID: nm.Merchant.ID, Amount: 100,
				Currency: "XAF", Gateway: gateway, ProviderReference: &ref})
			return err
		}))
		return p
	}
	stripe := create("stripe", "pi_1")
	moneroo := create("moneroo", "py_1")

	for _, tc := range []struct {
		gateway string
		id      uuid.UUID
		ref     string
		want    *db.Payment
	}{
		{"stripe", stripe.ID, "", stripe},
		{"stripe", stripe.ID, "pi_other", stripe},
		{"stripe", uuid.Nil, "pi_1", stripe},
		{"stripe", uuid.New(), "pi_1", stripe},
		{"stripe", moneroo.ID, "pi_1", stripe}, // another gateway's id is not ours to use
		{"stripe", moneroo.ID, "", nil},
		{"moneroo", uuid.Nil, "pi_1", nil},
		{"stripe", uuid.Nil, "", nil},
	} {
		got, err := store.PaymentFindForProvider(ctx, tc.gateway, tc.id, tc.ref)
		if tc.want == nil {
			require.True(t, errors.Is(err, db.ErrNotFound), "%+v: %v", tc, err)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want.ID, got.ID)
	}
}

func TestPayoutFindForProvider(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	nm, err := store.MerchantCreate(ctx, "Finder", "")
	require.NoError(t, err)
	ref := "po_1"
	var po *db.Payout
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) (err error) {
		po, err = store.PayoutCreateTx(ctx, tx, db.PayoutCreateParams{MerchantID: nm.Merchant.ID, Amount: 100,
			Currency: "XAF", Provider: "moneroo", ProviderReference: &ref})
		return err
	}))
	got, err := store.PayoutFindForProvider(ctx, "moneroo", po.ID, "")
	require.NoError(t, err)
	require.Equal(t, po.ID, got.ID)
	got, err = store.PayoutFindForProvider(ctx, "moneroo", uuid.Nil, "po_1")
	require.NoError(t, err)
	require.Equal(t, po.ID, got.ID)
	_, err = store.PayoutFindForProvider(ctx, "stripe", po.ID, "po_1")
	require.ErrorIs(t, err, db.ErrNotFound)
}
