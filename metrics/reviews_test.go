package metrics_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/metrics"
)

// TestObjectsInReviewReadAtScrape: boohpay_objects_in_review{object} is
// exposed at 0 for both objects from the first scrape, and counts the rows
// whose review is set, whichever process set it.
func TestObjectsInReviewReadAtScrape(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{})
	text := string(b.scrape(t))
	require.Contains(t, text, "boohpay_objects_in_review{object=\"payment\"} 0\n")
	require.Contains(t, text, "boohpay_objects_in_review{object=\"payout\"} 0\n")

	b.exec(t, `INSERT INTO merchants (id, name) VALUES ('00000000-0000-0000-0000-00000000000a', 'M')`)
	b.exec(t, `INSERT INTO payments (id, merchant_id, amount, currency, gateway, status, review) VALUES
		(gen_random_uuid(), '00000000-0000-0000-0000-00000000000a', 1, 'XAF', 'stripe', 'PENDING',
			'{"reason":"amount_mismatch","detail":"x","at":"2026-11-27T10:00:00Z"}'),
		(gen_random_uuid(), '00000000-0000-0000-0000-00000000000a', 1, 'XAF', 'stripe', 'PENDING', NULL)`)
	text = string(b.scrape(t))
	require.Contains(t, text, "boohpay_objects_in_review{object=\"payment\"} 1\n")
	require.Contains(t, text, "boohpay_objects_in_review{object=\"payout\"} 0\n")
	require.Contains(t, text, "boohpay_collector_up{collector=\"objects_in_review\"} 1\n")
}
