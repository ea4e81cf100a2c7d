package policies

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

func TestJSONProblem(t *testing.T) {
	deep := strings.Repeat("[", 100000)
	tests := []struct{ data, want string }{
		{`{"a": [1, -0.5e+3, 0, 1E9, true, false, null, "x\u00e9\n\/"], "b": {}, "c": []}`, ""},
		{" \t\r\n{}\n", ""},
		{`"string"`, ""}, // valid JSON; parseDocument asks for an object after
		{deep + strings.Repeat("]", 100000), ""},

		{``, "invalid json: unexpected end at offset 0"},
		{`  `, "invalid json: unexpected end at offset 2"},
		{`{"session": "s",`, "invalid json: unexpected end at offset 16"},
		{`{"session": "s"`, "invalid json: unexpected end at offset 15"},
		{`{"session": "s`, "invalid json: unexpected end at offset 14"},
		{`{"session": "s\`, "invalid json: unexpected end at offset 15"},
		{`{"session": "\u12`, "invalid json: unexpected end at offset 17"},
		{`{"session":`, "invalid json: unexpected end at offset 11"},
		{`{"a": tr`, "invalid json: unexpected end at offset 8"},
		{`-`, "invalid json: unexpected end at offset 1"},
		{`1.`, "invalid json: unexpected end at offset 2"},
		{`1e+`, "invalid json: unexpected end at offset 3"},
		{deep, "invalid json: unexpected end at offset 100000"},

		{`{"session": "s"} x`, "invalid json: unexpected byte at offset 17"},
		{`{"session": "s"}}`, "invalid json: unexpected byte at offset 16"},
		{`{x`, "invalid json: unexpected byte at offset 1"},
		{`{"a" 1}`, "invalid json: unexpected byte at offset 5"},
		{`{"a":1,}`, "invalid json: unexpected byte at offset 7"},
		{`{"a":1 "b":2}`, "invalid json: unexpected byte at offset 7"},
		{`{"a":[1,{"b":}]}`, "invalid json: unexpected byte at offset 13"},
		{`{"a":[1}`, "invalid json: unexpected byte at offset 7"},
		{`[1,]`, "invalid json: unexpected byte at offset 3"},
		{`[1 2]`, "invalid json: unexpected byte at offset 3"},
		{`01`, "invalid json: unexpected byte at offset 1"},
		{`-a`, "invalid json: unexpected byte at offset 1"},
		{`1.e3`, "invalid json: unexpected byte at offset 2"},
		{`+1`, "invalid json: unexpected byte at offset 0"},
		{`{"a":"\q"}`, "invalid json: unexpected byte at offset 7"},
		{`"\u12g4"`, "invalid json: unexpected byte at offset 5"},
		{"\"a\x01\"", "invalid json: unexpected byte at offset 2"},
		{"\"a\tb\"", "invalid json: unexpected byte at offset 2"},
		{`{"a": tru}`, "invalid json: unexpected byte at offset 9"},
		{`{"a": nul}`, "invalid json: unexpected byte at offset 9"},
		{`{"a": True}`, "invalid json: unexpected byte at offset 6"},
		{`{'a': 1}`, "invalid json: unexpected byte at offset 1"},
		{`{"a": "sk-test-OPENAI-aaaa1111"` + "\x00}", "invalid json: unexpected byte at offset 31"},
		{"\xef\xbb\xbf{}", "invalid json: unexpected byte at offset 0"}, // a byte order mark

		{"{\"session\": \"\xff\"}", "invalid UTF-8 at offset 13"},
		{"{\"a\": \"\xc3\"}", "invalid UTF-8 at offset 7"},
		{"{\"a\": \"\xed\xa0\x80\"}", "invalid UTF-8 at offset 7"}, // a surrogate
		{"{\"a\": \"\xf4\x90\x80\x80\"}", "invalid UTF-8 at offset 7"},
		{"{\"a\": \xff}", "invalid UTF-8 at offset 6"},  // both at once: UTF-8
		{"{\"a\": \"\xff", "invalid UTF-8 at offset 7"}, // before the early end
		{"{\"a\": x \"\xff\"}", "invalid json: unexpected byte at offset 6"},
	}
	for _, tt := range tests {
		got := jsonProblem([]byte(tt.data))
		if got != tt.want {
			t.Errorf("jsonProblem(%.40q) = %q, want %q", tt.data, got, tt.want)
		}
		if ok := gjson.ValidBytes([]byte(tt.data)) && utf8.ValidString(tt.data); ok != (got == "") {
			t.Errorf("jsonProblem(%.40q) = %q, but gjson and utf8 say valid=%v", tt.data, got, ok)
		}
	}
}

// FuzzJSONProblem checks jsonProblem against the judges it stands beside:
// it finds a problem exactly when gjson or utf8 do, and at the offset
// encoding/json gives.
func FuzzJSONProblem(f *testing.F) {
	for _, s := range []string{
		config(openaiSecret, githubSecret), `{"session": "s",`, `{"a":[1,{"b":}]}`, `-0.5e+3`, `"\u12g4"`,
		"{\"session\": \"\xff\"}", "{\"a\": \xff}", `[[[[`, `{"a":1 "b":2}`, `1.e3`, "\"a\tb\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := jsonProblem(data)
		if ok := gjson.ValidBytes(data) && utf8.Valid(data); ok != (got == "") {
			t.Fatalf("jsonProblem(%q) = %q, but gjson and utf8 say valid=%v", data, got, ok)
		}
		if got == "" || !utf8.Valid(data) {
			return
		}
		var raw json.RawMessage
		var se *json.SyntaxError
		if err := json.Unmarshal(data, &raw); !errors.As(err, &se) {
			t.Fatalf("jsonProblem(%q) = %q, encoding/json: %v", data, got, err)
		}
		// encoding/json counts the offending byte. At the end it reports
		// "unexpected end", or, inside a number or literal, a space it
		// pretends follows, without counting it.
		want := fmt.Sprintf("invalid json: unexpected byte at offset %d", se.Offset-1)
		if strings.HasPrefix(se.Error(), "unexpected end") ||
			strings.HasPrefix(se.Error(), "invalid character ' '") && se.Offset == int64(len(data)) && data[len(data)-1] != ' ' {
			want = fmt.Sprintf("invalid json: unexpected end at offset %d", len(data))
		}
		if got != want {
			t.Fatalf("jsonProblem(%q) = %q, encoding/json: offset %d: %v", data, got, se.Offset, se)
		}
	})
}
