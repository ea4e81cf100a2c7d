package policies

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

func TestCanonicalAuthority(t *testing.T) {
	tests := []struct {
		raw  string
		want string // canonical String(); "" means malformed
		port uint16
	}{
		{raw: "api.openai.com", want: "api.openai.com"},
		{raw: "API.OPENAI.COM", want: "api.openai.com"},
		{raw: "Api.OpenAI.com:443", want: "api.openai.com:443", port: 443},
		{raw: "api.openai.com.", want: "api.openai.com"},
		{raw: "api.openai.com.:8443", want: "api.openai.com:8443", port: 8443},
		{raw: "localhost", want: "localhost"},
		{raw: "a-b.c-d.example", want: "a-b.c-d.example"},
		{raw: "123.example.com", want: "123.example.com"},
		{raw: "x:1", want: "x:1", port: 1},
		{raw: "x:65535", want: "x:65535", port: 65535},
		{raw: strings.Repeat("a", 63) + ".com", want: strings.Repeat("a", 63) + ".com"},
		{raw: strings.Repeat(strings.Repeat("a", 49)+".", 5) + "COM", want: strings.Repeat(strings.Repeat("a", 49)+".", 5) + "com"}, // 253 bytes
		{raw: "203.0.113.50", want: "203.0.113.50"},
		{raw: "203.0.113.50:8080", want: "203.0.113.50:8080", port: 8080},
		{raw: "0.0.0.0", want: "0.0.0.0"},
		{raw: "255.255.255.255", want: "255.255.255.255"},
		{raw: "[::1]", want: "[::1]"},
		{raw: "[::1]:8443", want: "[::1]:8443", port: 8443},
		{raw: "[2001:DB8:0:0:0:0:0:1]", want: "[2001:db8::1]"},
		{raw: "[::ffff:a0a:a0a]", want: "[::ffff:10.10.10.10]"},

		// case-03: double dot, odd ports, a port that is not a port.
		{raw: "api.openai.com.."},
		{raw: "api.openai.com:"},
		{raw: "api.openai.com:443.evil.example"},
		{raw: "api.openai.com:0"},
		{raw: "api.openai.com:0443"},
		{raw: "api.openai.com:65536"},
		{raw: "api.openai.com:100000"},
		{raw: "api.openai.com:+443"},
		{raw: "api.openai.com:443:443"},
		// An IPv6 literal without brackets; an IPv4 literal with a trailing dot.
		{raw: "2001:db8::1"},
		{raw: "::1"},
		{raw: "1.2.3.4."},
		{raw: "1.2.3.4.:443"},
		// case-04: userinfo.
		{raw: "api.openai.com@evil.example"},
		{raw: "evil.example@api.openai.com"},
		{raw: "sgp_openai_000000000000000000001@api.openai.com"},
		{raw: "user:pass@api.openai.com:443"},
		// case-05: lists, spaces, escapes, non-ASCII.
		{raw: "api.openai.com,evil.example"},
		{raw: "api.openai.com evil.example"},
		{raw: " api.openai.com"},
		{raw: "api.openai.com\t"},
		{raw: "api%2eopenai.com"},
		{raw: "api.openai.com\\evil.example"},
		{raw: "api.openai.com/evil"},
		{raw: "api.openai.com\x00"},
		{raw: "api.öpenai.com"},
		{raw: "xn--pnai-ura.com", want: "xn--pnai-ura.com"},
		{raw: "аpi.openai.com"}, // Cyrillic а
		{raw: "api.openai.com\u3002"},
		{raw: "api_openai.com"},
		// Labels and lengths.
		{raw: ""},
		{raw: "."},
		{raw: ".."},
		{raw: ":443"},
		{raw: "a..b"},
		{raw: ".a.b"},
		{raw: "-a.b"},
		{raw: "a-.b"},
		{raw: strings.Repeat("a", 64) + ".com"},
		{raw: strings.Repeat(strings.Repeat("a", 62)+".", 4) + "com"}, // 255 bytes
		// Numeric hosts must be canonical dotted quads.
		{raw: "203.0.113.050"},
		{raw: "010.0.0.1"},
		{raw: "0x7f.1"},
		{raw: "127.1"},
		{raw: "2130706433"},
		{raw: "256.0.0.1"},
		{raw: "1.2.3.4.5"},
		{raw: "1.2.3.4."},
		{raw: "a.1"},
		// IPv6.
		{raw: "[]"},
		{raw: "[::1"},
		{raw: "::1"},
		{raw: "[::1]x"},
		{raw: "[::1]:"},
		{raw: "[fe80::1%25eth0]"},
		{raw: "[fe80::1%eth0]"},
		{raw: "[1.2.3.4]"},
		{raw: "[::g]"},
		{raw: "[v1.x]"},
	}
	for _, tt := range tests {
		a, ok := CanonicalAuthority(nil, []byte(tt.raw))
		if ok != (tt.want != "") {
			t.Errorf("CanonicalAuthority(%q) ok = %v, want %v (got %q)", tt.raw, ok, !ok, a.String())
			continue
		}
		if !ok {
			if a.Host != nil || a.Port != 0 {
				t.Errorf("CanonicalAuthority(%q) malformed but returned %q", tt.raw, a.String())
			}
			continue
		}
		if got := a.String(); got != tt.want || a.Port != tt.port {
			t.Errorf("CanonicalAuthority(%q) = %q port %d, want %q port %d", tt.raw, got, a.Port, tt.want, tt.port)
		}
	}
}

