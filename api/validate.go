package api

import (
	"fmt"

	"github.com/boohpay/boohpay/db"
	"strings"
	"unicode/utf8"
)

// Bounds on merchant-supplied fields.
const (
	maxAmount         = 999_999_999_999 // minor units
	maxReferenceLen   = 255
	maxDescriptionLen = 1000
	maxMetadataKeys   = 50
	maxMetadataKeyLen = 40
	maxMetadataValLen = 500
)

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

func checkAmount(amount *int64) error {
	switch {
	case amount == nil:
		return invalidField("amount", "amount is required")
	case *amount <= 0:
		return invalidField("amount", "amount must be a positive integer in the currency's minor unit")
	case *amount > maxAmount:
		return invalidField("amount", fmt.Sprintf("amount must be at most %d", int64(maxAmount)))
	}
	return nil
}

func checkCurrency(currency string) error {
	if currency == "" {
		return invalidField("currency", "currency is required")
	}
	if !db.CurrencyKnown(currency) {
		return invalidField("currency", fmt.Sprintf("currency %q is not a supported upper-case ISO 4217 code", clip(currency)))
	}
	return nil
}

func checkChoice(param, v string, set []string) error {
	if v == "" {
		return invalidField(param, param+" is required")
	}
	if !oneOf(v, set) {
		return invalidField(param, fmt.Sprintf("%s must be one of %s", param, strings.Join(set, ", ")))
	}
	return nil
}

// checkText bounds an optional string field and refuses control characters
// other than newlines and tabs.
func checkText(param string, v *string, maxLen int) error {
	if v == nil {
		return nil
	}
	if utf8.RuneCountInString(*v) > maxLen {
		return invalidField(param, fmt.Sprintf("%s must be at most %d characters", param, maxLen))
	}
	for _, r := range *v {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return invalidField(param, param+" must not contain control characters")
		}
	}
	return nil
}

func checkMetadata(md map[string]string) error {
	if len(md) > maxMetadataKeys {
		return invalidField("metadata", fmt.Sprintf("metadata may hold at most %d keys", maxMetadataKeys))
	}
	for k, v := range md {
		if k == "" || utf8.RuneCountInString(k) > maxMetadataKeyLen {
			return invalidField("metadata", fmt.Sprintf("metadata keys must be 1 to %d characters", maxMetadataKeyLen))
		}
		if utf8.RuneCountInString(v) > maxMetadataValLen {
			return invalidField("metadata."+clip(k), fmt.Sprintf("metadata.%s must be at most %d characters", clip(k), maxMetadataValLen))
		}
	}
	return nil
}

// clip keeps echoed user input short in error messages.
func clip(s string) string {
	if utf8.RuneCountInString(s) <= 40 {
		return s
	}
	return string([]rune(s)[:40]) + "…"
}

// firstErr returns the first non-nil error: validation reports one field at a time.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
