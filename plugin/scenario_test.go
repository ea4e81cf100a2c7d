package main

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// The scenario table is the contract of the filter, run twice: natively
// (filter + policies against a fake host, TestScenariosNative) and through
// the compiled module in hostsim (TestScenariosWasm). Rows come from
// real bug reports (cases 01 to 10); each runs with on_disallowed set to
// passthrough and again to deny.

// Fixture secrets. Values are obviously fake; placeholder and value lengths
// differ on purpose, and GEMINI's value holds + / = to exercise encoding.
const (
	phOpenAI    = "sgp_openai_000000000000000000001"
	phOpenAIOrg = "sgp_openaiorg_0000000000000000002"
	phAnthropic = "sgp_anthropic_0000000000000000003"
	phGitHub    = "sgp_github_000000000000000000004"
	phGemini    = "sgp_gemini_000000000000000000005"
	phJira      = "sgp_jira_00000000000000000000006"

	valOpenAI    = "sk-test-OPENAI-aaaa1111"
	valOpenAIOrg = "org-test-FFFF6666"
	valAnthropic = "sk-ant-test-bbbb2222"
	valGitHub    = "ghp_testCCCC3333"
	valGemini    = "AIza+test/DDDD=4444"
	valJira      = "jira-test-EEEE5555"
)

// testValues are every real value any test configures; TestMain scans every
// captured log line and metric name for each of them.
var testValues = []string{valOpenAI, valOpenAIOrg, valAnthropic, valGitHub, valGemini, valJira}

// fixtureConfig is the plugin configuration of the fixtures. openaiHosts
// overrides OPENAI_API_KEY's hosts (empty: the default table's).
func fixtureConfig(mode, openaiHosts string) []byte {
	openai := fmt.Sprintf(`{"placeholder": %q, "value": %q`, phOpenAI, valOpenAI+"\n")
	if openaiHosts != "" {
		openai += `, "hosts": ` + openaiHosts
	}
	openai += "}"
	return []byte(`{
  "session": "scenarios",
  "on_disallowed": "` + mode + `",
  "secrets": {
    "OPENAI_API_KEY": ` + openai + `,
    "OPENAI_ORG": {"placeholder": "` + phOpenAIOrg + `", "value": "` + valOpenAIOrg + `", "hosts": ["api.openai.com"]},
    "ANTHROPIC_API_KEY": {"placeholder": "` + phAnthropic + `", "value": "` + valAnthropic + `"},
    "GITHUB_TOKEN": {"placeholder": "` + phGitHub + `", "value": "` + valGitHub + `", "hosts": ["github.com", "api.github.com"]},
    "GEMINI_API_KEY": {"placeholder": "` + phGemini + `", "value": "` + valGemini + `"},
    "JIRA_TOKEN": {"placeholder": "` + phJira + `", "value": "` + valJira + `", "hosts": ["*.atlassian.net"]}
  }
}`)
}

type hdr struct{ name, value string }

// get builds a request's header lines: pseudo-headers first, as Envoy's map holds them.
func get(authority, path string, extra ...hdr) []hdr {
	return req("GET", authority, path, extra...)
}

func req(method, authority, path string, extra ...hdr) []hdr {
	hs := []hdr{{":method", method}, {":scheme", "http"}, {":authority", authority}}
	if path != "" {
		hs = append(hs, hdr{":path", path})
	}
	return append(hs, extra...)
}

// with returns hs with the first line named name set to value.
func with(hs []hdr, name, value string) []hdr {
	out := append([]hdr(nil), hs...)
	for i := range out {
		if out[i].name == name {
			out[i].value = value
			return out
		}
	}
	panic("no header " + name)
}

func basic(userPass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userPass))
}

// basicUnpadded writes Basic credentials without the base64 padding, as
// some clients do.
func basicUnpadded(userPass string) string {
	return "Basic " + base64.RawStdEncoding.EncodeToString([]byte(userPass))
}

