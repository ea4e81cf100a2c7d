package policies

import (
	"fmt"
	"unicode/utf8"
)

// jsonProblem says where data first stops being one JSON document in UTF-8
// (RFC 8259), or "" if it is one: "invalid UTF-8 at offset N", or "invalid
// json: unexpected byte at offset N", or "invalid json: unexpected end at
// offset N" when the document stops early. Offsets count bytes from 0. The
// earlier of the two problems wins; at the same offset, UTF-8. It never
// shows a byte of data, which may hold values.
//
// gjson.Valid only answers yes or no; this runs after it said no, at
// configure time only, to name the place.
func jsonProblem(data []byte) string {
	u := firstInvalidUTF8(data)
	s, ok := firstJSONError(data)
	switch {
	case u >= 0 && (ok || u <= s):
		return fmt.Sprintf("invalid UTF-8 at offset %d", u)
	case ok:
		return ""
	case s == len(data):
		return fmt.Sprintf("invalid json: unexpected end at offset %d", s)
	}
	return fmt.Sprintf("invalid json: unexpected byte at offset %d", s)
}

// firstInvalidUTF8 returns the offset of the first byte that does not start
// a valid UTF-8 sequence, or -1.
func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// firstJSONError checks data's syntax, without recursion however deep it
// nests. It returns the offset of the first byte that cannot continue a JSON
// document, or len(data) if the document ends early; ok when data is one
// document. Bytes from 0x80 up are accepted inside strings, as gjson does:
// UTF-8 is firstInvalidUTF8's to check.
func firstJSONError(data []byte) (at int, ok bool) {
	var open []byte // '{' or '[' per open container
	i := skipJSONSpace(data, 0)
value:
	for {
		// A value starts at i.
		if i == len(data) {
			return i, false
		}
		switch c := data[i]; {
		case c == '{' || c == '[':
			closing := byte('}')
			if c == '[' {
				closing = ']'
			}
			i = skipJSONSpace(data, i+1)
			if i < len(data) && data[i] == closing {
				i++
				break
			}
			open = append(open, c)
			if c == '{' {
				if i, ok = scanObjectKey(data, i); !ok {
					return i, false
				}
			}
			continue value
		case c == '"':
			if i, ok = scanJSONString(data, i+1); !ok {
				return i, false
			}
		case c == '-' || '0' <= c && c <= '9':
			if i, ok = scanJSONNumber(data, i); !ok {
				return i, false
			}
		case c == 't':
			if i, ok = scanLiteral(data, i, "true"); !ok {
				return i, false
			}
		case c == 'f':
			if i, ok = scanLiteral(data, i, "false"); !ok {
				return i, false
			}
		case c == 'n':
			if i, ok = scanLiteral(data, i, "null"); !ok {
				return i, false
			}
		default:
			return i, false
		}
		// A value ended at i: close containers until a ',' asks for another.
		for {
			i = skipJSONSpace(data, i)
			if len(open) == 0 {
				return i, i == len(data)
			}
			if i == len(data) {
				return i, false
			}
			top := open[len(open)-1]
			switch {
			case data[i] == ',':
				i = skipJSONSpace(data, i+1)
				if top == '{' {
					if i, ok = scanObjectKey(data, i); !ok {
						return i, false
					}
				}
				continue value
			case top == '{' && data[i] == '}', top == '[' && data[i] == ']':
				open = open[:len(open)-1]
				i++
			default:
				return i, false
			}
		}
	}
}

func skipJSONSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// scanObjectKey reads `"key" :` at i and returns where the value starts.
func scanObjectKey(data []byte, i int) (int, bool) {
	if i == len(data) || data[i] != '"' {
		return i, false
	}
	i, ok := scanJSONString(data, i+1)
	if !ok {
		return i, false
	}
	i = skipJSONSpace(data, i)
	if i == len(data) || data[i] != ':' {
		return i, false
	}
	return skipJSONSpace(data, i+1), true
}

// scanJSONString reads a string's contents from i, just after its opening
// quote, and returns the offset after its closing quote.
func scanJSONString(data []byte, i int) (int, bool) {
	for i < len(data) {
		switch c := data[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			i++
			if i == len(data) {
				return i, false
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				i++
				for range 4 {
					if i == len(data) || unhex[data[i]] < 0 {
						return i, false
					}
					i++
				}
			default:
				return i, false
			}
		default:
			i++
		}
	}
	return i, false
}

// scanJSONNumber reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at i.
// A byte after the number is the caller's to judge, so "01" stops at "1".
func scanJSONNumber(data []byte, i int) (int, bool) {
	digits := func(i int) (int, bool) {
		if i == len(data) || data[i] < '0' || data[i] > '9' {
			return i, false
		}
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		return i, true
	}
	if data[i] == '-' {
		i++
	}
	var ok bool
	if i < len(data) && data[i] == '0' {
		i++
	} else if i, ok = digits(i); !ok {
		return i, false
	}
	if i < len(data) && data[i] == '.' {
		if i, ok = digits(i + 1); !ok {
			return i, false
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i, ok = digits(i); !ok {
			return i, false
		}
	}
	return i, true
}

// scanLiteral reads lit at i; it fails at the first byte that differs.
func scanLiteral(data []byte, i int, lit string) (int, bool) {
	for k := 0; k < len(lit); k++ {
		if i+k == len(data) || data[i+k] != lit[k] {
			return i + k, false
		}
	}
	return i + len(lit), true
}