func TestCanonicalAuthorityLongHostBoundary(t *testing.T) {
	host253 := strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 61)
	if len(host253) != 253 {
		t.Fatalf("fixture is %d bytes", len(host253))
	}
	if _, ok := CanonicalAuthority(nil, []byte(host253)); !ok {
		t.Errorf("253-byte host rejected")
	}
	if _, ok := CanonicalAuthority(nil, []byte(host253+".")); !ok {
		t.Errorf("253-byte host with trailing dot rejected")
	}
	if _, ok := CanonicalAuthority(nil, []byte("b"+host253)); ok {
		t.Errorf("254-byte host accepted")
	}
}

func TestCanonicalAuthorityWritesIntoDst(t *testing.T) {
	buf := make([]byte, 0, 64)
	a, ok := CanonicalAuthority(buf, []byte("API.OpenAI.com:443"))
	if !ok {
		t.Fatal("rejected")
	}
	if &a.Host[:1][0] != &buf[:1][0] {
		t.Errorf("Host does not point into dst")
	}
}

func TestCanonicalAuthorityAllocs(t *testing.T) {
	for _, raw := range []string{
		"API.OpenAI.com.:443",
		"203.0.113.50:8080",
		"[2001:db8::1]:8443",
		"api.openai.com@evil.example",
		"[::1",
		"[::ffff:ffff:ffff]",
		"[::ffff:0:0]:443",
	} {
		rawb := []byte(raw)
		dst := make([]byte, 0, len(rawb)+MaxCanonicalGrowth)
		if n := testing.AllocsPerRun(100, func() { CanonicalAuthority(dst, rawb) }); n != 0 {
			t.Errorf("CanonicalAuthority(%q) allocates %v times", raw, n)
		}
	}
}

const singleLabelErr = `a single-label host needs a port, as in "my-service:8080" (only "localhost" may go without): ` +
	`a value pasted here must not pass for a host`

