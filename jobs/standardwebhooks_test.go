package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
)

// swverifyDir holds a tiny node script that checks a delivery with the
// official standardwebhooks npm package. Its node_modules come from
// `npm ci --prefix jobs/testdata/swverify` (make test runs it); without
// them, or without node, the test skips.
var swverifyDir = filepath.Join("testdata", "swverify")

// swverifyNode returns node's path, or skips t when node or the package is
// missing.
func swverifyNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	if _, err := os.Stat(filepath.Join(swverifyDir, "node_modules", "standardwebhooks")); err != nil {
		t.Skip("standardwebhooks is not installed: npm ci --prefix jobs/testdata/swverify")
	}
	return node
}

// swverify runs verify.js on cases and returns what it says of each: the
// payload it verified, or the verifier's error.
func swverify(t *testing.T, node string, cases []swverifyCase) []any {
	t.Helper()
	cmd := exec.Command(node, "verify.js")
	cmd.Dir = swverifyDir
	input, err := json.Marshal(cases)
	require.NoError(t, err)
	cmd.Stdin = bytes.NewReader(input)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	require.NoError(t, err)
	var got []any
	require.NoError(t, json.Unmarshal(out, &got), "%s", out)
	return got
}

func TestDeliveryVerifiesWithStandardWebhooksPackage(t *testing.T) {
	t.Parallel()
	node := swverifyNode(t)
	b := setup(t)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	generated, secret := b.merchant(rc.URL)
	rotated, oldSecret := b.merchant(rc.URL)
	newSecret := b.rotate(rotated, 24*time.Hour)
	plain, _ := b.merchant("")
	_, err := b.pool.Exec(ctx, `UPDATE merchants SET webhook_url = $2, webhook_secret = 'secret-key' WHERE id = $1`, plain.ID, rc.URL)
	require.NoError(t, err)

	ids := map[string][]string{ // delivery id → the secrets that must verify it
		b.emit(generated).String(): {secret},
		b.emit(rotated).String():   {newSecret, oldSecret},
		b.emit(plain).String():     {"secret-key"},
	}
	b.start(testConfig())
	require.Eventually(t, func() bool { return len(rc.got()) == len(ids) }, 10*time.Second, 10*time.Millisecond)
	var cases []swverifyCase
	var want []any
	for _, r := range rc.got() {
		secrets := ids[r.header.Get("X-BoohPay-Delivery")]
		require.NotEmpty(t, secrets)
		for _, s := range secrets {
			cases = append(cases, newSwverifyCase(s, r))
			want = append(want, nil)
		}
		// A wrong secret must not verify: the check is not vacuous.
		cases = append(cases, newSwverifyCase("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", r))
		want = append(want, "WebhookVerificationError: No matching signature found")
	}
	got := swverify(t, node, cases)
	require.Equal(t, want, got)
	for id := range ids {
		b.waitStatus(uuid.MustParse(id), db.DeliverySucceeded, 10*time.Second)
	}
}

// swverifyCase is one delivery for verify.js, as the endpoint received it.
type swverifyCase struct {
	Secret  string            `json:"secret"`
	Body    string            `json:"body"`
	Headers map[string]string `json:"headers"`
}

func newSwverifyCase(secret string, r *received) swverifyCase {
	return swverifyCase{Secret: secret, Body: string(r.body), Headers: map[string]string{
		"webhook-id":        r.header.Get("webhook-id"),
		"webhook-timestamp": r.header.Get("webhook-timestamp"),
		"webhook-signature": r.header.Get("webhook-signature"),
	}}
}
