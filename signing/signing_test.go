package signing

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The expected values come from outside this package: the Standard Webhooks
// specification's example (also what the official standardwebhooks npm
// package computes), and `openssl dgst -sha256 -hmac secret-key`.
func TestStandardMatchesTheSpecExample(t *testing.T) {
	t.Parallel()
	require.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
		Standard("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`)))
}

func TestPlainSecretsSignWithTheirOwnBytes(t *testing.T) {
	t.Parallel()
	require.Equal(t, "v1,lw6imERnBOgPJSactsqPD6R9UINRuwbX50zrq5itlyE=", Standard("secret-key", "msg_1", 1700000000, []byte(`{"a":1}`)))
	require.Equal(t, "sha256=b55a81137d0df4a3c2585b246e9dbc7e957811e4fd6613fdab592f15687ec523", Legacy("secret-key", []byte(`{"a":1}`)))
	// A whsec_ secret whose rest is not base64 is keyed with its own bytes.
	require.Equal(t, []byte("whsec_not base64!"), Key("whsec_not base64!"))
}

func TestNewSecretIsWhsecAnd32RandomBytes(t *testing.T) {
	t.Parallel()
	a, b := NewSecret(), NewSecret()
	require.NotEqual(t, a, b)
	rest, ok := strings.CutPrefix(a, "whsec_")
	require.True(t, ok)
	key, err := base64.StdEncoding.DecodeString(rest)
	require.NoError(t, err)
	require.Len(t, key, 32)
	require.Equal(t, key, Key(a))
}