func TestParseHostRule(t *testing.T) {
	tests := []struct {
		entry string
		want  string // canonical String() on success
		err   string // exact error otherwise
	}{
		{entry: "api.openai.com", want: "api.openai.com"},
		{entry: "API.OpenAI.com.", want: "api.openai.com"},
		{entry: "api.example.com:8443", want: "api.example.com:8443"},
		{entry: "api.example.com:443", want: "api.example.com:443"},
		{entry: "*.atlassian.net", want: "*.atlassian.net"},
		{entry: "*.Atlassian.NET.:8443", want: "*.atlassian.net:8443"},
		{entry: "203.0.113.50", want: "203.0.113.50"},
		{entry: "203.0.113.50:8080", want: "203.0.113.50:8080"},
		{entry: "[2001:DB8::1]", want: "[2001:db8::1]"},
		{entry: "[::1]:9000", want: "[::1]:9000"},
		{entry: "localhost", want: "localhost"},
		{entry: "LocalHost.", want: "localhost"},
		{entry: "localhost:8080", want: "localhost:8080"},
		// A single label with a port: a service name the proxy resolves
		// through its search domains.
		{entry: "my-service:8080", want: "my-service:8080"},
		{entry: "vllm:443", want: "vllm:443"},

		{entry: "", err: `empty entry`},
		{entry: "*", err: `a lone wildcard is not allowed`},
		{entry: "*.com", err: `a wildcard suffix needs at least two labels, as in "*.example.com"`},
		{entry: "*.com.", err: `a wildcard suffix needs at least two labels, as in "*.example.com"`},
		{entry: "*.", err: `empty host`},
		{entry: "*:443", err: `a wildcard must be the whole first label, as in "*.example.com"`},
		{entry: "a.*.com", err: `a wildcard must be the whole first label, as in "*.example.com"`},
		{entry: "*foo.com", err: `a wildcard must be the whole first label, as in "*.example.com"`},
		{entry: "**.a.com", err: `a wildcard must be the whole first label, as in "*.example.com"`},
		{entry: "*.*.a.com", err: `a wildcard must be the whole first label, as in "*.example.com"`},
		{entry: "*.203.0.113.50", err: `a wildcard cannot cover an ip address`},
		{entry: "*.[::1]", err: `a wildcard cannot cover an ip address`},
		{entry: "http://x", err: `a scheme is not allowed; write the host only`},
		{entry: "https://api.openai.com/", err: `a scheme is not allowed; write the host only`},
		{entry: "api.openai.com/v1", err: `a path is not allowed; write the host only`},
		{entry: "user@api.openai.com", err: `userinfo is not allowed`},
		{entry: " api.openai.com", err: `byte at offset 0 is not allowed in a host`},
		{entry: "api.openai.com,evil.example", err: `byte at offset 14 is not allowed in a host`},
		{entry: "*.a_b.com", err: `byte at offset 3 is not allowed in a host`},
		{entry: "api.öpenai.com", err: `byte at offset 4 is not allowed in a host`},
		{entry: "a..b", err: `empty label`},
		{entry: "api.openai.com..", err: `empty label`},
		{entry: "-a.b", err: `label starts or ends with a hyphen`},
		{entry: strings.Repeat("a", 64), err: `label longer than 63 bytes`},
		{entry: strings.Repeat("a.", 127) + "b", err: `host longer than 253 bytes`},
		{entry: "203.0.113.050", err: `a numeric host must be a dotted-quad ipv4 address without leading zeros`},
		{entry: "203.0.113.50.", err: `trailing dot after an ipv4 address`},
		{entry: "api.openai.com:", err: `empty port`},
		{entry: "api.openai.com:0", err: `port must be 1..65535 in decimal without leading zeros`},
		{entry: "[::1", err: `invalid bracketed ipv6 address`},
		{entry: "2001:db8::7", err: `an ipv6 address needs brackets, as in "[2001:db8::1]" or "[2001:db8::1]:8443"`},
		{entry: "::1", err: `an ipv6 address needs brackets, as in "[2001:db8::1]" or "[2001:db8::1]:8443"`},
		{entry: "::ffff:10.0.0.1", err: `an ipv6 address needs brackets, as in "[2001:db8::1]" or "[2001:db8::1]:8443"`},
		{entry: "*.2001:db8::1", err: `an ipv6 address needs brackets, as in "[2001:db8::1]" or "[2001:db8::1]:8443"`},
		{entry: "api.example.com:8443:1", err: `port must be 1..65535 in decimal without leading zeros`},
		{entry: "1.2.3.4.", err: `trailing dot after an ipv4 address`},
		{entry: "1.2.3.4.:443", err: `trailing dot after an ipv4 address`},
		{entry: "[1.2.3.4]", err: `invalid bracketed ipv6 address`},
		{entry: "[2001:db8::1]x", err: `byte at offset 13 is not allowed in a host`},
		{entry: "[2001:db8::g]", err: `byte at offset 11 is not allowed in a host`},
		// A single label without a port is most likely a value pasted into hosts.
		{entry: "api-gateway", err: singleLabelErr},
		{entry: "API-Gateway.", err: singleLabelErr},
		{entry: "sk-proj-abcdefsecret", err: singleLabelErr},
		{entry: "localhost2", err: singleLabelErr},
		{entry: "*.localhost", err: `a wildcard suffix needs at least two labels, as in "*.example.com"`},
		// Values pasted into hosts: the error names the offset, never the entry.
		{entry: "sk-proj-ABC_def123SECRET", err: `byte at offset 11 is not allowed in a host`},
		{entry: "https://api.example.com/?key=sk-test-SECRET", err: `a scheme is not allowed; write the host only`},
		{entry: "sk-test-ÖPENAI-aaaa1111", err: `byte at offset 8 is not allowed in a host`},
		{entry: "sk-test-aaaa1111:" + "sk-test-bbbb2222", err: `port must be 1..65535 in decimal without leading zeros`},
	}
	for _, tt := range tests {
		r, err := ParseHostRule(tt.entry)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseHostRule(%q) error = %v, want %s", tt.entry, err, tt.err)
			}
			// An entry may be a value: no error quotes it.
			if err != nil && len(tt.entry) >= 4 && strings.Contains(err.Error(), tt.entry) {
				t.Errorf("ParseHostRule(%q) error quotes the entry: %v", tt.entry, err)
			}
			if r != (HostRule{}) {
				t.Errorf("ParseHostRule(%q) returned a rule with its error", tt.entry)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseHostRule(%q): %v", tt.entry, err)
			continue
		}
		if got := r.String(); got != tt.want {
			t.Errorf("ParseHostRule(%q).String() = %q, want %q", tt.entry, got, tt.want)
		}
		// A canonical entry parses to itself.
		again, err := ParseHostRule(r.String())
		if err != nil || again != r {
			t.Errorf("ParseHostRule(%q) is not idempotent: %v, %v", r.String(), again, err)
		}
	}
}

