// Package signing owns how BoohPay signs outbound webhooks: the old
// X-BoohPay-Signature scheme and Standard Webhooks, and the secrets both use.
// The delivery worker signs with it; `boohpay webhooks listen` verifies with it.
package signing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
)

const secretPrefix = "whsec_"

// NewSecret returns a fresh signing secret: whsec_ + base64 of 32 random bytes.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// Key returns the HMAC key Standard Webhooks uses for secret: the decoded
// bytes after whsec_, or the secret's own bytes for any other string (a
// secret an operator set by SQL, as in the old service).
func Key(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, secretPrefix); ok {
		if key, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return key
		}
	}
	return []byte(secret)
}

// Legacy returns the old service's X-BoohPay-Signature value for body:
// "sha256=" + hex HMAC-SHA256 keyed with the secret's UTF-8 bytes as stored.
func Legacy(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Standard returns one Standard Webhooks signature, "v1,<base64>", over
// "{id}.{timestamp}.{body}".
func Standard(secret, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, Key(secret))
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