type scenario struct {
	name    string
	openai  string // OPENAI_API_KEY hosts override, JSON (see fixtureConfig)
	request []hdr
	// forwarded is what goes upstream in passthrough mode; nil means the
	// request exactly as sent.
	forwarded  []hdr
	injected   []string
	violations []string
	// host and reason name the destination in violation logs and the deny body.
	host, reason string
	// nativeOnly rows hold header maps Envoy never hands a filter: its header
	// map folds a host header into :authority (TestHostHeaderFoldedByEnvoy).
	nativeOnly bool
}

func scenarios() []scenario {
	bearer := func(ph string) hdr { return hdr{"authorization", "Bearer " + ph} }
	var rows []scenario

	// case-01: a placeholder sent to the wrong host, or another secret's host.
	rows = append(rows,
		scenario{name: "01a/openai key at anthropic", request: get("api.anthropic.com", "/v1/messages", hdr{"x-api-key", phOpenAI}),
			violations: []string{"OPENAI_API_KEY"}, host: "api.anthropic.com"},
		scenario{name: "01b/openai host with anthropic key alongside",
			request:   get("api.openai.com", "/v1/models", bearer(phOpenAI), hdr{"x-extra", phAnthropic}),
			forwarded: get("api.openai.com", "/v1/models", hdr{"authorization", "Bearer " + valOpenAI}, hdr{"x-extra", phAnthropic}),
			injected:  []string{"OPENAI_API_KEY"}, violations: []string{"ANTHROPIC_API_KEY"}, host: "api.openai.com"},
		scenario{name: "01c/openai key at evil host", request: get("evil.example", "/v1/models", bearer(phOpenAI)),
			violations: []string{"OPENAI_API_KEY"}, host: "evil.example"},
		scenario{name: "01d/openai key at openai", request: get("api.openai.com", "/v1/models", bearer(phOpenAI)),
			forwarded: get("api.openai.com", "/v1/models", hdr{"authorization", "Bearer " + valOpenAI}),
			injected:  []string{"OPENAI_API_KEY"}, host: "api.openai.com"},
	)

	// case-02: look-alike hosts.
	for _, h := range []string{"api.openai.com.evil.example", "evilapi.openai.com", "xapi.openai.com", "openai.com", "sub.api.openai.com"} {
		rows = append(rows, scenario{name: "02/openai look-alike " + h, request: get(h, "/v1/models", bearer(phOpenAI)),
			violations: []string{"OPENAI_API_KEY"}, host: h})
	}
	for _, h := range []string{"atlassian.net", "evilatlassian.net", "acme.atlassian.net.evil.example", "a.b.atlassian.net"} {
		rows = append(rows, scenario{name: "02/jira look-alike " + h, request: get(h, "/rest/api/3/myself", bearer(phJira)),
			violations: []string{"JIRA_TOKEN"}, host: h})
	}
	rows = append(rows, scenario{name: "02/jira one label under the wildcard", request: get("acme.atlassian.net", "/rest/api/3/myself", bearer(phJira)),
		forwarded: get("acme.atlassian.net", "/rest/api/3/myself", hdr{"authorization", "Bearer " + valJira}),
		injected:  []string{"JIRA_TOKEN"}, host: "acme.atlassian.net"})

	// case-03: case, trailing dot and port, with the entry written both ways.
	for _, entry := range []string{`["api.openai.com"]`, `["API.OpenAI.com."]`} {
		for _, h := range []struct{ authority, canonical string }{
			{"API.OPENAI.COM", "api.openai.com"}, {"Api.OpenAI.com:443", "api.openai.com:443"}, {"api.openai.com.", "api.openai.com"},
		} {
			rows = append(rows, scenario{name: "03/" + entry + " allows " + h.authority, openai: entry,
				request:   get(h.authority, "/v1/models", bearer(phOpenAI)),
				forwarded: get(h.authority, "/v1/models", hdr{"authorization", "Bearer " + valOpenAI}),
				injected:  []string{"OPENAI_API_KEY"}, host: h.canonical})
		}
		for _, h := range []struct{ authority, canonical, reason string }{
			{"api.openai.com..", "", "malformed_authority"},
			{"api.openai.com:8443", "api.openai.com:8443", ""},
			{"api.openai.com:80", "api.openai.com:80", ""},
			{"api.openai.com:", "", "malformed_authority"},
			{"api.openai.com:443.evil.example", "", "malformed_authority"},
		} {
			rows = append(rows, scenario{name: "03/" + entry + " refuses " + h.authority, openai: entry,
				request:    get(h.authority, "/v1/models", bearer(phOpenAI)),
				violations: []string{"OPENAI_API_KEY"}, host: h.canonical, reason: h.reason})
		}
	}
	rows = append(rows,
		scenario{name: "03/port entry matches its port", openai: `["api.example.com:8443"]`,
			request:   get("api.example.com:8443", "/", bearer(phOpenAI)),
			forwarded: get("api.example.com:8443", "/", hdr{"authorization", "Bearer " + valOpenAI}),
			injected:  []string{"OPENAI_API_KEY"}, host: "api.example.com:8443"},
		scenario{name: "03/port entry refuses 443", openai: `["api.example.com:8443"]`,
			request:    get("api.example.com", "/", bearer(phOpenAI)),
			violations: []string{"OPENAI_API_KEY"}, host: "api.example.com"},
	)

	// case-04: userinfo in the authority never matches, and a placeholder
	// inside the authority is never substituted.
	for _, a := range []string{"api.openai.com@evil.example", "evil.example@api.openai.com", phOpenAI + "@api.openai.com", "user:pass@api.openai.com:443"} {
		rows = append(rows, scenario{name: "04/userinfo " + a, request: get(a, "/v1/models", bearer(phOpenAI)),
			violations: []string{"OPENAI_API_KEY"}, reason: "malformed_authority"})
	}
	rows = append(rows, scenario{name: "04/placeholder only in the authority", request: get(phOpenAI+"@api.openai.com", "/v1/models")})

	// case-05: the host checked is the host the request goes to.
	rows = append(rows,
		scenario{name: "05/host header differs from authority", request: get("api.openai.com", "/v1/models", hdr{"host", "evil.example"}, bearer(phOpenAI)),
			violations: []string{"OPENAI_API_KEY"}, reason: "host_mismatch", nativeOnly: true},
		scenario{name: "05/host header agrees after canonicalisation", request: get("api.openai.com", "/v1/models", hdr{"host", "API.OpenAI.com."}, bearer(phOpenAI)),
			forwarded: get("api.openai.com", "/v1/models", hdr{"host", "API.OpenAI.com."}, hdr{"authorization", "Bearer " + valOpenAI}),
			injected:  []string{"OPENAI_API_KEY"}, host: "api.openai.com", nativeOnly: true},
	)
	for _, a := range []string{"api.openai.com,evil.example", "api.openai.com evil.example", "api.openai.com\tx", "api%2eopenai.com", `api.openai.com\evil`, "api.openаi.com"} {
		rows = append(rows, scenario{name: fmt.Sprintf("05/authority %q", a), request: get(a, "/v1/models", bearer(phOpenAI)),
			violations: []string{"OPENAI_API_KEY"}, reason: "malformed_authority"})
	}
	rows = append(rows,
		scenario{name: "05/CONNECT is never rewritten", request: []hdr{{":method", "CONNECT"}, {":authority", "api.openai.com:443"}, bearer(phOpenAI)}},
		scenario{name: "05/proxy-authorization is never rewritten",
			request:   get("api.openai.com", "/v1/models", hdr{"proxy-authorization", "Bearer " + phOpenAI}, bearer(phOpenAI)),
			forwarded: get("api.openai.com", "/v1/models", hdr{"proxy-authorization", "Bearer " + phOpenAI}, hdr{"authorization", "Bearer " + valOpenAI}),
			injected:  []string{"OPENAI_API_KEY"}, host: "api.openai.com"},
	)

	// case-06: repeated headers and several placeholders in one value.
	many := func(a, b string) []hdr {
		return get("api.openai.com", "/v1/models",
			hdr{"authorization", "Bearer " + a}, hdr{"x-api-key", a}, hdr{"x-api-key", a},
			hdr{"x-custom", "a=" + a + "; b=" + b + "; c=" + a})
	}
	rows = append(rows,
		scenario{name: "06/every occurrence, lines kept", request: many(phOpenAI, phOpenAIOrg), forwarded: many(valOpenAI, valOpenAIOrg),
			injected: []string{"OPENAI_API_KEY", "OPENAI_ORG"}, host: "api.openai.com"},
		scenario{name: "06/twin at evil host", request: with(many(phOpenAI, phOpenAIOrg), ":authority", "evil.example"),
			violations: []string{"OPENAI_API_KEY", "OPENAI_ORG"}, host: "evil.example"},
	)

	// case-07: a placeholder inside HTTP Basic credentials.
	rows = append(rows,
		scenario{name: "07/basic password at github", request: get("github.com", "/org/repo.git/info/refs", hdr{"authorization", basic("x-access-token:" + phGitHub)}),
			forwarded: get("github.com", "/org/repo.git/info/refs", hdr{"authorization", basic("x-access-token:" + valGitHub)}),
			injected:  []string{"GITHUB_TOKEN"}, host: "github.com"},
		scenario{name: "07/basic user, empty password", request: get("api.github.com", "/user", hdr{"authorization", basic(phGitHub + ":")}),
			forwarded: get("api.github.com", "/user", hdr{"authorization", basic(valGitHub + ":")}),
			injected:  []string{"GITHUB_TOKEN"}, host: "api.github.com"},
		scenario{name: "07/basic at evil host", request: get("evil.example", "/org/repo.git/info/refs", hdr{"authorization", basic("x-access-token:" + phGitHub)}),
			violations: []string{"GITHUB_TOKEN"}, host: "evil.example"},
		scenario{name: "07/basic that does not decode", request: get("github.com", "/", hdr{"authorization", "Basic !!!not-base64!!!"})},
		// Without padding: decoded all the same, and sent on without padding.
		scenario{name: "07/unpadded basic at github", request: get("github.com", "/org/repo.git/info/refs", hdr{"authorization", basicUnpadded("x-access-token:" + phGitHub)}),
			forwarded: get("github.com", "/org/repo.git/info/refs", hdr{"authorization", basicUnpadded("x-access-token:" + valGitHub)}),
			injected:  []string{"GITHUB_TOKEN"}, host: "github.com"},
		scenario{name: "07/unpadded basic at evil host", request: get("evil.example", "/org/repo.git/info/refs", hdr{"authorization", basicUnpadded("x-access-token:" + phGitHub)}),
			violations: []string{"GITHUB_TOKEN"}, host: "evil.example"},
	)

	// case-08: a placeholder in the query string.
	const gl = "generativelanguage.googleapis.com"
	encoded := "AIza%2Btest%2FDDDD%3D4444"
	rows = append(rows,
		scenario{name: "08/query", request: get(gl, "/v1beta/models?key="+phGemini+"&pageSize=5"),
			forwarded: get(gl, "/v1beta/models?key="+encoded+"&pageSize=5"), injected: []string{"GEMINI_API_KEY"}, host: gl},
		scenario{name: "08/query percent-encoded by the client", request: get(gl, "/v1beta/models?key=sgp%5Fgemini%5f000000000000000000005&pageSize=5"),
			forwarded: get(gl, "/v1beta/models?key="+encoded+"&pageSize=5"), injected: []string{"GEMINI_API_KEY"}, host: gl},
		scenario{name: "08/query twice, others in order", request: get(gl, "/v1beta/models?pageSize=5&key="+phGemini+"&alt="+phGemini),
			forwarded: get(gl, "/v1beta/models?pageSize=5&key="+encoded+"&alt="+encoded), injected: []string{"GEMINI_API_KEY"}, host: gl},
		scenario{name: "08/query at evil host", request: get("evil.example", "/v1beta/models?key="+phGemini+"&pageSize=5"),
			violations: []string{"GEMINI_API_KEY"}, host: "evil.example"},
		// A stray '%' would take the value's first bytes as its digits ("%aA"): it goes as "%25".
		scenario{name: "08/stray percent before the placeholder", request: get(gl, "/v1beta/models?key=%a"+phGemini),
			forwarded: get(gl, "/v1beta/models?key=%25a"+encoded), injected: []string{"GEMINI_API_KEY"}, host: gl},
		scenario{name: "08/stray percent before the placeholder at evil host", request: get("evil.example", "/v1beta/models?key=%a"+phGemini),
			violations: []string{"GEMINI_API_KEY"}, host: "evil.example"},
		scenario{name: "08/placeholder in the path before the query is left alone", request: get(gl, "/v1beta/"+phGemini+"/models")},
	)

	// case-09: the OPENAI fixture value ends in "\n" (fixtureConfig): trimmed at load.
	rows = append(rows, scenario{name: "09/trailing newline trimmed", request: get("api.openai.com", "/v1/models", bearer(phOpenAI)),
		forwarded: get("api.openai.com", "/v1/models", hdr{"authorization", "Bearer " + valOpenAI}),
		injected:  []string{"OPENAI_API_KEY"}, host: "api.openai.com"})

	// One secret sent many ways in one request is injected, or reported and
	// counted, once.
	everywhere := func(authority, v, query string) []hdr {
		return get(authority, "/v1/models?key="+v+"&alt="+query,
			hdr{"authorization", basic("u:" + v)}, hdr{"x-api-key", v}, hdr{"x-api-key", v})
	}
	rows = append(rows,
		scenario{name: "repeated placeholder at openai", request: everywhere("api.openai.com", phOpenAI, "sgp%5Fopenai_000000000000000000001"),
			forwarded: everywhere("api.openai.com", valOpenAI, valOpenAI), injected: []string{"OPENAI_API_KEY"}, host: "api.openai.com"},
		scenario{name: "repeated placeholder at evil host", request: everywhere("evil.example", phOpenAI, "sgp%5Fopenai_000000000000000000001"),
			violations: []string{"OPENAI_API_KEY"}, host: "evil.example"},
	)

	// IP literals: IPv6 only in brackets; an IPv4 literal with a trailing
	// dot is malformed, since a resolver may read it as a name.
	const v6, v4 = `["[2001:db8::1]"]`, `["203.0.113.50"]`
	rows = append(rows,
		scenario{name: "ip/bracketed ipv6", openai: v6, request: get("[2001:DB8:0::1]:443", "/", bearer(phOpenAI)),
			forwarded: get("[2001:DB8:0::1]:443", "/", hdr{"authorization", "Bearer " + valOpenAI}),
			injected:  []string{"OPENAI_API_KEY"}, host: "[2001:db8::1]:443"},
		scenario{name: "ip/ipv6 without brackets", openai: v6, request: get("2001:db8::1", "/", bearer(phOpenAI)),
			violations: []string{"OPENAI_API_KEY"}, reason: "malformed_authority"},
		scenario{name: "ip/ipv4", openai: v4, request: get("203.0.113.50", "/", bearer(phOpenAI)),
			forwarded: get("203.0.113.50", "/", hdr{"authorization", "Bearer " + valOpenAI}),
			injected:  []string{"OPENAI_API_KEY"}, host: "203.0.113.50"},
		scenario{name: "ip/ipv4 with a trailing dot", openai: v4, request: get("203.0.113.50.", "/", bearer(phOpenAI)),
			violations: []string{"OPENAI_API_KEY"}, reason: "malformed_authority"},
		scenario{name: "ip/ipv4 at another address", openai: v4, request: get("203.0.113.51", "/", bearer(phOpenAI)),
			violations: []string{"OPENAI_API_KEY"}, host: "203.0.113.51"},
	)

	// No placeholder: forwarded exactly, nothing logged or counted.
	rows = append(rows, scenario{name: "no placeholder", request: get("api.openai.com", "/v1/models", hdr{"authorization", "Bearer sk-live-not-ours"}, hdr{"accept", "*/*"})})
	return rows
}

// denyBody is the 403 body expected in deny mode.
func (s scenario) denyBody() string {
	var b strings.Builder
	b.WriteString(`{"error":"secret_not_allowed","secrets":[`)
	for i, n := range s.violations {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q", n)
	}
	fmt.Fprintf(&b, `],"host":%q`, s.host)
	if s.reason != "" {
		fmt.Fprintf(&b, `,"reason":%q`, s.reason)
	}
	b.WriteByte('}')
	return b.String()
}

// destination is how violation logs name the host.
func (s scenario) destination() string {
	if s.host == "" {
		return "(none: " + s.reason + ")"
	}
	return s.host
}