func mustRule(t testing.TB, entry string) HostRule {
	t.Helper()
	r, err := ParseHostRule(entry)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// matches canonicalises raw and applies r; a malformed authority never matches.
func matches(r HostRule, raw string) bool {
	a, ok := CanonicalAuthority(nil, []byte(raw))
	return ok && r.Matches(a)
}

func TestHostRuleMatches(t *testing.T) {
	tests := []struct {
		entries []string // every entry must give the same answers
		allowed []string
		denied  []string
	}{
		{ // case-02, case-03, case-04, case-05
			entries: []string{"api.openai.com", "API.OpenAI.com."},
			allowed: []string{"api.openai.com", "API.OPENAI.COM", "Api.OpenAI.com:443", "api.openai.com.", "api.openai.com.:443"},
			denied: []string{
				"api.openai.com.evil.example", "evilapi.openai.com", "xapi.openai.com", "openai.com",
				"sub.api.openai.com", "api.openai.com..", "api.openai.com:8443", "api.openai.com:80",
				"api.openai.com:", "api.openai.com:443.evil.example",
				"api.openai.com@evil.example", "evil.example@api.openai.com",
				"sgp_openai_000000000000000000001@api.openai.com", "user:pass@api.openai.com:443",
				"api.openai.com,evil.example", "api.openai.com ", "api.openai.com\t", "api%2Eopenai.com",
				"api.openai.com\\", "api.openai.cöm", "evil.example", "attacker.test", "203.0.113.50",
				"api.openai.co", "pi.openai.com", "api-openai.com",
			},
		},
		{ // case-02: one label, never the apex
			entries: []string{"*.atlassian.net", "*.ATLASSIAN.net."},
			allowed: []string{"acme.atlassian.net", "ACME.atlassian.net.", "acme.atlassian.net:443", "1.atlassian.net"},
			denied: []string{
				"atlassian.net", "evilatlassian.net", "acme.atlassian.net.evil.example", "a.b.atlassian.net",
				".atlassian.net", "acme.atlassian.net:8443", "acme.atlassian.net:80", "acme@atlassian.net",
				"evil.example", "xatlassian.net", "acme.atlassian.nett",
			},
		},
		{ // case-03: an entry with a port matches only that port
			entries: []string{"api.example.com:8443", "API.example.com.:8443"},
			allowed: []string{"api.example.com:8443", "api.example.com.:8443"},
			denied:  []string{"api.example.com", "api.example.com:443", "api.example.com:80", "api.example.com:18443"},
		},
		{
			entries: []string{"api.example.com:443"},
			allowed: []string{"api.example.com:443"},
			denied:  []string{"api.example.com", "api.example.com:8443"},
		},
		{
			entries: []string{"*.example.com:8443"},
			allowed: []string{"a.example.com:8443"},
			denied:  []string{"a.example.com", "a.example.com:443", "example.com:8443", "a.b.example.com:8443"},
		},
		{ // a single label names one port only; localhost, none or 443
			entries: []string{"my-service:8080", "MY-Service.:8080"},
			allowed: []string{"my-service:8080", "My-Service.:8080"},
			denied:  []string{"my-service", "my-service:443", "my-service:8443", "my-service.default.svc:8080", "evil.my-service:8080"},
		},
		{
			entries: []string{"localhost", "LOCALHOST."},
			allowed: []string{"localhost", "localhost:443", "LocalHost."},
			denied:  []string{"localhost:8080", "localhost.evil.example", "evil.localhost", "127.0.0.1"},
		},
		{ // attacker IP
			entries: []string{"203.0.113.50"},
			allowed: []string{"203.0.113.50", "203.0.113.50:443"},
			denied:  []string{"203.0.113.050", "203.0.113.5", "3.0.113.50", "203.0.113.50:80", "[::ffff:203.0.113.50]", "203.0.113.50."},
		},
		{
			entries: []string{"[2001:db8::1]:8443", "[2001:DB8:0::1]:8443"},
			allowed: []string{"[2001:db8::1]:8443", "[2001:0db8:0:0:0:0:0:1]:8443"},
			denied:  []string{"[2001:db8::1]", "[2001:db8::2]:8443", "2001:db8::1"},
		},
	}
	for _, tt := range tests {
		for _, entry := range tt.entries {
			r := mustRule(t, entry)
			for _, raw := range tt.allowed {
				if !matches(r, raw) {
					t.Errorf("rule %q does not allow %q", entry, raw)
				}
			}
			for _, raw := range tt.denied {
				if matches(r, raw) {
					t.Errorf("rule %q allows %q", entry, raw)
				}
			}
		}
	}
}

func TestZeroHostRuleMatchesNothing(t *testing.T) {
	if (HostRule{}).Matches(Authority{}) {
		t.Error("zero HostRule matches the zero Authority")
	}
}

func TestHostRuleMatchesAllocs(t *testing.T) {
	exact, wild := mustRule(t, "api.openai.com"), mustRule(t, "*.atlassian.net")
	a1, _ := CanonicalAuthority(nil, []byte("api.openai.com"))
	a2, _ := CanonicalAuthority(nil, []byte("acme.atlassian.net:443"))
	n := testing.AllocsPerRun(100, func() {
		if !exact.Matches(a1) || !wild.Matches(a2) || exact.Matches(a2) {
			panic("unexpected")
		}
	})
	if n != 0 {
		t.Errorf("Matches allocates %v times", n)
	}
}

func TestDefaultHosts(t *testing.T) {
	// The seed's table, in its order.
	want := []struct {
		name  string
		hosts []string
	}{
		{"OPENAI_API_KEY", []string{"api.openai.com"}},
		{"ANTHROPIC_API_KEY", []string{"api.anthropic.com"}},
		{"GEMINI_API_KEY", []string{"generativelanguage.googleapis.com"}},
		{"GOOGLE_API_KEY", []string{"generativelanguage.googleapis.com"}},
		{"TAVILY_API_KEY", []string{"api.tavily.com"}},
		{"MISTRAL_API_KEY", []string{"api.mistral.ai"}},
		{"COHERE_API_KEY", []string{"api.cohere.com"}},
		{"GROQ_API_KEY", []string{"api.groq.com"}},
		{"TOGETHER_API_KEY", []string{"api.together.xyz"}},
		{"REPLICATE_API_TOKEN", []string{"api.replicate.com"}},
		{"HUGGINGFACE_API_KEY", []string{"api-inference.huggingface.co", "huggingface.co"}},
		{"HF_TOKEN", []string{"huggingface.co", "api-inference.huggingface.co"}},
		{"HUGGING_FACE_HUB_TOKEN", []string{"huggingface.co", "api-inference.huggingface.co"}},
		{"PERPLEXITY_API_KEY", []string{"api.perplexity.ai"}},
		{"FIREWORKS_API_KEY", []string{"api.fireworks.ai"}},
		{"DEEPSEEK_API_KEY", []string{"api.deepseek.com"}},
		{"KAGGLE_KEY", []string{"www.kaggle.com"}},
		{"KAGGLE_USERNAME", []string{"www.kaggle.com"}},
		{"KAGGLE_API_KEY", []string{"www.kaggle.com"}},
		{"E2B_API_KEY", []string{"api.e2b.app"}},
		{"MODAL_TOKEN_ID", []string{"api.modal.com"}},
		{"MODAL_TOKEN_SECRET", []string{"api.modal.com"}},
		{"DAYTONA_API_KEY", []string{"app.daytona.io"}},
	}
	if len(defaultHosts) != len(want) {
		t.Errorf("table has %d names, want %d", len(defaultHosts), len(want))
	}
	for _, w := range want {
		got, ok := DefaultHosts(w.name)
		if !ok || strings.Join(got, " ") != strings.Join(w.hosts, " ") {
			t.Errorf("DefaultHosts(%q) = %q, %v; want %q", w.name, got, ok, w.hosts)
		}
		for _, h := range got {
			if r, err := ParseHostRule(h); err != nil || r.String() != h {
				t.Errorf("default host %q is not canonical: %v", h, err)
			}
		}
	}
	for _, name := range []string{"CUSTOM_API_KEY", "openai_api_key", "GITHUB_TOKEN", ""} {
		if got, ok := DefaultHosts(name); ok || got != nil {
			t.Errorf("DefaultHosts(%q) = %q, %v", name, got, ok)
		}
	}
	h, _ := DefaultHosts("HF_TOKEN")
	h[0] = "evil.example"
	if again, _ := DefaultHosts("HF_TOKEN"); again[0] != "huggingface.co" {
		t.Error("DefaultHosts returns the shared table")
	}
}

func isCanonicalByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte(".-:[]", c) >= 0
}

