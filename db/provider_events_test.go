package db_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

type applyBundle struct {
	t        *testing.T
	store    *db.Store
	merchant *db.Merchant
}

func setupApply(t *testing.T) *applyBundle {
	t.Helper()
	store := dbtest.Store(t)
	nm, err := store.MerchantCreate(context.Background(), "Apply Test", "https://merchant.example.com/hooks")
	require.NoError(t, err)
	return &applyBundle{t: t, store: store, merchant: nm.Merchant}
}

func (b *applyBundle) payment(gateway, ref string, amount int64) *db.Payment {
	b.t.Helper()
	params := db.PaymentCreateParams{MerchantID: b.merchant.ID, Amount: amount, Currency: "XAF", Gateway: gateway}
	if ref != "" {
		params.ProviderReference = &ref
	}
	return dbtest.Payment(b.t, b.store, params)
}

func (b *applyBundle) apply(in db.ProviderEventInput) *db.ProviderEventResult {
	b.t.Helper()
	if in.Provider == "" {
		in.Provider = db.ProviderStripe
	}
	if in.Key == "" {
		in.Key = "evt_" + uuid.NewString()
	}
	if in.Type == "" {
		in.Type = "payment_intent.succeeded"
	}
	if in.Object == "" {
		in.Object = db.ObjectPayment
	}
	in.Payload = []byte(`{"raw":true}`)
	res, err := b.store.ProviderEventApply(context.Background(), &in)
	require.NoError(b.t, err)
	return res
}

func (b *applyBundle) get(id uuid.UUID) *db.Payment {
	b.t.Helper()
	p, err := b.store.PaymentGet(context.Background(), b.merchant.ID, id)
	require.NoError(b.t, err)
	return p
}

func succeed(ref string, id uuid.UUID, amount string) db.ProviderEventInput {
	return db.ProviderEventInput{Action: db.ProviderActionSucceed, Ref: ref, OurID: id, Currency: "xaf",
		Unit: db.UnitMinor, Amount: amount, AmountReceived: amount}
}

// TestProviderEventFind: our id only within the provider's own objects,
// else the unique provider_reference; the first match binds the reference.
func TestProviderEventFind(t *testing.T) {
	t.Parallel()
	b := setupApply(t)
	stripe := b.payment("stripe", "pi_1", 100)
	moneroo := b.payment("moneroo", "py_1", 100)
	unbound := b.payment("stripe", "", 100)

	for _, tc := range []struct {
		name string
		id   uuid.UUID
		ref  string
		want uuid.UUID
	}{
		{"our id", stripe.ID, "", stripe.ID},
		{"ref", uuid.Nil, "pi_1", stripe.ID},
		{"unknown id, ref", uuid.New(), "pi_1", stripe.ID},
		{"another gateway's id is not ours to use", moneroo.ID, "pi_1", stripe.ID},
		{"another gateway's id alone", moneroo.ID, "", uuid.Nil},
		{"nothing", uuid.Nil, "", uuid.Nil},
	} {
		in := db.ProviderEventInput{Action: db.ProviderActionRecord, OurID: tc.id, Ref: tc.ref}
		res := b.apply(in)
		if tc.want == uuid.Nil {
			require.Equal(t, db.OutcomeUnmatched, res.Outcome, tc.name)
			continue
		}
		require.Equal(t, db.OutcomeIgnored, res.Outcome, tc.name)
		require.Equal(t, tc.want, res.ObjectID, tc.name)
	}

	// Found by our id, an unbound payment is bound to the provider's object.
	res := b.apply(db.ProviderEventInput{Action: db.ProviderActionRecord, OurID: unbound.ID, Ref: "pi_2"})
	require.Equal(t, unbound.ID, res.ObjectID)
	require.Equal(t, "pi_2", *b.get(unbound.ID).ProviderReference)
	res = b.apply(db.ProviderEventInput{Action: db.ProviderActionRecord, Ref: "pi_2"})
	require.Equal(t, unbound.ID, res.ObjectID)
}

