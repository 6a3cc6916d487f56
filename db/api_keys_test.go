package db_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// TestAPIKeyRevokeLastTwoConcurrently: two revocations racing for a
// merchant's last two keys leave exactly one. The count of active keys must
// be read after the merchant's lock is held: read in the locking statement,
// from its earlier snapshot, both saw two and both revoked.
func TestAPIKeyRevokeLastTwoConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	for range 10 {
		nm, err := store.MerchantCreate(ctx, "Keys", "")
		require.NoError(t, err)
		first, err := store.APIKeyGetByKey(ctx, nm.APIKey)
		require.NoError(t, err)
		second, err := store.APIKeyCreate(ctx, nm.Merchant.ID, nil)
		require.NoError(t, err)

		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, id := range []uuid.UUID{first.ID, second.ID} {
			wg.Go(func() { _, errs[i] = store.APIKeyRevokeByID(ctx, nm.Merchant.ID, id) })
		}
		wg.Wait()
		require.ElementsMatch(t, []error{nil, db.ErrLastAPIKey}, errs)
		keys, _, err := store.APIKeyList(ctx, nm.Merchant.ID, db.ListParams{Limit: 10})
		require.NoError(t, err)
		require.Len(t, keys, 1)
	}
}