func FuzzCanonicalAuthority(f *testing.F) {
	for _, s := range []string{
		"api.openai.com", "API.OpenAI.com.:443", "api.openai.com..", "api.openai.com:443.evil.example",
		"user:pass@api.openai.com:443", "203.0.113.50", "203.0.113.050", "0x7f.1", "[::1]:8443",
		"[::ffff:a0a:a0a]", "[::ffff:ffff:ffff]", "[fe80::1%eth0]", "api.openai.com,evil.example", "a..b", "",
		"2001:db8::1", "::ffff:10.0.0.1", "1.2.3.4.", "1.2.3.4.:443",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		dst := make([]byte, 0, len(raw)+MaxCanonicalGrowth)
		a, ok := CanonicalAuthority(dst, raw)
		if !ok {
			return
		}
		if &a.Host[:cap(a.Host)][cap(a.Host)-1] != &dst[:cap(dst)][cap(dst)-1] {
			t.Fatalf("%q canonicalised to %q outside dst (cap %d)", raw, a.Host, cap(dst))
		}
		s := a.String()
		for i := 0; i < len(s); i++ {
			if !isCanonicalByte(s[i]) {
				t.Fatalf("%q canonicalised to %q with byte %q", raw, s, s[i])
			}
		}
		if strings.ContainsAny(s, "@,%\\") {
			t.Fatalf("%q canonicalised to %q", raw, s)
		}
		b, ok := CanonicalAuthority(nil, []byte(s))
		if !ok || b.String() != s || b.Port != a.Port || !bytes.Equal(a.Host, b.Host) {
			t.Fatalf("not idempotent: %q -> %q -> %q (ok %v)", raw, s, b.String(), ok)
		}
		if len(a.Host) > maxHostLen+2 || a.Host[0] == '.' || a.Host[len(a.Host)-1] == '.' {
			t.Fatalf("%q canonicalised to %q", raw, s)
		}
		// The only case fold is ASCII, so the canonical form has the input's length,
		// less a trailing dot, unless it is IPv6.
		if a.Host[0] != '[' {
			if n := len(s); n != len(raw) && n != len(raw)-1 {
				t.Fatalf("%q canonicalised to %q", raw, s)
			}
			if !bytes.EqualFold(bytes.Replace(raw, []byte(".:"), []byte(":"), 1), []byte(s)) &&
				!bytes.EqualFold(bytes.TrimSuffix(raw, []byte(".")), []byte(s)) {
				t.Fatalf("%q canonicalised to %q: more than case and one trailing dot changed", raw, s)
			}
		}
	})
}

func FuzzHostRuleMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"*.atlassian.net", "acme.atlassian.net"},
		{"*.atlassian.net", "atlassian.net"},
		{"*.atlassian.net", "a.b.atlassian.net"},
		{"*.example.com:8443", "a.example.com:8443"},
		{"api.openai.com", "API.openai.com.:443"},
		{"api.openai.com", "api.openai.com.evil.example"},
		{"203.0.113.50", "203.0.113.50"},
		{"[::1]:80", "[0::1]:80"},
		{"my-service:8080", "MY-SERVICE.:8080"},
		{"localhost", "localhost:443"},
		{"sk-test-OPENAI-aaaa1111", "sk-test-OPENAI-aaaa1111"},
	} {
		f.Add(s[0], []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, entry string, raw []byte) {
		r, err := ParseHostRule(entry)
		if err != nil {
			return
		}
		if again, err := ParseHostRule(r.String()); err != nil || again != r {
			t.Fatalf("rule %q -> %q does not parse back: %v", entry, r.String(), err)
		}
		if r.port == 0 && !r.wildcard && r.host != "localhost" && r.host[0] != '[' && !strings.Contains(r.host, ".") {
			t.Fatalf("single label %q allowed without a port", entry)
		}
		port := ""
		if r.port != 0 {
			port = ":" + strconv.Itoa(int(r.port))
		}
		if r.wildcard {
			if matches(r, r.host+port) {
				t.Fatalf("%q matches its own suffix", entry)
			}
			if matches(r, "a.b."+r.host+port) {
				t.Fatalf("%q matches two extra labels", entry)
			}
			if !matches(r, "a."+r.host+port) {
				t.Fatalf("%q does not match one extra label", entry)
			}
		} else if !matches(r, r.host+port) {
			t.Fatalf("%q does not match itself", entry)
		}
		a, ok := CanonicalAuthority(nil, raw)
		if !ok || !r.Matches(a) {
			return
		}
		if !r.wildcard {
			if string(a.Host) != r.host {
				t.Fatalf("%q matches %q", entry, raw)
			}
			return
		}
		prefix, found := strings.CutSuffix(string(a.Host), "."+r.host)
		if !found || prefix == "" || strings.Contains(prefix, ".") {
			t.Fatalf("%q matches %q", entry, raw)
		}
	})
}

func BenchmarkCanonicalAuthority(b *testing.B) {
	for _, raw := range []string{"API.OpenAI.com:443", "generativelanguage.googleapis.com", "[2001:db8::1]:8443"} {
		b.Run(raw, func(b *testing.B) {
			rawb := []byte(raw)
			dst := make([]byte, 0, len(rawb)+MaxCanonicalGrowth)
			for b.Loop() {
				CanonicalAuthority(dst, rawb)
			}
		})
	}
}

func BenchmarkHostRuleMatches(b *testing.B) {
	exact, wild := mustRule(b, "api.openai.com"), mustRule(b, "*.atlassian.net")
	a, _ := CanonicalAuthority(nil, []byte("acme.atlassian.net"))
	for b.Loop() {
		exact.Matches(a)
		wild.Matches(a)
	}
}