// TestProviderEventParkedUntilCreated: an event for an object we do not
// have yet is parked, then applied, in order, when a payment is created
// with its provider_reference; nothing is applied twice.
func TestProviderEventParkedUntilCreated(t *testing.T) {
	t.Parallel()
	b := setupApply(t)
	require.Equal(t, db.OutcomeUnmatched, b.apply(db.ProviderEventInput{Action: db.ProviderActionFail, Ref: "pi_late",
		Type: "payment_intent.payment_failed", Currency: "xaf", Unit: db.UnitMinor, Amount: "700"}).Outcome)
	require.Equal(t, db.OutcomeUnmatched, b.apply(succeed("pi_late", uuid.Nil, "700")).Outcome)

	p := b.payment("stripe", "pi_late", 700)
	require.Equal(t, db.PaymentSucceeded, p.Status, "parked events applied at creation")
	require.Equal(t, int64(700), *p.AmountReceived)
	require.Equal(t, 3, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM events WHERE object_id = $1`, p.ID)) // pending, failed, succeeded
	require.Equal(t, 0, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM provider_events WHERE result = 'unmatched'`))
	require.Equal(t, 2, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM provider_events WHERE result = 'applied' AND object_id = $1`, p.ID))

	// A second payment cannot claim the reference.
	ref := "pi_late"
	err := b.store.InTx(context.Background(), func(tx pgx.Tx) error {
		_, err := b.store.PaymentCreateTx(context.Background(), tx, db.PaymentCreateParams{MerchantID: b.merchant.ID,
			Amount: 700, Currency: "XAF", Gateway: "stripe", ProviderReference: &ref})
		return err
	})
	require.Equal(t, db.EProviderReferenceTaken, db.ErrorCode(err))
}

// TestProviderEventConcurrentDuplicate: the same event delivered many
// times at once is applied once; the rest are duplicates.
func TestProviderEventConcurrentDuplicate(t *testing.T) {
	t.Parallel()
	b := setupApply(t)
	p := b.payment("stripe", "pi_dup", 500)
	in := succeed("pi_dup", uuid.Nil, "500")
	in.Provider, in.Key, in.Type, in.Object = db.ProviderStripe, "evt_dup", "payment_intent.succeeded", db.ObjectPayment
	var wg sync.WaitGroup
	outcomes := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			c := in
			res, err := b.store.ProviderEventApply(context.Background(), &c)
			if err != nil {
				t.Error(err)
				return
			}
			outcomes <- res.Outcome
		})
	}
	wg.Wait()
	close(outcomes)
	got := map[string]int{}
	for o := range outcomes {
		got[o]++
	}
	require.Equal(t, map[string]int{db.OutcomeApplied: 1, db.OutcomeDuplicate: 7}, got)
	require.Equal(t, 1, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM events WHERE object_id = $1 AND type = 'payment.succeeded'`, p.ID))
}

// TestProviderEventMajorUnits: amounts in major units are scaled by
// the currency's exponent; anything that is not a whole number of minor
// units is a mismatch.
func TestProviderEventMajorUnits(t *testing.T) {
	t.Parallel()
	b := setupApply(t)
	var p *db.Payment
	require.NoError(t, b.store.InTx(context.Background(), func(tx pgx.Tx) (err error) {
		p, err = b.store.PaymentCreateTx(context.Background(), tx, db.PaymentCreateParams{MerchantID: b.merchant.ID,
			Amount: 1250, Currency: "EUR", Gateway: "moneroo"})
		return err
	}))
	major := func(amount string) string {
		return b.apply(db.ProviderEventInput{Provider: "moneroo", Type: "payment.success", Action: db.ProviderActionSucceed,
			OurID: p.ID, Currency: "EUR", Unit: db.UnitMajor, Amount: amount, AtLeast: true}).Outcome
	}
	require.Equal(t, db.OutcomeAmountMismatch, major("12.4"))
	require.Equal(t, db.OutcomeAmountMismatch, major("12.505"))
	require.Equal(t, db.OutcomeApplied, major("12.50"))
	require.Equal(t, int64(1250), *b.get(p.ID).AmountReceived)
}

// TestProviderEventRacingItsObjectsCreation: an event and the creation of
// the payment it names, at the same moment, many rounds: the event is
// either found by the create's commit or parked and applied by it, never
// lost between the two.
func TestProviderEventRacingItsObjectsCreation(t *testing.T) {
	t.Parallel()
	b := setupApply(t)
	for round := range 30 {
		ref := fmt.Sprintf("pi_race_%d", round)
		start := make(chan struct{})
		var wg sync.WaitGroup
		var p *db.Payment
		var res *db.ProviderEventResult
		wg.Go(func() {
			<-start
			params := db.PaymentCreateParams{MerchantID: b.merchant.ID, Amount: 500, Currency: "XAF", Gateway: "stripe", ProviderReference: &ref}
			if err := b.store.InTx(context.Background(), func(tx pgx.Tx) (err error) {
				p, err = b.store.PaymentCreateTx(context.Background(), tx, params)
				return err
			}); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			<-start
			in := succeed(ref, uuid.Nil, "500")
			in.Provider, in.Key, in.Type, in.Object = db.ProviderStripe, "evt_"+ref, "payment_intent.succeeded", db.ObjectPayment
			var err error
			if res, err = b.store.ProviderEventApply(context.Background(), &in); err != nil {
				t.Error(err)
			}
		})
		close(start)
		wg.Wait()
		require.Contains(t, []string{db.OutcomeApplied, db.OutcomeUnmatched}, res.Outcome)
		require.Equal(t, db.PaymentSucceeded, b.get(p.ID).Status, "round %d: %s", round, res.Outcome)
		require.Equal(t, 1, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM events WHERE object_id = $1 AND type = 'payment.succeeded'`, p.ID))
	}
	require.Zero(t, dbtest.Count(t, b.store.Pool, `SELECT count(*) FROM provider_events WHERE result = 'unmatched'`))
}
