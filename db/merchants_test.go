package db_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

func TestMerchantCreate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)

	nm, err := store.MerchantCreate(ctx, "Acme", "https://acme.example.com/hooks")
	require.NoError(t, err)
	require.Equal(t, "Acme", nm.Merchant.Name)
	require.Equal(t, "https://acme.example.com/hooks", *nm.Merchant.WebhookURL)
	secret, ok := strings.CutPrefix(*nm.Merchant.WebhookSecret, "whsec_")
	require.True(t, ok, "secret %q", *nm.Merchant.WebhookSecret)
	key, err := base64.StdEncoding.DecodeString(secret)
	require.NoError(t, err)
	require.Len(t, key, 32)
	require.True(t, strings.HasPrefix(nm.APIKey, "bp_"))

	got, err := store.MerchantGetByAPIKey(ctx, nm.APIKey)
	require.NoError(t, err)
	require.Equal(t, nm.Merchant.ID, got.ID)
	require.Equal(t, nm.Merchant.WebhookSecret, got.WebhookSecret)
}

func TestMerchantCreateWithoutWebhookURL(t *testing.T) {
	t.Parallel()
	store := dbtest.Store(t)
	nm, err := store.MerchantCreate(context.Background(), "No Hooks", "")
	require.NoError(t, err)
	require.Nil(t, nm.Merchant.WebhookURL)
	require.Nil(t, nm.Merchant.WebhookSecret, "a secret is made when a URL is first set")
}

func TestAPIKeysAreStoredOnlyAsHashes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	nm, err := store.MerchantCreate(ctx, "Acme", "")
	require.NoError(t, err)

	var prefix string
	var hash []byte
	require.NoError(t, store.Pool.QueryRow(ctx,
		`SELECT prefix, key_hash FROM api_keys WHERE merchant_id = $1`, nm.Merchant.ID).Scan(&prefix, &hash))
	want := sha256.Sum256([]byte(nm.APIKey))
	require.Equal(t, want[:], hash)
	require.True(t, strings.HasPrefix(nm.APIKey, prefix))
	require.Less(t, len(prefix), len(nm.APIKey)/2, "the prefix identifies a key without revealing it")

	// No column of any row holds the key in clear.
	var leaks int
	require.NoError(t, store.Pool.QueryRow(ctx,
		`SELECT count(*) FROM api_keys k WHERE strpos(k::text, $1) > 0`, nm.APIKey).Scan(&leaks))
	require.Zero(t, leaks)
	require.NoError(t, store.Pool.QueryRow(ctx,
		`SELECT count(*) FROM merchants m WHERE strpos(m::text, $1) > 0`, nm.APIKey).Scan(&leaks))
	require.Zero(t, leaks)
}

func TestAPIKeysAreDistinct(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	seen := map[string]bool{}
	for range 20 {
		nm, err := store.MerchantCreate(ctx, "M", "")
		require.NoError(t, err)
		require.False(t, seen[nm.APIKey])
		seen[nm.APIKey] = true
		require.GreaterOrEqual(t, len(nm.APIKey), len("bp_")+32, "at least 192 random bits")
	}
}

func TestMerchantGetByAPIKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	a, err := store.MerchantCreate(ctx, "A", "")
	require.NoError(t, err)
	b, err := store.MerchantCreate(ctx, "B", "")
	require.NoError(t, err)

	got, err := store.MerchantGetByAPIKey(ctx, a.APIKey)
	require.NoError(t, err)
	require.Equal(t, a.Merchant.ID, got.ID)
	got, err = store.MerchantGetByAPIKey(ctx, b.APIKey)
	require.NoError(t, err)
	require.Equal(t, b.Merchant.ID, got.ID)

	for _, key := range []string{"", "bp_", a.APIKey + "x", a.APIKey[:len(a.APIKey)-1], strings.ToUpper(a.APIKey)} {
		_, err := store.MerchantGetByAPIKey(ctx, key)
		require.ErrorIs(t, err, db.ErrNotFound, "key %q", key)
	}
}

func TestAPIKeyLastUsedAt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	nm, err := store.MerchantCreate(ctx, "A", "")
	require.NoError(t, err)
	lastUsed := func() *time.Time {
		var at *time.Time
		require.NoError(t, store.Pool.QueryRow(ctx,
			`SELECT last_used_at FROM api_keys WHERE merchant_id = $1`, nm.Merchant.ID).Scan(&at))
		return at
	}

	require.Nil(t, lastUsed())
	_, err = store.MerchantGetByAPIKey(ctx, nm.APIKey)
	require.NoError(t, err)
	first := lastUsed()
	require.NotNil(t, first)

	// Within the minute it is not rewritten: authentication stays a read.
	_, err = store.MerchantGetByAPIKey(ctx, nm.APIKey)
	require.NoError(t, err)
	require.Equal(t, *first, *lastUsed())

	_, err = store.Pool.Exec(ctx, `UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE merchant_id = $1`, nm.Merchant.ID)
	require.NoError(t, err)
	_, err = store.MerchantGetByAPIKey(ctx, nm.APIKey)
	require.NoError(t, err)
	var fresh bool
	require.NoError(t, store.Pool.QueryRow(ctx,
		`SELECT last_used_at > now() - interval '1 minute' FROM api_keys WHERE merchant_id = $1`, nm.Merchant.ID).Scan(&fresh))
	require.True(t, fresh, "refreshed once older than a minute")
}
