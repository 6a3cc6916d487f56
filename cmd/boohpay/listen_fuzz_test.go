package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/signing"
)

// FuzzVerifySignatures checks `boohpay webhooks listen`'s verification of
// both signature headers against a plain reading of the signing scheme written here,
// independently of package signing: for any secret, event id, body, clock
// skew and header, it never panics; it accepts exactly the headers that list
// the right signature (a stale or future timestamp, beyond 5 minutes, never
// passes); the right signature passes among others (a rotation); and it does
// not pass for a body changed by one byte.
// Seeds: testdata/fuzz/FuzzVerifySignatures and the f.Add calls below.
func FuzzVerifySignatures(f *testing.F) {
	secret := signing.NewSecret()
	body := []byte(`{"id":"0190a0a0-0000-7000-8000-000000000000","event":"payment.succeeded","timestamp":"2026-01-01T00:00:00Z","data":{}}`)
	f.Add(secret, "0190a0a0-0000-7000-8000-000000000000", body, int64(0), "")
	f.Add("secret-key", "evt", body, int64(-30), "v1,AAAA v1,BBBB")
	f.Add("whsec_notbase64!", "", []byte{}, int64(299), "v1,")
	f.Add("whsec_", "id", []byte("x"), int64(-301), "sha256=00")
	f.Add("", "id", []byte("x"), int64(1)<<40, "  ")
	f.Fuzz(func(t *testing.T, secret, id string, body []byte, skew int64, header string) {
		now := time.Now().Unix()
		skew = max(min(skew, 1<<40), -(1 << 40)) // a timestamp far off, without overflowing
		ts := now + skew
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		h.Set("webhook-signature", header)

		want := standardSig(secret, id, ts, body)
		got := verifyStandard(secret, h, body)
		inWindow := skew > -290 && skew < 290 // 10 s of margin around 5 minutes for a slow run
		outOfWindow := skew < -310 || skew > 310
		listed := slices.Contains(strings.Fields(header), want)
		if inWindow {
			require.Equal(t, listed, got, "header %q, want %q", header, want)
		} else if outOfWindow {
			require.False(t, got, "a timestamp %d s off passed", skew)
		}

		// The right signature passes among others, and only for its body.
		h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString([]byte("rotated-out"))+" "+want)
		if ok := verifyStandard(secret, h, body); inWindow {
			require.True(t, ok, "the right signature among others")
		} else if outOfWindow {
			require.False(t, ok)
		}
		require.False(t, verifyStandard(secret, h, append(slices.Clone(body), 'x')))

		// X-BoohPay-Signature: sha256=<hex HMAC of the body, keyed with the secret's bytes>.
		legacy := legacySig(secret, body)
		require.Equal(t, slices.Contains(strings.Fields(header), legacy), anyEqual(header, legacy))
		require.Equal(t, legacy, signing.Legacy(secret, body))
		require.True(t, anyEqual("sha256=00 "+legacy, signing.Legacy(secret, body)))
		require.False(t, anyEqual(legacy, signing.Legacy(secret, append(slices.Clone(body), 'x'))))
	})
}

// standardSig is the Standard Webhooks webhook-signature for one secret: key = the
// base64 after whsec_ for secrets of that form, else the secret's bytes.
func standardSig(secret, id string, ts int64, body []byte) string {
	key := []byte(secret)
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if decoded, err := base64.StdEncoding.DecodeString(rest); err == nil {
			key = decoded
		}
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func legacySig(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
