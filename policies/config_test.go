package policies

import (
	"cmp"
	"errors"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// The fixtures of the cases, one secret per line so tests can pick lines.
const (
	openaiSecret = `"OPENAI_API_KEY": {"placeholder": "sgp_openai_000000000000000000001", "value": "sk-test-OPENAI-aaaa1111"}`
	orgSecret    = `"OPENAI_ORG": {"placeholder": "sgp_openaiorg_0000000000000000002", "value": "org-test-FFFF6666", "hosts": ["api.openai.com"]}`
	githubSecret = `"GITHUB_TOKEN": {"placeholder": "sgp_github_000000000000000000004", "value": "ghp_testCCCC3333", "hosts": ["github.com", "api.github.com"]}`
	geminiSecret = `"GEMINI_API_KEY": {"placeholder": "sgp_gemini_000000000000000000005", "value": "AIza+test\/DDDD=4444"}`
	jiraSecret   = `"JIRA_TOKEN": {"placeholder": "sgp_jira_00000000000000000000006", "value": "jira-test-EEEE5555", "hosts": ["*.Atlassian.net"], "on_disallowed": "deny"}`
)

func config(secrets ...string) string {
	return `{"session": "ep-2c9f", "secrets": {` + strings.Join(secrets, ",\n") + `}}`
}

func hostStrings(rules []HostRule) string {
	s := make([]string, len(rules))
	for i, r := range rules {
		s[i] = r.String()
	}
	return strings.Join(s, " ")
}

func TestParseConfig(t *testing.T) {
	s, err := ParseConfig([]byte(config(openaiSecret, orgSecret, githubSecret, geminiSecret, jiraSecret)))
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "ep-2c9f" || s.OnDisallowed != Passthrough {
		t.Errorf("session %q mode %v", s.ID, s.OnDisallowed)
	}
	want := []struct {
		name, placeholder, value, hosts string
		mode                            Mode
	}{
		{"GEMINI_API_KEY", "sgp_gemini_000000000000000000005", "AIza+test/DDDD=4444", "generativelanguage.googleapis.com", Passthrough},
		{"GITHUB_TOKEN", "sgp_github_000000000000000000004", "ghp_testCCCC3333", "github.com api.github.com", Passthrough},
		{"JIRA_TOKEN", "sgp_jira_00000000000000000000006", "jira-test-EEEE5555", "*.atlassian.net", Deny},
		{"OPENAI_API_KEY", "sgp_openai_000000000000000000001", "sk-test-OPENAI-aaaa1111", "api.openai.com", Passthrough},
		{"OPENAI_ORG", "sgp_openaiorg_0000000000000000002", "org-test-FFFF6666", "api.openai.com", Passthrough},
	}
	if len(s.Secrets) != len(want) {
		t.Fatalf("%d secrets, want %d", len(s.Secrets), len(want))
	}
	for i, w := range want {
		got := s.Secrets[i]
		if got.Name != w.name || got.Placeholder != w.placeholder || string(got.Value.bytes()) != w.value ||
			hostStrings(got.Hosts) != w.hosts || got.OnDisallowed != w.mode {
			t.Errorf("secret %d = %s %s %q %q %v; want %+v", i, got.Name, got.Placeholder,
				got.Value.bytes(), hostStrings(got.Hosts), got.OnDisallowed, w)
		}
	}
}

func TestParseConfigModes(t *testing.T) {
	s, err := ParseConfig([]byte(`{"session": "s", "on_disallowed": "deny", "secrets": {
		"OPENAI_API_KEY": {"placeholder": "sgp_openai_000000000000000000001", "value": "sk-test-OPENAI-aaaa1111"},
		"ANTHROPIC_API_KEY": {"placeholder": "sgp_anthropic_0000000000000000003", "value": "sk-ant-test-bbbb2222", "on_disallowed": "passthrough"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.OnDisallowed != Deny || s.Secrets[0].Name != "ANTHROPIC_API_KEY" || s.Secrets[0].OnDisallowed != Passthrough ||
		s.Secrets[1].OnDisallowed != Deny {
		t.Errorf("modes: session %v, %s %v, %s %v", s.OnDisallowed,
			s.Secrets[0].Name, s.Secrets[0].OnDisallowed, s.Secrets[1].Name, s.Secrets[1].OnDisallowed)
	}
}

func TestParseConfigHosts(t *testing.T) {
	tests := []struct{ secret, hosts string }{
		// Defaults, in the seed's order.
		{`"HF_TOKEN": {"placeholder": "sgp_hf_000000000000000000000007", "value": "hf_test"}`,
			"huggingface.co api-inference.huggingface.co"},
		// Given hosts replace the defaults and are canonicalised.
		{`"OPENAI_API_KEY": {"placeholder": "sgp_openai_000000000000000000001", "value": "v", "hosts": ["API.example.com.", "api.example.com:8443"]}`,
			"api.example.com api.example.com:8443"},
		{`"CUSTOM_API_KEY": {"placeholder": "sgp_custom_000000000000000000008", "value": "v", "hosts": ["api.example.com", "api2.example.com", "203.0.113.7", "[2001:DB8::1]:8443"]}`,
			"api.example.com api2.example.com 203.0.113.7 [2001:db8::1]:8443"},
	}
	for _, tt := range tests {
		s, err := ParseConfig([]byte(config(tt.secret)))
		if err != nil {
			t.Errorf("%s: %v", tt.secret, err)
			continue
		}
		if got := hostStrings(s.Secrets[0].Hosts); got != tt.hosts {
			t.Errorf("%s: hosts %q, want %q", tt.secret, got, tt.hosts)
		}
	}
}

// case-09: one trailing line break is trimmed; nothing else is.
func TestParseConfigTrimsValue(t *testing.T) {
	for _, value := range []string{`sk-test-OPENAI-aaaa1111`, `sk-test-OPENAI-aaaa1111\n`, `sk-test-OPENAI-aaaa1111\r\n`} {
		s, err := ParseConfig([]byte(config(`"OPENAI_API_KEY": {"placeholder": "sgp_openai_000000000000000000001", "value": "` + value + `"}`)))
		if err != nil {
			t.Errorf("value %s: %v", value, err)
			continue
		}
		if v := s.Secrets[0].Value; string(v.bytes()) != "sk-test-OPENAI-aaaa1111" || v.Len() != 23 {
			t.Errorf("value %s loaded as %q", value, v.bytes())
		}
	}
}

// Only the outer spaces and tabs are lost in a header; inner ones stay.
func TestParseConfigKeepsInnerSpaces(t *testing.T) {
	s, err := ParseConfig([]byte(config(`"OPENAI_API_KEY": {"placeholder": "sgp_openai_000000000000000000001", "value": "sk-test OPENAI aaaa1111\n"}`)))
	if err != nil {
		t.Fatal(err)
	}
	if v := s.Secrets[0].Value; string(v.bytes()) != "sk-test OPENAI aaaa1111" {
		t.Errorf("value loaded as %q", v.bytes())
	}
}

// secretValues gives every string at secrets.*.value in data, repeats included.
func secretValues(data []byte) []string {
	var values []string
	gjson.GetBytes(data, "secrets").ForEach(func(_, s gjson.Result) bool {
		s.ForEach(func(k, v gjson.Result) bool {
			if k.Str == "value" && v.Type == gjson.String {
				values = append(values, v.Str, strings.TrimRight(v.Str, "\r\n"))
			}
			return true
		})
		return true
	})
	return values
}

func TestParseConfigErrors(t *testing.T) {
	const ph = `"placeholder": "sgp_openai_000000000000000000001"`
	openai := func(fields string) string { return config(`"OPENAI_API_KEY": {` + fields + `}`) }
	withValue := func(v string) string { return openai(ph + `, "value": "` + v + `"`) }
	tests := []struct{ name, config, err string }{
		{"not json", `{"session": "s",`, `config: invalid json: unexpected end at offset 16`},
		{"trailing garbage", `{"session": "s"} x`, `config: invalid json: unexpected byte at offset 17`},
		{"trailing comma", `{"session": "s", "secrets": {` + openaiSecret + `,}}`, `config: invalid json: unexpected byte at offset 135`},
		{"not utf-8", "{\"session\": \"\xff\"}", `config: invalid UTF-8 at offset 13`},
		{"empty document", ``, `config: invalid json: unexpected end at offset 0`},
		{"array", `[]`, `config: must be a json object`},
		{"null", `null`, `config: must be a json object`},
		{"empty", `{}`, "secrets: required\nsession: required"},
		{"unknown field", `{"session": "s", "sesion": "s", "secrets": {` + openaiSecret + `}}`, `sesion: unknown field`},
		{"odd unknown field", `{"session": "s", "a.b": 1, "secrets": {` + openaiSecret + `}}`, `["a.b"]: unknown field`},
		{"duplicate session", `{"session": "s", "session": "t", "secrets": {` + openaiSecret + `}}`, `session: duplicate key`},
		{"escaped duplicate", `{"session": "s", "sess\u0069on": "t", "secrets": {` + openaiSecret + `}}`, `session: duplicate key`},
		{"session number", `{"session": 1, "secrets": {` + openaiSecret + `}}`, `session: must be a string`},
		{"session null", `{"session": null, "secrets": {` + openaiSecret + `}}`, `session: must be a string`},
		{"session empty", `{"session": "", "secrets": {` + openaiSecret + `}}`, `session: must not be empty`},
		{"session long", `{"session": "` + strings.Repeat("s", 129) + `", "secrets": {` + openaiSecret + `}}`, `session: longer than 128 bytes`},
		{"session control", `{"session": "ep\n2c9f", "secrets": {` + openaiSecret + `}}`, `session: byte at offset 2 is not printable ascii`},
		{"session non-ascii", `{"session": "ép", "secrets": {` + openaiSecret + `}}`, `session: byte at offset 0 is not printable ascii`},
		{"mode", `{"session": "s", "on_disallowed": "Deny", "secrets": {` + openaiSecret + `}}`, `on_disallowed: must be "passthrough" or "deny"`},
		{"mode bool", `{"session": "s", "on_disallowed": true, "secrets": {` + openaiSecret + `}}`, `on_disallowed: must be "passthrough" or "deny"`},
		{"secrets array", `{"session": "s", "secrets": []}`, `secrets: must be an object`},
		{"secrets null", `{"session": "s", "secrets": null}`, `secrets: must be an object`},
		{"no secrets", `{"session": "s", "secrets": {}}`, `secrets: must hold at least one secret`},
		{"bad name", config(`"bad-name": {}`), `secrets["bad-na…" (8 bytes)]: name must match [A-Za-z_][A-Za-z0-9_]* and be at most 128 bytes`},
		{"digit name", config(`"1PASSWORD": {}`), `secrets["1PASSW…" (9 bytes)]: name must match [A-Za-z_][A-Za-z0-9_]* and be at most 128 bytes`},
		{"value pasted as a name", config(`"sk-ant-test-bbbb2222": {}`), `secrets["sk-ant…" (20 bytes)]: name must match [A-Za-z_][A-Za-z0-9_]* and be at most 128 bytes`},
		{"short bad name", config(`"a-b": {}`), `secrets["a-b"]: name must match [A-Za-z_][A-Za-z0-9_]* and be at most 128 bytes`},
		{"bad name cut before a character", config(`"sk-tzé\u0000": {}`), `secrets["sk-tz…" (8 bytes)]: name must match [A-Za-z_][A-Za-z0-9_]* and be at most 128 bytes`},
		{"bad name cut after a control byte", config(`"\u0000\u0001\u0002\u0003\u0004\u0005\u0006": {}`), `secrets["\x00\x01\x02\x03\x04\x05…" (7 bytes)]: name must match [A-Za-z_][A-Za-z0-9_]* and be at most 128 bytes`},
		{"unknown field shown like a bad name", openai(ph + `, "value": "sk-test-OPENAI-aaaa1111", "sk-test-OPENAI-aaaa1111": 1`),
			`secrets.OPENAI_API_KEY["sk-tes…" (23 bytes)]: unknown field`},
		{"empty name", config(`"": {}`), `secrets[""]: name must match [A-Za-z_][A-Za-z0-9_]* and be at most 128 bytes`},
		{"long name", config(`"` + strings.Repeat("A", 129) + `": {}`), `secrets["AAAAAA…" (129 bytes)]: name must match [A-Za-z_][A-Za-z0-9_]* and be at most 128 bytes`},
		{"duplicate secret", config(openaiSecret, openaiSecret), `secrets.OPENAI_API_KEY: duplicate key`},
		{"client form", config(`"OPENAI_API_KEY": "sk-test-OPENAI-aaaa1111"`), `secrets.OPENAI_API_KEY: must be an object`},
		{"unknown secret field", openai(ph + `, "Value": "sk-test-OPENAI-aaaa1111"`),
			"secrets.OPENAI_API_KEY.Value: unknown field\nsecrets.OPENAI_API_KEY.value: required"},
		{"duplicate value", openai(ph + `, "value": "sk-test-OPENAI-aaaa1111", "value": "sk-test-OPENAI-aaaa2222"`),
			`secrets.OPENAI_API_KEY.value: duplicate key`},

		{"no placeholder", openai(`"value": "sk-test-OPENAI-aaaa1111"`), `secrets.OPENAI_API_KEY.placeholder: required`},
		{"placeholder number", openai(`"placeholder": 1, "value": "sk-test-OPENAI-aaaa1111"`), `secrets.OPENAI_API_KEY.placeholder: must be a string`},
		{"placeholder empty", openai(`"placeholder": "", "value": "sk-test-OPENAI-aaaa1111"`), `secrets.OPENAI_API_KEY.placeholder: must be at least 16 bytes`},
		{"placeholder short", openai(`"placeholder": "sgp_openai_0001", "value": "sk-test-OPENAI-aaaa1111"`), `secrets.OPENAI_API_KEY.placeholder: must be at least 16 bytes`},
		{"placeholder byte", openai(`"placeholder": "sgp_openai_00000000000000000000/1", "value": "sk-test-OPENAI-aaaa1111"`),
			`secrets.OPENAI_API_KEY.placeholder: byte 31 is not one of [A-Za-z0-9_.~-]`},
		{"placeholder repeated", config(openaiSecret, `"OPENAI_ORG": {"placeholder": "sgp_openai_000000000000000000001", "value": "org-test-FFFF6666", "hosts": ["api.openai.com"]}`),
			"secrets.OPENAI_ORG.placeholder: same as secrets.OPENAI_API_KEY.placeholder"},
		{"placeholder in three secrets", config(openaiSecret,
			`"OPENAI_ORG": {"placeholder": "sgp_openai_000000000000000000001", "value": "org-test-FFFF6666", "hosts": ["api.openai.com"]}`,
			`"ANTHROPIC_API_KEY": {"placeholder": "sgp_openai_000000000000000000001", "value": "sk-ant-test-bbbb2222"}`),
			"secrets.OPENAI_API_KEY.placeholder: same as secrets.ANTHROPIC_API_KEY.placeholder\n" +
				"secrets.OPENAI_ORG.placeholder: same as secrets.ANTHROPIC_API_KEY.placeholder"},
		{"placeholder inside another", config(openaiSecret, `"OPENAI_ORG": {"placeholder": "sgp_openai_0000000000000000000012", "value": "org-test-FFFF6666", "hosts": ["api.openai.com"]}`),
			`secrets.OPENAI_API_KEY.placeholder: appears inside secrets.OPENAI_ORG.placeholder`},
		{"placeholder inside a value", config(openaiSecret, `"GITHUB_TOKEN": {"placeholder": "sgp_github_000000000000000000004", "value": "ghp_sgp_openai_000000000000000000001", "hosts": ["github.com"]}`),
			`secrets.OPENAI_API_KEY.placeholder: appears inside the value of secrets.GITHUB_TOKEN`},
		{"placeholder is a value", config(openaiSecret, `"GITHUB_TOKEN": {"placeholder": "sgp_github_000000000000000000004", "value": "sgp_openai_000000000000000000001", "hosts": ["github.com"]}`),
			`secrets.OPENAI_API_KEY.placeholder: appears inside the value of secrets.GITHUB_TOKEN`},
		{"placeholder inside its own value", withValue(`sk-test-sgp_openai_000000000000000000001`),
			`secrets.OPENAI_API_KEY.placeholder: appears inside the value of secrets.OPENAI_API_KEY`},

		// case-09
		{"no value", openai(ph), `secrets.OPENAI_API_KEY.value: required`},
		{"value number", openai(ph + `, "value": 12345678`), `secrets.OPENAI_API_KEY.value: must be a string`},
		{"value empty", withValue(``), `secrets.OPENAI_API_KEY.value: must not be empty`},
		{"value only lf", withValue(`\n`), `secrets.OPENAI_API_KEY.value: empty after trimming the trailing line break`},
		{"value only crlf", withValue(`\r\n`), `secrets.OPENAI_API_KEY.value: empty after trimming the trailing line break`},
		{"value inner crlf", withValue(`sk-test-OPENAI\r\nx-evil: aaaa1111`), `secrets.OPENAI_API_KEY.value: contains a control byte at offset 14`},
		{"value inner lf", withValue(`sk-test-OPENAI\naaaa1111`), `secrets.OPENAI_API_KEY.value: contains a control byte at offset 14`},
		{"value nul", withValue(`sk-test-OPENAI\u0000aaaa1111`), `secrets.OPENAI_API_KEY.value: contains a control byte at offset 14`},
		{"value tab", withValue(`sk-test-OPENAI\taaaa1111`), `secrets.OPENAI_API_KEY.value: contains a control byte at offset 14`},
		{"value del", withValue(`sk-test-OPENAI\u007faaaa1111`), `secrets.OPENAI_API_KEY.value: contains a control byte at offset 14`},
		{"value two lf", withValue(`sk-test-OPENAI-aaaa1111\n\n`), `secrets.OPENAI_API_KEY.value: contains a control byte at offset 23`},
		{"value trailing cr", withValue(`sk-test-OPENAI-aaaa1111\r`), `secrets.OPENAI_API_KEY.value: contains a control byte at offset 23`},
		{"value lf cr", withValue(`sk-test-OPENAI-aaaa1111\n\r`), `secrets.OPENAI_API_KEY.value: contains a control byte at offset 23`},
		// HTTP strips a header value's outer spaces and tabs.
		{"value leading space", withValue(` sk-test-OPENAI-aaaa1111`), `secrets.OPENAI_API_KEY.value: leading or trailing whitespace`},
		{"value trailing space", withValue(`sk-test-OPENAI-aaaa1111 `), `secrets.OPENAI_API_KEY.value: leading or trailing whitespace`},
		{"value spaces around", withValue(` sk-test-OPENAI-aaaa1111 `), `secrets.OPENAI_API_KEY.value: leading or trailing whitespace`},
		{"value leading tab", withValue(`\tsk-test-OPENAI-aaaa1111`), `secrets.OPENAI_API_KEY.value: leading or trailing whitespace`},
		{"value trailing tab", withValue(`sk-test-OPENAI-aaaa1111\t`), `secrets.OPENAI_API_KEY.value: leading or trailing whitespace`},
		{"value space before the trimmed lf", withValue(`sk-test-OPENAI-aaaa1111 \n`), `secrets.OPENAI_API_KEY.value: leading or trailing whitespace`},
		{"value space before the trimmed crlf", withValue(`sk-test-OPENAI-aaaa1111 \r\n`), `secrets.OPENAI_API_KEY.value: leading or trailing whitespace`},
		{"value only a space", withValue(` `), `secrets.OPENAI_API_KEY.value: leading or trailing whitespace`},
		{"value non-ascii", withValue(`sk-test-ÖPENAI-aaaa1111`),
			`secrets.OPENAI_API_KEY.value: contains a non-ascii byte at offset 8; values must be printable ascii to go into headers`},
		{"value escaped non-ascii", withValue(`sk-test-\u00d6PENAI-aaaa1111`),
			`secrets.OPENAI_API_KEY.value: contains a non-ascii byte at offset 8; values must be printable ascii to go into headers`},

		{"hosts string", openai(ph + `, "value": "v", "hosts": "api.openai.com"`), `secrets.OPENAI_API_KEY.hosts: must be an array of strings`},
		{"hosts empty", openai(ph + `, "value": "v", "hosts": []`), `secrets.OPENAI_API_KEY.hosts: must not be empty`},
		{"hosts number", openai(ph + `, "value": "v", "hosts": ["api.openai.com", 443]`), `secrets.OPENAI_API_KEY.hosts[1]: must be a string`},
		{"hosts wildcard", openai(ph + `, "value": "v", "hosts": ["*"]`), `secrets.OPENAI_API_KEY.hosts[0]: a lone wildcard is not allowed`},
		{"hosts url", openai(ph + `, "value": "v", "hosts": ["https://api.openai.com"]`),
			`secrets.OPENAI_API_KEY.hosts[0]: a scheme is not allowed; write the host only`},
		{"hosts a value", openai(ph + `, "value": "api.openai.com", "hosts": ["sk-test-OPENAI-aaaa1111"]`),
			`secrets.OPENAI_API_KEY.hosts[0]: ` + singleLabelErr},
		{"hosts repeated", openai(ph + `, "value": "v", "hosts": ["api.openai.com", "API.OpenAI.com."]`),
			`secrets.OPENAI_API_KEY.hosts[1]: same host as secrets.OPENAI_API_KEY.hosts[0] once canonicalised`},
		{"hosts repeated after a bad one", openai(ph + `, "value": "v", "hosts": ["*", "api.openai.com", "api.openai.com."]`),
			"secrets.OPENAI_API_KEY.hosts[0]: a lone wildcard is not allowed\n" +
				`secrets.OPENAI_API_KEY.hosts[2]: same host as secrets.OPENAI_API_KEY.hosts[1] once canonicalised`},
		{"same host, other port", openai(ph + `, "value": "v", "hosts": ["api.openai.com", "api.openai.com:8443", "api.openai.com:8443"]`),
			`secrets.OPENAI_API_KEY.hosts[2]: same host as secrets.OPENAI_API_KEY.hosts[1] once canonicalised`},
		{"no default hosts", config(`"CUSTOM_API_KEY": {"placeholder": "sgp_custom_000000000000000000008", "value": "my-secret-value"}`),
			`secrets.CUSTOM_API_KEY.hosts: required: no default hosts for this name`},
		{"secret mode", openai(ph + `, "value": "v", "on_disallowed": "block"`), `secrets.OPENAI_API_KEY.on_disallowed: must be "passthrough" or "deny"`},

		{"indexes in numeric order", openai(ph + `, "value": "v", "hosts": ["a.example", "b.example", "*", "c.example", "d.example", "e.example", "f.example", "g.example", "h.example", "i.example", "*", "j.example", 1]`),
			"secrets.OPENAI_API_KEY.hosts[2]: a lone wildcard is not allowed\n" +
				"secrets.OPENAI_API_KEY.hosts[10]: a lone wildcard is not allowed\n" +
				"secrets.OPENAI_API_KEY.hosts[12]: must be a string"},
		{"every problem, in path order", `{"secrets": {
			"CUSTOM_API_KEY": {"placeholder": "short", "value": "my-secret\u0000value", "hosts": ["a.*.com", "*.com"]},
			"OPENAI_API_KEY": {"placeholder": "sgp_openai_000000000000000000001", "value": "sk-test-OPENAI-aaaa1111", "extra": 1}},
			"on_disallowed": "nope"}`,
			"on_disallowed: must be \"passthrough\" or \"deny\"\n" +
				"secrets.CUSTOM_API_KEY.hosts[0]: a wildcard must be the whole first label, as in \"*.example.com\"\n" +
				"secrets.CUSTOM_API_KEY.hosts[1]: a wildcard suffix needs at least two labels, as in \"*.example.com\"\n" +
				"secrets.CUSTOM_API_KEY.placeholder: must be at least 16 bytes\n" +
				"secrets.CUSTOM_API_KEY.value: contains a control byte at offset 9\n" +
				"secrets.OPENAI_API_KEY.extra: unknown field\n" +
				"session: required"},
	}
	for _, tt := range tests {
		s, err := ParseConfig([]byte(tt.config))
		if err == nil {
			t.Errorf("%s: accepted: %+v", tt.name, s)
			continue
		}
		if s != nil {
			t.Errorf("%s: returned a session with its error", tt.name)
		}
		if err.Error() != tt.err {
			t.Errorf("%s:\n got: %s\nwant: %s", tt.name, err, tt.err)
		}
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: error does not match ErrInvalidConfig", tt.name)
		}
		var fe *FieldError
		if !errors.As(err, &fe) || !strings.HasPrefix(tt.err, fe.Path+": ") {
			t.Errorf("%s: first FieldError %+v", tt.name, fe)
		}
		for _, v := range secretValues([]byte(tt.config)) {
			if len(v) >= 4 && strings.Contains(err.Error(), v) {
				t.Errorf("%s: error shows the value %q", tt.name, v)
			}
		}
	}
}

// namesIn gives every key in r that can be a secret name, which errors
// show in full (childPath).
func namesIn(r gjson.Result, out []string) []string {
	if !r.IsObject() && !r.IsArray() {
		return out
	}
	r.ForEach(func(k, v gjson.Result) bool {
		if r.IsObject() && isIdentifier(k.Str) && len(k.Str) <= maxNameLen {
			out = append(out, k.Str)
		}
		out = namesIn(v, out)
		return true
	})
	return out
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		config(openaiSecret, orgSecret, githubSecret, geminiSecret, jiraSecret),
		config(`"OPENAI_API_KEY": {"placeholder": "sgp_openai_000000000000000000001", "value": "sk-test-OPENAI-aaaa1111\r\n"}`),
		config(`"OPENAI_API_KEY": {"placeholder": "sgp_openai_000000000000000000001", "value": "sk-test-OPENAI\r\naaaa1111"}`),
		config(`"OPENAI_API_KEY": {"placeholder": "sgp_openai_000000000000000000001", "value": "sk-test-OPENAI-aaaa1111", "hosts": ["sk-test-OPENAI-aaaa1111"]}`),
		config(openaiSecret, `"GITHUB_TOKEN": {"placeholder": "sgp_github_000000000000000000004", "value": "sgp_openai_000000000000000000001", "hosts": ["github.com"]}`),
		config(`"A": {"placeholder": "sk-test-OPENAI-aaaa1111", "value": "sk-test-OPENAI-aaaa1111", "hosts": ["*.a.b"], "on_disallowed": "deny"}`),
		`{"session": "s", "on_disallowed": "deny", "secrets": {"X": ["sk-test-OPENAI-aaaa1111"]}}`,
		config(`"CUSTOM_API_KEY": {"placeholder": "sgp_custom_000000000000000000008", "value": "api.example.com", "hosts": ["sk-test-OPENAI-aaaa1111", "localhost", "my-service:8080"]}`),
		`{"session": "s", "secrets": {"OPENAI_API_KEY": {"value": "sk-test-OPENAI-aaaa1111",}}}`,
		"{\"session\": \"s\", \"secrets\": {\"OPENAI_API_KEY\": {\"value\": \"sk-test-OPENAI-\xc3\"}}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkParsed(t, data) })
}

// FuzzConfigFields fuzzes field contents rather than JSON syntax: two
// secrets whose strings come from the fuzzer, correctly escaped.
func FuzzConfigFields(f *testing.F) {
	f.Add("ep-2c9f", "OPENAI_API_KEY", "sgp_openai_000000000000000000001", "sk-test-OPENAI-aaaa1111\n", "api.openai.com", "deny")
	f.Add("s", "A", "sk-test-OPENAI-aaaa1111", "sk-test-OPENAI-aaaa1111", "sk-test-OPENAI-aaaa1111", "passthrough")
	f.Add("s", "B", "sgp_github_000000000000000000004", "ghp_sgp_openai_000000000000000000001", "*.a.b", "")
	f.Add("s", "C", "sgp_openai_000000000000000000001x", "a\x00b", "a.*.b", "x")
	f.Add("s", "D", "sgp_custom_000000000000000000008", " sk-test-OPENAI-aaaa1111 \n", "2001:db8::1", "deny")
	f.Add("s", "E", "sgp_custom_000000000000000000009", "\tv", "203.0.113.50.", "passthrough")
	f.Add("s", "F", "sgp_custom_000000000000000000010", "api.example.com", "sk-test-OPENAI-aaaa1111", "deny")
	f.Add("s", "G", "sgp_custom_000000000000000000011", "custom-test-value-1", "my-service:8080", "deny")
	f.Add("s", "H", "sgp_custom_000000000000000000012", "custom-test-value-1", "LOCALHOST.", "deny")
	f.Fuzz(func(t *testing.T, session, name, placeholder, value, host, mode string) {
		b := append([]byte(nil), `{"session":`...)
		b = appendJSONString(b, session)
		b = append(b, `,"secrets":{"OPENAI_API_KEY":{"placeholder":"sgp_openai_000000000000000000001","value":"sk-test-OPENAI-aaaa1111"},`...)
		b = appendJSONString(b, name)
		b = append(b, `:{"placeholder":`...)
		b = appendJSONString(b, placeholder)
		b = append(b, `,"value":`...)
		b = appendJSONString(b, value)
		b = append(b, `,"hosts":[`...)
		b = appendJSONString(b, host)
		b = append(b, `],"on_disallowed":`...)
		b = appendJSONString(b, mode)
		b = append(b, "}}}"...)
		checkParsed(t, b)
	})
}

// checkParsed parses data and checks what ParseConfig promises: an error
// never shows a value; a session keeps every rule.
func checkParsed(t *testing.T, data []byte) {
	s, err := ParseConfig(data)
	if err != nil {
		if s != nil || !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("error %v with session %v", err, s)
		}
		if err.Error() == "config: invalid json" {
			t.Fatalf("invalid json without an offset: jsonProblem and gjson disagree on %q", data)
		}
		if !gjson.ValidBytes(data) {
			return
		}
		names := namesIn(gjson.ParseBytes(data), nil)
		for _, v := range secretValues(data) {
			if len(v) < 8 || !strings.Contains(err.Error(), v) {
				continue
			}
			// A value that is also a key that can be a name is shown as
			// that name; no other string of the input is ever quoted.
			if !strings.Contains(strings.Join(names, "\x00"), v) {
				t.Fatalf("error shows the value %q: %v", v, err)
			}
		}
		return
	}
	if len(s.Secrets) == 0 || s.ID == "" {
		t.Fatalf("empty session accepted: %+v", s)
	}
	for i, a := range s.Secrets {
		if i > 0 && s.Secrets[i-1].Name >= a.Name {
			t.Fatalf("secrets not sorted: %q then %q", s.Secrets[i-1].Name, a.Name)
		}
		if err := checkPlaceholder(a.Placeholder); err != nil {
			t.Fatalf("placeholder %q accepted: %v", a.Placeholder, err)
		}
		if _, reason := checkValue(a.Value.bytes()); reason != "" || a.Value.Len() == 0 {
			t.Fatalf("value of %s accepted: %s", a.Name, reason)
		}
		if len(a.Hosts) == 0 {
			t.Fatalf("%s has no hosts", a.Name)
		}
		for _, b := range s.Secrets {
			if a.Name != b.Name && strings.Contains(b.Placeholder, a.Placeholder) {
				t.Fatalf("placeholder of %s inside that of %s", a.Name, b.Name)
			}
			if strings.Contains(string(b.Value.bytes()), a.Placeholder) {
				t.Fatalf("placeholder of %s inside the value of %s", a.Name, b.Name)
			}
		}
	}
}

func TestComparePaths(t *testing.T) {
	// Each path sorts before the next.
	ordered := []string{
		"CUSTOM_API_KEY[1]",
		"CUSTOM_API_KEY[1][2]",
		"CUSTOM_API_KEY[1][10]",
		"CUSTOM_API_KEY[2]",
		"secrets.A.hosts",
		"secrets.A.hosts[9]",
		"secrets.A.hosts[10]",
		"secrets.A.hosts[100]",
		"secrets.A.placeholder",
		"secrets.B",
		`secrets["1PASSW…" (9 bytes)]`,
		`secrets["sk-ant…" (20 bytes)]`,
	}
	for i, a := range ordered {
		for j, b := range ordered {
			if got, want := comparePaths(a, b), cmp.Compare(i, j); got != want {
				t.Errorf("comparePaths(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
}
