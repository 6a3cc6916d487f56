package main

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/boohpay/boohpay/db/dbtest"
)

// TestFillLedgerKeepsTheSchema fills a small ledger the fast way (indexes
// dropped, triggers and foreign key checks off) and checks that it leaves
// exactly the migrated indexes, rows that satisfy every foreign key, and
// the data shape growth mode promises.
func TestFillLedgerKeepsTheSchema(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := dbtest.URL(t)
	store := dbtest.Open(t, url)
	var merchants []uuid.UUID
	for _, name := range []string{"growth a", "growth b", "growth c"} {
		m, err := store.MerchantCreate(ctx, name, "https://merchant.example.com/hooks")
		if err != nil {
			t.Fatal(err)
		}
		merchants = append(merchants, m.Merchant.ID)
	}
	conn, err := connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	migrated, err := ledgerIndexes(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}

	const n = 700 // in chunks of 200: four, over both fill connections
	run, err := fillLedger(ctx, url, merchants, n, 200, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	rebuilt, err := ledgerIndexes(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(rebuilt) != len(migrated) {
		t.Fatalf("indexes after the fill: %v\nmigrated: %v", rebuilt, migrated)
	}
	for i := range migrated {
		if rebuilt[i] != migrated[i] {
			t.Errorf("index %d after the fill: %+v\nmigrated: %+v", i, rebuilt[i], migrated[i])
		}
	}
	if len(run.Indexes) == 0 {
		t.Error("the fill dropped no index")
	}

	for _, c := range []struct {
		what  string
		query string
		want  int
	}{
		{"events", `SELECT count(*) FROM events`, n},
		{"delivered deliveries", `SELECT count(*) FROM webhook_deliveries WHERE status = 'SUCCEEDED' AND delivered_at IS NOT NULL`, n},
		{"attempts", `SELECT count(*) FROM webhook_delivery_attempts`, 3 * n},
		{"deliveries without their merchant's default endpoint", `SELECT count(*) FROM webhook_deliveries d
			WHERE NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = d.endpoint_id AND e.merchant_id = d.merchant_id AND e.is_default)`, 0},
		{"deliveries without their event", `SELECT count(*) FROM webhook_deliveries d
			WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = d.event_id AND e.merchant_id = d.merchant_id)`, 0},
		{"attempts without their delivery", `SELECT count(*) FROM webhook_delivery_attempts a
			WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.id = a.delivery_id)`, 0},
		{"deliveries outside the last 30 days", `SELECT count(*) FROM webhook_deliveries
			WHERE created_at < now() - interval '30 days 1 minute' OR created_at > now()`, 0},
		// Time-ordered ids: id order is created_at order.
		{"deliveries whose id order is not their time order", `SELECT count(*) FROM (
			SELECT created_at < lag(created_at) OVER (ORDER BY id) AS back FROM webhook_deliveries) s WHERE back`, 0},
		{"days of the 30 holding no delivery", `SELECT greatest(0, 30 - count(DISTINCT date_trunc('day', now() - created_at))) FROM webhook_deliveries`, 0},
		{"deliveries of the last merchant in the newer half", `SELECT count(*) FROM webhook_deliveries
			WHERE merchant_id = $1 AND created_at > now() - interval '15 days' + interval '1 minute'`, 0},
		{"merchants without deliveries", `SELECT count(*) FROM merchants m WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.merchant_id = m.id)`, 0},
	} {
		var args []any
		if strings.Contains(c.query, "$1") {
			args = append(args, merchants[len(merchants)-1])
		}
		if got := dbtest.Count(t, conn, c.query, args...); got != c.want {
			t.Errorf("%s: %d, want %d", c.what, got, c.want)
		}
	}
}

// TestLedgerOfExplainsTheServiceQueries runs the growth mode's plan
// recording on a small filled ledger: every list query db.Store sends is
// recorded and explained with its own arguments.
func TestLedgerOfExplainsTheServiceQueries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := dbtest.URL(t)
	store := dbtest.Open(t, url)
	var merchants []uuid.UUID
	for _, name := range []string{"plans a", "plans b", "plans quiet"} {
		m, err := store.MerchantCreate(ctx, name, "https://merchant.example.com/hooks")
		if err != nil {
			t.Fatal(err)
		}
		merchants = append(merchants, m.Merchant.ID)
	}
	if _, err := fillLedger(ctx, url, merchants, 300, 300, t.Logf); err != nil {
		t.Fatal(err)
	}
	l, err := ledgerOf(ctx, url, merchants[0], merchants[2])
	if err != nil {
		t.Fatal(err)
	}
	if l.Deliveries != 300 || l.Attempts != 900 {
		t.Errorf("ledger of %d deliveries, %d attempts; want 300, 900", l.Deliveries, l.Attempts)
	}
	names := map[string]bool{}
	for _, p := range l.Plans {
		names[p.Name] = true
		if len(p.Lines) == 0 || len(p.Scans) == 0 || p.Buffers == 0 {
			t.Errorf("%s: plan %q, scans %v, %d buffers", p.Name, p.Lines, p.Scans, p.Buffers)
		}
	}
	for _, want := range []string{"sweep select", "sweep select, again", "sweep select, after VACUUM", "deliveries list", "deliveries list: attempts",
		"deliveries list, status=FAILED", "deliveries list, endpoint_id=", "deliveries list, event_id=",
		"a delivery with its attempts", "a delivery with its attempts: attempts", "events list",
		"deliveries list, merchant quiet for 15 days", "events list, merchant quiet for 15 days"} {
		if !names[want] {
			t.Errorf("no plan for %q (have %v)", want, names)
		}
	}
}
