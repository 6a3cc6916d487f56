package api

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// jsonPathAt names the value of a JSON document that the decoder had just
// read at offset (json.UnmarshalTypeError's Offset), as a dotted path:
// "metadata.n", "recipient.phone", "enabled_events[1]". encoding/json names
// only the struct field ("metadata"), which does not say which key of a
// map was wrong. It returns "" when the document does not parse that far.
func jsonPathAt(body []byte, offset int64) string {
	type frame struct {
		object bool
		key    string // the current member's name, in an object
		index  int    // the current element's index, in an array
		inKey  bool   // an object expecting a member name next
	}
	var stack []*frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.object {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(clip(f.key))
			} else {
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
			}
		}
		return b.String()
	}
	// valueDone moves the enclosing container past a complete value.
	valueDone := func() {
		if n := len(stack); n > 0 {
			if top := stack[n-1]; top.object {
				top.inKey = true
			} else {
				top.index++
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].inKey {
			if s, ok := tok.(string); ok {
				stack[n-1].key, stack[n-1].inKey = s, false
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if dec.InputOffset() >= offset {
				return path()
			}
			stack = append(stack, &frame{object: tok == json.Delim('{'), inKey: tok == json.Delim('{')})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if dec.InputOffset() >= offset {
				return path()
			}
			valueDone()
			continue
		}
		if dec.InputOffset() >= offset {
			return path()
		}
		valueDone()
	}
}
