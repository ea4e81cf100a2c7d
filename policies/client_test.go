package policies

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestParseClientSecrets(t *testing.T) {
	got, err := ParseClientSecrets([]byte(`{
		"OPENAI_API_KEY": "sk-test-OPENAI-aaaa1111\n",
		"CUSTOM_API_KEY": ["my-secret-value", ["api.example.com", "API2.example.com."]],
		"HF_TOKEN": ["hf_test\r\n", ["*.huggingface.co"]]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ name, value, hosts string }{
		{"CUSTOM_API_KEY", "my-secret-value", "api.example.com api2.example.com"},
		{"HF_TOKEN", "hf_test", "*.huggingface.co"},
		{"OPENAI_API_KEY", "sk-test-OPENAI-aaaa1111", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d secrets, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || string(g.Value.bytes()) != w.value || strings.Join(g.Hosts, " ") != w.hosts {
			t.Errorf("secret %d = %s %q %q, want %+v", i, g.Name, g.Value.bytes(), g.Hosts, w)
		}
	}
	if got[2].Hosts != nil {
		t.Errorf("plain value has hosts %q, want nil (defaults)", got[2].Hosts)
	}
}

func TestParseClientSecretsErrors(t *testing.T) {
	tests := []struct{ name, secrets, err string }{
		{"not json", `{"A": `, `secrets: invalid json: unexpected end at offset 6`},
		{"value unquoted", `{"OPENAI_API_KEY": sk-test-OPENAI-aaaa1111}`, `secrets: invalid json: unexpected byte at offset 19`},
		{"not utf-8", "{\"OPENAI_API_KEY\": \"sk-test-OPENAI-\xc3\"}", `secrets: invalid UTF-8 at offset 35`},
		{"array", `["OPENAI_API_KEY", "sk-test-OPENAI-aaaa1111"]`, `secrets: must be a json object`},
		{"empty", `{}`, `secrets: must hold at least one secret`},
		{"plain without defaults", `{"CUSTOM_API_KEY": "my-secret-value"}`,
			`CUSTOM_API_KEY: a plain value needs default hosts; pass ["value", ["host", ...]]`},
		{"bad name", `{"bad-name": ["my-secret-value", ["api.example.com"]]}`,
			`["bad-na…" (8 bytes)]: name must match [A-Za-z_][A-Za-z0-9_]* and be at most 128 bytes`},
		{"duplicate name", `{"OPENAI_API_KEY": "sk-test-OPENAI-aaaa1111", "OPENAI_API_KEY": "sk-test-OPENAI-aaaa2222"}`,
			`OPENAI_API_KEY: duplicate key`},
		{"number", `{"OPENAI_API_KEY": 12345678}`, `OPENAI_API_KEY: must be a string or ["value", ["host", ...]]`},
		{"one element", `{"OPENAI_API_KEY": ["sk-test-OPENAI-aaaa1111"]}`, `OPENAI_API_KEY: must be a string or ["value", ["host", ...]]`},
		{"three elements", `{"OPENAI_API_KEY": ["sk-test-OPENAI-aaaa1111", ["api.openai.com"], "deny"]}`,
			`OPENAI_API_KEY: must be a string or ["value", ["host", ...]]`},
		{"object", `{"OPENAI_API_KEY": {"value": "sk-test-OPENAI-aaaa1111"}}`, `OPENAI_API_KEY: must be a string or ["value", ["host", ...]]`},
		{"value not string", `{"CUSTOM_API_KEY": [12345678, ["api.example.com"]]}`, `CUSTOM_API_KEY[0]: must be a string`},
		{"hosts not array", `{"CUSTOM_API_KEY": ["my-secret-value", "api.example.com"]}`, `CUSTOM_API_KEY[1]: must be an array of strings`},
		{"hosts empty", `{"CUSTOM_API_KEY": ["my-secret-value", []]}`, `CUSTOM_API_KEY[1]: must not be empty`},
		{"host bad", `{"CUSTOM_API_KEY": ["my-secret-value", ["api.example.com", "*"]]}`, `CUSTOM_API_KEY[1][1]: a lone wildcard is not allowed`},
		{"value and host swapped", `{"CUSTOM_API_KEY": ["api.example.com", ["my-secret-value"]]}`, `CUSTOM_API_KEY[1][0]: ` + singleLabelErr},
		{"host repeated", `{"CUSTOM_API_KEY": ["my-secret-value", ["api.example.com", "api.example.com."]]}`,
			`CUSTOM_API_KEY[1][1]: same host as CUSTOM_API_KEY[1][0] once canonicalised`},
		{"plain value with crlf", `{"OPENAI_API_KEY": "sk-test-OPENAI\r\naaaa1111"}`, `OPENAI_API_KEY: contains a control byte at offset 14`},
		{"plain value empty", `{"OPENAI_API_KEY": "\n"}`, `OPENAI_API_KEY: empty after trimming the trailing line break`},
		{"plain value with a trailing space", `{"OPENAI_API_KEY": "sk-test-OPENAI-aaaa1111 "}`, `OPENAI_API_KEY: leading or trailing whitespace`},
		{"tuple value with a leading tab", `{"CUSTOM_API_KEY": ["\tmy-secret-value", ["api.example.com"]]}`, `CUSTOM_API_KEY[0]: leading or trailing whitespace`},
		{"tuple value nul", `{"CUSTOM_API_KEY": ["my-secret\u0000value", ["api.example.com"]]}`, `CUSTOM_API_KEY[0]: contains a control byte at offset 9`},
		{"several", `{"OPENAI_API_KEY": "sk-test-OPENAI\taaaa1111", "CUSTOM_API_KEY": "my-secret-value"}`,
			"CUSTOM_API_KEY: a plain value needs default hosts; pass [\"value\", [\"host\", ...]]\n" +
				"OPENAI_API_KEY: contains a control byte at offset 14"},
	}
	for _, tt := range tests {
		got, err := ParseClientSecrets([]byte(tt.secrets))
		if err == nil {
			t.Errorf("%s: accepted %v", tt.name, got)
			continue
		}
		if got != nil {
			t.Errorf("%s: returned secrets with the error", tt.name)
		}
		if err.Error() != tt.err {
			t.Errorf("%s:\n got: %s\nwant: %s", tt.name, err, tt.err)
		}
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: error does not match ErrInvalidConfig", tt.name)
		}
		for _, v := range []string{"sk-test-OPENAI", "aaaa1111", "aaaa2222", "my-secret"} {
			if strings.Contains(err.Error(), v) {
				t.Errorf("%s: error shows the value: %v", tt.name, err)
			}
		}
	}
}

var placeholderShape = regexp.MustCompile(`^sgp_[a-z2-7]{32}$`)

func TestNewSessionConfigRoundTrip(t *testing.T) {
	// Quotes and backslashes must survive the JSON encoding byte for byte.
	const odd = `AIza+test/"DDDD"\=4444`
	secrets := []ClientSecret{
		{Name: "OPENAI_API_KEY", Value: NewValue([]byte("sk-test-OPENAI-aaaa1111"))},
		{Name: "JIRA_TOKEN", Value: NewValue([]byte("jira-test-EEEE5555")), Hosts: []string{"*.atlassian.net"}},
		{Name: "GEMINI_API_KEY", Value: NewValue([]byte(odd)), Hosts: []string{"generativelanguage.googleapis.com", "api.example.com:8443"}},
	}
	config, placeholders, err := NewSessionConfig("ep-2c9f", secrets, Deny)
	if err != nil {
		t.Fatal(err)
	}
	if !gjson.ValidBytes(config) || !bytes.Contains(config, []byte(`"value":"AIza+test/\"DDDD\"\\=4444"`)) {
		t.Errorf("config %s", config)
	}
	s, err := ParseConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "ep-2c9f" || s.OnDisallowed != Deny || len(s.Secrets) != 3 || len(placeholders) != 3 {
		t.Fatalf("session %q %v, %d secrets, %d placeholders", s.ID, s.OnDisallowed, len(s.Secrets), len(placeholders))
	}
	want := map[string]struct{ value, hosts string }{
		"OPENAI_API_KEY": {"sk-test-OPENAI-aaaa1111", "api.openai.com"},
		"JIRA_TOKEN":     {"jira-test-EEEE5555", "*.atlassian.net"},
		"GEMINI_API_KEY": {odd, "generativelanguage.googleapis.com api.example.com:8443"},
	}
	for _, sec := range s.Secrets {
		w := want[sec.Name]
		if string(sec.Value.bytes()) != w.value || hostStrings(sec.Hosts) != w.hosts || sec.OnDisallowed != Deny {
			t.Errorf("%s: %q %q %v", sec.Name, sec.Value.bytes(), hostStrings(sec.Hosts), sec.OnDisallowed)
		}
		if sec.Placeholder != placeholders[sec.Name] || !placeholderShape.MatchString(sec.Placeholder) {
			t.Errorf("%s: placeholder %q, map has %q", sec.Name, sec.Placeholder, placeholders[sec.Name])
		}
	}
	// The sandbox's map holds no value.
	for name, ph := range placeholders {
		for _, w := range want {
			if strings.Contains(name+ph, w.value) {
				t.Errorf("placeholder map shows a value: %s=%s", name, ph)
			}
		}
	}
}

func TestNewSessionConfigFreshPlaceholders(t *testing.T) {
	secrets := []ClientSecret{{Name: "OPENAI_API_KEY", Value: NewValue([]byte("sk-test-OPENAI-aaaa1111"))}}
	seen := map[string]bool{}
	for range 50 {
		_, placeholders, err := NewSessionConfig("ep-2c9f", secrets, Passthrough)
		if err != nil {
			t.Fatal(err)
		}
		ph := placeholders["OPENAI_API_KEY"]
		if seen[ph] || !placeholderShape.MatchString(ph) {
			t.Fatalf("placeholder %q repeated or misshapen", ph)
		}
		seen[ph] = true
	}
}

func TestNewSessionConfigFromClientForm(t *testing.T) {
	secrets, err := ParseClientSecrets([]byte(`{"OPENAI_API_KEY": "sk-test-OPENAI-aaaa1111\n", "CUSTOM_API_KEY": ["my-secret-value", ["API.example.com"]]}`))
	if err != nil {
		t.Fatal(err)
	}
	config, _, err := NewSessionConfig("ep-2c9f", secrets, Passthrough)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	if s.OnDisallowed != Passthrough || hostStrings(s.Secrets[0].Hosts) != "api.example.com" ||
		string(s.Secrets[1].Value.bytes()) != "sk-test-OPENAI-aaaa1111" {
		t.Errorf("session %+v", s)
	}
}

func TestNewSessionConfigErrors(t *testing.T) {
	good := ClientSecret{Name: "OPENAI_API_KEY", Value: NewValue([]byte("sk-test-OPENAI-aaaa1111"))}
	tests := []struct {
		name    string
		session string
		secrets []ClientSecret
		err     string
	}{
		{"no session", "", []ClientSecret{good}, `session: must not be empty`},
		{"no secrets", "ep-2c9f", nil, `secrets: must hold at least one secret`},
		{"zero value", "ep-2c9f", []ClientSecret{{Name: "OPENAI_API_KEY"}}, `secrets.OPENAI_API_KEY.value: must not be empty`},
		{"bad value", "ep-2c9f", []ClientSecret{{Name: "OPENAI_API_KEY", Value: NewValue([]byte("sk-test-OPENAI\r\naaaa1111"))}},
			`secrets.OPENAI_API_KEY.value: contains a control byte at offset 14`},
		{"non-ascii value", "ep-2c9f", []ClientSecret{{Name: "OPENAI_API_KEY", Value: NewValue([]byte("sk-test-ÖPENAI"))}},
			`secrets.OPENAI_API_KEY.value: contains a non-ascii byte at offset 8; values must be printable ascii to go into headers`},
		{"no default hosts", "ep-2c9f", []ClientSecret{{Name: "CUSTOM_API_KEY", Value: NewValue([]byte("my-secret-value"))}},
			`secrets.CUSTOM_API_KEY.hosts: required: no default hosts for this name`},
		{"bad host", "ep-2c9f", []ClientSecret{{Name: "CUSTOM_API_KEY", Value: NewValue([]byte("my-secret-value")), Hosts: []string{"*"}}},
			`secrets.CUSTOM_API_KEY.hosts[0]: a lone wildcard is not allowed`},
		{"repeated name", "ep-2c9f", []ClientSecret{good, good}, `secrets.OPENAI_API_KEY: duplicate key`},
	}
	for _, tt := range tests {
		config, placeholders, err := NewSessionConfig(tt.session, tt.secrets, Passthrough)
		if err == nil || err.Error() != tt.err {
			t.Errorf("%s: error %v, want %s", tt.name, err, tt.err)
		}
		if config != nil || placeholders != nil {
			t.Errorf("%s: returned a configuration with the error", tt.name)
		}
		if err != nil && (strings.Contains(err.Error(), "sk-test") || strings.Contains(err.Error(), "my-secret")) {
			t.Errorf("%s: error shows the value: %v", tt.name, err)
		}
	}
}
