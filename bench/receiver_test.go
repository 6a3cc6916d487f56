package main

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/signing"
)

// The receiver's own reading of the signature schemes agrees with what the worker signs.
func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"evt","event":"payment.pending","timestamp":"2026-01-01T00:00:00Z","data":{"id":"p"}}`)
	now := time.Now()
	headers := func(secrets []string, id string, ts int64, body []byte) http.Header {
		h := http.Header{}
		var legacy, standard string
		for i, s := range secrets {
			if i > 0 {
				legacy, standard = legacy+" ", standard+" "
			}
			legacy += signing.Legacy(s, body)
			standard += signing.Standard(s, id, ts, body)
		}
		h.Set("X-BoohPay-Signature", legacy)
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		h.Set("webhook-signature", standard)
		return h
	}
	secret, old := signing.NewSecret(), signing.NewSecret()

	require.NoError(t, verify(secret, headers([]string{secret}, "evt", now.Unix(), body), body, now))
	require.NoError(t, verify("plain-secret-set-by-sql", headers([]string{"plain-secret-set-by-sql"}, "evt", now.Unix(), body), body, now))
	// A rotation's grace period: either secret verifies.
	require.NoError(t, verify(old, headers([]string{secret, old}, "evt", now.Unix(), body), body, now))

	require.Error(t, verify(secret, headers([]string{old}, "evt", now.Unix(), body), body, now), "another secret")
	require.Error(t, verify(secret, headers([]string{secret}, "evt", now.Unix(), body), append(body, ' '), now), "another body")
	require.Error(t, verify(secret, headers([]string{secret}, "evt", now.Add(-time.Hour).Unix(), body), body, now), "an old timestamp")
	h := headers([]string{secret}, "evt", now.Unix(), body)
	h.Set("webhook-id", "other")
	require.Error(t, verify(secret, h, body, now), "another webhook-id")
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	ds := make([]time.Duration, 1000)
	for i := range ds {
		ds[i] = time.Duration(1000-i) * time.Millisecond // unsorted on purpose
	}
	l := summarize(ds, 3)
	require.Equal(t, 1000, l.Count)
	require.Equal(t, 3, l.Missing)
	require.Equal(t, 500.0, l.P50)
	require.Equal(t, 900.0, l.P90)
	require.Equal(t, 990.0, l.P99)
	require.Equal(t, 1000.0, l.Max)
	require.Equal(t, latency{}, summarize(nil, 0))
}
