package jobs

import (
	"strings"
	"unicode/utf8"
)

// merchantTextMax bounds every text taken from a merchant's answer (its
// body, a header quoted in an error) wherever it goes: the attempt's row,
// the delivery's error_message, River's job errors and the logs. A merchant
// endpoint must not be able to make us store or print megabytes.
const merchantTextMax = 1024

// boundText makes s storable and printable: valid UTF-8, no NUL, at most
// merchantTextMax bytes, cut on a character boundary and marked with "…"
// where it was cut.
func boundText(s string) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) <= merchantTextMax {
		return s
	}
	const mark = "…"
	cut := merchantTextMax - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// boundedError is an attempt's error as the ledger, River and the logs see
// it: its text bounded by boundText, its chain intact for errors.Is.
type boundedError struct{ err error }

func (e boundedError) Error() string { return boundText(e.err.Error()) }
func (e boundedError) Unwrap() error { return e.err }
