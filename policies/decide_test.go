package policies

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Fixtures from the cases README (values obviously fake).
const (
	phOpenAI    = "sgp_openai_000000000000000000001"
	phOpenAIOrg = "sgp_openaiorg_0000000000000000002"
	phAnthropic = "sgp_anthropic_0000000000000000003"
	phGitHub    = "sgp_github_000000000000000000004"
	phGemini    = "sgp_gemini_000000000000000000005"
	phJira      = "sgp_jira_00000000000000000000006"
	// Only base64-alphabet bytes: "Basic "+phAlnum decodes as valid base64.
	phAlnum = "sgpALNUMplaceholder0000000000001"
	// Hex digits first: in "%deadbeef_…" the '%' swallows "de" when decoded.
	phHex = "deadbeef_placeholder_00000000002"

	valOpenAI    = "sk-test-OPENAI-aaaa1111"
	valOpenAIOrg = "org-test-FFFF6666"
	valAnthropic = "sk-ant-test-bbbb2222"
	valGitHub    = "ghp_testCCCC3333"
	valGemini    = "AIza+test/DDDD=4444"
	valJira      = "jira-test-EEEE5555"
	valAlnum     = "alnum-test-GGGG7777"
	valHex       = "hex-test-HHHH8888"
)

type fixtureSecret struct {
	name, placeholder, value string
	hosts                    []string
}

var fixtureSecrets = []fixtureSecret{
	{"ALNUM_TOKEN", phAlnum, valAlnum, []string{"api.alnum.example"}},
	{"ANTHROPIC_API_KEY", phAnthropic, valAnthropic, []string{"api.anthropic.com"}},
	{"GEMINI_API_KEY", phGemini, valGemini, []string{"generativelanguage.googleapis.com"}},
	{"GITHUB_TOKEN", phGitHub, valGitHub, []string{"github.com", "api.github.com"}},
	{"HEX_TOKEN", phHex, valHex, []string{"api.hex.example"}},
	{"JIRA_TOKEN", phJira, valJira, []string{"*.atlassian.net"}},
	{"OPENAI_API_KEY", phOpenAI, valOpenAI, []string{"api.openai.com"}},
	{"OPENAI_ORG", phOpenAIOrg, valOpenAIOrg, []string{"api.openai.com"}},
}

var attackerHosts = []string{"evil.example", "attacker.test", "203.0.113.50"}

func newSession(t testing.TB, mode Mode, secrets []fixtureSecret) *Session {
	t.Helper()
	s := &Session{ID: "test", OnDisallowed: mode}
	for _, f := range secrets {
		sec := Secret{Name: f.name, Placeholder: f.placeholder, Value: NewValue([]byte(f.value)), OnDisallowed: mode}
		for _, h := range f.hosts {
			rule, err := ParseHostRule(h)
			if err != nil {
				t.Fatal(err)
			}
			sec.Hosts = append(sec.Hosts, rule)
		}
		s.Secrets = append(s.Secrets, sec)
	}
	return s
}

// hdrs builds header lines from name, value pairs.
func hdrs(pairs ...string) []Header {
	h := make([]Header, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		h = append(h, Header{Name: []byte(pairs[i]), Value: []byte(pairs[i+1])})
	}
	return h
}

func pairsOf(h []Header) []string {
	var p []string
	for _, l := range h {
		p = append(p, string(l.Name), string(l.Value))
	}
	return p
}

func basic(cred string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(cred)) }

type decideCase struct {
	name string
	in   []string // header name, value pairs
	// Expectations in passthrough mode. out nil: Unchanged.
	out                  []string
	host, reason         string
	injected, violations []string
	// denyBody is the exact body in deny mode when violations is non-empty;
	// with no violation, deny mode expects what passthrough expects.
	denyBody string
}

func req(authority string, rest ...string) []string {
	return append([]string{":method", "GET", ":scheme", "https", ":authority", authority, ":path", "/v1/models"}, rest...)
}

func denied(host string, names ...string) string {
	return fmt.Sprintf(`{"error":"secret_not_allowed","secrets":["%s"],"host":%q}`, strings.Join(names, `","`), host)
}

func deniedFor(reason string, names ...string) string {
	return fmt.Sprintf(`{"error":"secret_not_allowed","secrets":["%s"],"host":"","reason":%q}`, strings.Join(names, `","`), reason)
}

var decideCases = []decideCase{
	// case-01
	{
		name:       "case-01a openai key to anthropic",
		in:         req("api.anthropic.com", "x-api-key", phOpenAI),
		host:       "api.anthropic.com",
		violations: []string{"OPENAI_API_KEY"},
		denyBody:   denied("api.anthropic.com", "OPENAI_API_KEY"),
	},
	{
		name:       "case-01b own key injected, other provider's key passes",
		in:         req("api.openai.com", "authorization", "Bearer "+phOpenAI, "x-extra", phAnthropic),
		out:        req("api.openai.com", "authorization", "Bearer "+valOpenAI, "x-extra", phAnthropic),
		host:       "api.openai.com",
		injected:   []string{"OPENAI_API_KEY"},
		violations: []string{"ANTHROPIC_API_KEY"},
		denyBody:   denied("api.openai.com", "ANTHROPIC_API_KEY"),
	},
	{
		name:       "case-01c evil host",
		in:         req("evil.example", "authorization", "Bearer "+phOpenAI),
		host:       "evil.example",
		violations: []string{"OPENAI_API_KEY"},
		denyBody:   denied("evil.example", "OPENAI_API_KEY"),
	},
	{
		name:     "case-01d allowed host",
		in:       req("api.openai.com", "authorization", "Bearer "+phOpenAI),
		out:      req("api.openai.com", "authorization", "Bearer "+valOpenAI),
		host:     "api.openai.com",
		injected: []string{"OPENAI_API_KEY"},
	},
	{
		name: "no placeholder",
		in:   req("api.openai.com", "authorization", "Bearer sk-real-but-not-ours", "x-request-id", "3f2a9c1e-7b44-4d1a-9e0f-2b8c6d5a4e31"),
	},
	{
		name:     "canonical host in the decision",
		in:       req("API.OpenAI.com.:443", "authorization", "Bearer "+phOpenAI),
		out:      req("API.OpenAI.com.:443", "authorization", "Bearer "+valOpenAI),
		host:     "api.openai.com:443",
		injected: []string{"OPENAI_API_KEY"},
	},
	{
		name:     "wildcard host",
		in:       req("acme.atlassian.net", "authorization", "Bearer "+phJira),
		out:      req("acme.atlassian.net", "authorization", "Bearer "+valJira),
		host:     "acme.atlassian.net",
		injected: []string{"JIRA_TOKEN"},
	},
	{
		name:       "wildcard never the apex",
		in:         req("atlassian.net", "authorization", "Bearer "+phJira),
		host:       "atlassian.net",
		violations: []string{"JIRA_TOKEN"},
		denyBody:   denied("atlassian.net", "JIRA_TOKEN"),
	},
	{
		name:       "look-alike host",
		in:         req("api.openai.com.evil.example", "authorization", "Bearer "+phOpenAI),
		host:       "api.openai.com.evil.example",
		violations: []string{"OPENAI_API_KEY"},
		denyBody:   denied("api.openai.com.evil.example", "OPENAI_API_KEY"),
	},
	{
		name:     "header names any case",
		in:       req("api.openai.com", "Authorization", "Bearer "+phOpenAI, "X-Api-Key", phOpenAI),
		out:      req("api.openai.com", "Authorization", "Bearer "+valOpenAI, "X-Api-Key", valOpenAI),
		host:     "api.openai.com",
		injected: []string{"OPENAI_API_KEY"},
	},
	{
		name:     "value with + / = goes raw into a header",
		in:       req("generativelanguage.googleapis.com", "x-goog-api-key", phGemini),
		out:      req("generativelanguage.googleapis.com", "x-goog-api-key", valGemini),
		host:     "generativelanguage.googleapis.com",
		injected: []string{"GEMINI_API_KEY"},
	},
	{
		name:     "placeholder inside a longer token and back to back",
		in:       req("api.openai.com", "cookie", "k=xx"+phOpenAI+phOpenAIOrg+"yy"),
		out:      req("api.openai.com", "cookie", "k=xx"+valOpenAI+valOpenAIOrg+"yy"),
		host:     "api.openai.com",
		injected: []string{"OPENAI_API_KEY", "OPENAI_ORG"},
	},
	{
		name: "placeholder prefix only is not a placeholder",
		in:   req("api.openai.com", "x-note", phOpenAI[:len(phOpenAI)-1]+" "+phOpenAI[1:]),
	},
	{
		name: "pseudo-headers other than :path are never scanned",
		in: []string{":method", "GET", ":scheme", phOpenAI, ":authority", "api.openai.com", ":path", "/" + phOpenAI,
			":protocol", phOpenAI},
	},
	{
		name: "the path before the query is not scanned",
		in:   []string{":method", "GET", ":authority", "api.openai.com", ":path", "/keys/" + phOpenAI + "/x"},
	},

	// case-05
	{
		name:       "case-05 host header differs from :authority",
		in:         req("api.openai.com", "host", "evil.example", "authorization", "Bearer "+phOpenAI),
		reason:     ReasonHostMismatch,
		violations: []string{"OPENAI_API_KEY"},
		denyBody:   deniedFor(ReasonHostMismatch, "OPENAI_API_KEY"),
	},
	{
		name:       "case-05 host header differs by port",
		in:         req("api.openai.com", "host", "api.openai.com:8443", "authorization", "Bearer "+phOpenAI),
		reason:     ReasonHostMismatch,
		violations: []string{"OPENAI_API_KEY"},
		denyBody:   deniedFor(ReasonHostMismatch, "OPENAI_API_KEY"),
	},
	{
		name:     "case-05 host header equal after canonicalisation",
		in:       req("api.openai.com", "Host", "API.OpenAI.com.", "authorization", "Bearer "+phOpenAI),
		out:      req("api.openai.com", "Host", "API.OpenAI.com.", "authorization", "Bearer "+valOpenAI),
		host:     "api.openai.com",
		injected: []string{"OPENAI_API_KEY"},
	},
	{
		name:       "case-05 malformed host header",
		in:         req("api.openai.com", "host", "api.openai.com evil.example", "authorization", "Bearer "+phOpenAI),
		reason:     ReasonMalformedAuthority,
		violations: []string{"OPENAI_API_KEY"},
		denyBody:   deniedFor(ReasonMalformedAuthority, "OPENAI_API_KEY"),
	},
	{
		name:       "case-05 two host lines",
		in:         req("api.openai.com", "host", "api.openai.com", "host", "api.openai.com", "authorization", "Bearer "+phOpenAI),
		reason:     ReasonRepeatedAuthority,
		violations: []string{"OPENAI_API_KEY"},
		denyBody:   deniedFor(ReasonRepeatedAuthority, "OPENAI_API_KEY"),
	},
	{
		name:       "case-05 two :authority lines",
		in:         req("api.openai.com", ":authority", "api.openai.com", "authorization", "Bearer "+phOpenAI),
		reason:     ReasonRepeatedAuthority,
		violations: []string{"OPENAI_API_KEY"},
		denyBody:   deniedFor(ReasonRepeatedAuthority, "OPENAI_API_KEY"),
	},
	{
		name:       "case-05 no :authority, even with a host header",
		in:         []string{":method", "GET", ":path", "/", "host", "api.openai.com", "authorization", "Bearer " + phOpenAI},
		reason:     ReasonMissingAuthority,
		violations: []string{"OPENAI_API_KEY"},
		denyBody:   deniedFor(ReasonMissingAuthority, "OPENAI_API_KEY"),
	},
	{
		name: "case-05 CONNECT is never scanned",
		in:   []string{":method", "CONNECT", ":authority", "api.openai.com:443", "proxy-authorization", "Bearer " + phOpenAI, "x-api-key", phOpenAI},
	},
	{
		name: "case-05 CONNECT to an attacker is never scanned either",
		in:   []string{":authority", "evil.example:443", "x-api-key", phOpenAI, ":method", "CONNECT"},
	},
	{
		name: "case-05 proxy-authorization is never rewritten",
		in:   req("api.openai.com", "proxy-authorization", "Bearer "+phOpenAI, "Proxy-Authorization", basic(phOpenAI+":")),
	},

	// case-06
	{
		name: "case-06 repeated headers and several placeholders in one value",
		in: req("api.openai.com",
			"authorization", "Bearer "+phOpenAI,
			"x-api-key", phOpenAI,
			"x-api-key", phOpenAI,
			"x-custom", "a="+phOpenAI+"; b="+phOpenAIOrg+"; c="+phOpenAI),
		out: req("api.openai.com",
			"authorization", "Bearer sk-test-OPENAI-aaaa1111",
			"x-api-key", "sk-test-OPENAI-aaaa1111",
			"x-api-key", "sk-test-OPENAI-aaaa1111",
			"x-custom", "a=sk-test-OPENAI-aaaa1111; b=org-test-FFFF6666; c=sk-test-OPENAI-aaaa1111"),
		host:     "api.openai.com",
		injected: []string{"OPENAI_API_KEY", "OPENAI_ORG"},
	},
	{
		name:       "case-06 allowed and disallowed in one value: only the allowed one changes",
		in:         req("api.openai.com", "x-custom", "a="+phOpenAI+"; b="+phGitHub+"; c="+phOpenAI),
		out:        req("api.openai.com", "x-custom", "a="+valOpenAI+"; b="+phGitHub+"; c="+valOpenAI),
		host:       "api.openai.com",
		injected:   []string{"OPENAI_API_KEY"},
		violations: []string{"GITHUB_TOKEN"},
		denyBody:   denied("api.openai.com", "GITHUB_TOKEN"),
	},

	// case-07
	{
		name:     "case-07 basic credentials, placeholder as password",
		in:       req("github.com", "authorization", "Basic eC1hY2Nlc3MtdG9rZW46c2dwX2dpdGh1Yl8wMDAwMDAwMDAwMDAwMDAwMDAwMDQ="),
		out:      req("github.com", "authorization", "Basic eC1hY2Nlc3MtdG9rZW46Z2hwX3Rlc3RDQ0NDMzMzMw=="),
		host:     "github.com",
		injected: []string{"GITHUB_TOKEN"},
	},
	{
		name:     "case-07 basic credentials, placeholder as user, empty password",
		in:       req("api.github.com", "authorization", "Basic c2dwX2dpdGh1Yl8wMDAwMDAwMDAwMDAwMDAwMDAwMDQ6"),
		out:      req("api.github.com", "authorization", "Basic Z2hwX3Rlc3RDQ0NDMzMzMzo="),
		host:     "api.github.com",
		injected: []string{"GITHUB_TOKEN"},
	},
	{
		name:       "case-07 basic credentials at evil.example",
		in:         req("evil.example", "authorization", "Basic eC1hY2Nlc3MtdG9rZW46c2dwX2dpdGh1Yl8wMDAwMDAwMDAwMDAwMDAwMDAwMDQ="),
		host:       "evil.example",
		violations: []string{"GITHUB_TOKEN"},
		denyBody:   denied("evil.example", "GITHUB_TOKEN"),
	},
	{
		// The padding left out, as some clients do; the credentials go
		// back out unpadded too.
		name:     "case-07 unpadded basic credentials, placeholder as password",
		in:       req("github.com", "authorization", "Basic eC1hY2Nlc3MtdG9rZW46c2dwX2dpdGh1Yl8wMDAwMDAwMDAwMDAwMDAwMDAwMDQ"),
		out:      req("github.com", "authorization", "Basic eC1hY2Nlc3MtdG9rZW46Z2hwX3Rlc3RDQ0NDMzMzMw"),
		host:     "github.com",
		injected: []string{"GITHUB_TOKEN"},
	},
	{
		name:       "case-07 unpadded basic credentials at evil.example",
		in:         req("evil.example", "authorization", "Basic eC1hY2Nlc3MtdG9rZW46c2dwX2dpdGh1Yl8wMDAwMDAwMDAwMDAwMDAwMDAwMDQ"),
		host:       "evil.example",
		violations: []string{"GITHUB_TOKEN"},
		denyBody:   denied("evil.example", "GITHUB_TOKEN"),
	},
	{
		name:       "case-07 unpadded basic credentials, user allowed, password not",
		in:         req("github.com", "authorization", "Basic c2dwX2dpdGh1Yl8wMDAwMDAwMDAwMDAwMDAwMDAwMDQ6c2dwX29wZW5haV8wMDAwMDAwMDAwMDAwMDAwMDAwMDE"),
		out:        req("github.com", "authorization", "Basic Z2hwX3Rlc3RDQ0NDMzMzMzpzZ3Bfb3BlbmFpXzAwMDAwMDAwMDAwMDAwMDAwMDAwMQ"),
		host:       "github.com",
		injected:   []string{"GITHUB_TOKEN"},
		violations: []string{"OPENAI_API_KEY"},
		denyBody:   denied("github.com", "OPENAI_API_KEY"),
	},
	{
		// URL-safe base64 is not Basic's alphabet: the line is plain text.
		name: "case-07 url-safe base64 is not decoded",
		in:   req("github.com", "authorization", "Basic "+base64.RawURLEncoding.EncodeToString([]byte("x-access-token:"+phGitHub+"?>"))),
	},
	{
		name: "case-07 not base64",
		in:   req("github.com", "authorization", "Basic !!!not-base64!!!"),
	},
	{
		name:     "case-07 scheme any case, several spaces",
		in:       req("github.com", "Authorization", "bAsIc   eC1hY2Nlc3MtdG9rZW46c2dwX2dpdGh1Yl8wMDAwMDAwMDAwMDAwMDAwMDAwMDQ="),
		out:      req("github.com", "Authorization", "bAsIc   eC1hY2Nlc3MtdG9rZW46Z2hwX3Rlc3RDQ0NDMzMzMw=="),
		host:     "github.com",
		injected: []string{"GITHUB_TOKEN"},
	},
	{
		name:       "case-07 basic credentials, user allowed, password not",
		in:         req("github.com", "authorization", "Basic c2dwX2dpdGh1Yl8wMDAwMDAwMDAwMDAwMDAwMDAwMDQ6c2dwX29wZW5haV8wMDAwMDAwMDAwMDAwMDAwMDAwMDE="),
		out:        req("github.com", "authorization", "Basic Z2hwX3Rlc3RDQ0NDMzMzMzpzZ3Bfb3BlbmFpXzAwMDAwMDAwMDAwMDAwMDAwMDAwMQ=="),
		host:       "github.com",
		injected:   []string{"GITHUB_TOKEN"},
		violations: []string{"OPENAI_API_KEY"},
		denyBody:   denied("github.com", "OPENAI_API_KEY"),
	},
	{
		name:     "case-07 Basic with a bare placeholder is scanned as text",
		in:       req("github.com", "authorization", "Basic "+phGitHub),
		out:      req("github.com", "authorization", "Basic "+valGitHub),
		host:     "github.com",
		injected: []string{"GITHUB_TOKEN"},
	},
	{
		name: "case-07 plain base64 without a placeholder",
		in:   req("github.com", "authorization", "Basic dXNlcjpwYXNz"),
	},
	{
		name:     "case-07 Basic with a bare placeholder that is valid base64 is scanned as text",
		in:       req("api.alnum.example", "authorization", "Basic "+phAlnum),
		out:      req("api.alnum.example", "authorization", "Basic "+valAlnum),
		host:     "api.alnum.example",
		injected: []string{"ALNUM_TOKEN"},
	},
	{
		name:       "case-07 Basic with a bare placeholder that is valid base64, at evil.example",
		in:         req("evil.example", "authorization", "Basic "+phAlnum),
		host:       "evil.example",
		violations: []string{"ALNUM_TOKEN"},
		denyBody:   denied("evil.example", "ALNUM_TOKEN"),
	},
	{
		// A raw placeholder makes the line plain: the credentials it would
		// decode to are not scanned, so the GitHub placeholder stays encoded.
		name:     "case-07 raw placeholder wins over decoded credentials",
		in:       req("api.alnum.example", "authorization", "bAsIc  "+phAlnum+base64.StdEncoding.EncodeToString([]byte("x:"+phGitHub))),
		out:      req("api.alnum.example", "authorization", "bAsIc  "+valAlnum+base64.StdEncoding.EncodeToString([]byte("x:"+phGitHub))),
		host:     "api.alnum.example",
		injected: []string{"ALNUM_TOKEN"},
	},

	// case-08
	{
		name:     "case-08 query",
		in:       []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path", "/v1beta/models?key=" + phGemini + "&pageSize=5"},
		out:      []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path", "/v1beta/models?key=AIza%2Btest%2FDDDD%3D4444&pageSize=5"},
		host:     "generativelanguage.googleapis.com",
		injected: []string{"GEMINI_API_KEY"},
	},
	{
		name:     "case-08 percent-encoded placeholder",
		in:       []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path", "/v1beta/models?key=sgp%5Fgemini_000000000000000000005&pageSize=5"},
		out:      []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path", "/v1beta/models?key=AIza%2Btest%2FDDDD%3D4444&pageSize=5"},
		host:     "generativelanguage.googleapis.com",
		injected: []string{"GEMINI_API_KEY"},
	},
	{
		name: "case-08 fully and lowercase percent-encoded, stray percent kept",
		in: []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path",
			"/v1beta/models?a=100%&key=%73%67%70%5f%67emini%5F000000000000000000005&b=%zz%4"},
		out: []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path",
			"/v1beta/models?a=100%&key=AIza%2Btest%2FDDDD%3D4444&b=%zz%4"},
		host:     "generativelanguage.googleapis.com",
		injected: []string{"GEMINI_API_KEY"},
	},
	{
		name:     "case-08 two placeholders, other parameters kept in order",
		in:       []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path", "/v1beta/models?pageSize=5&key=" + phGemini + "&alt=sgp%5Fgemini%5F000000000000000000005&x=%2F"},
		out:      []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path", "/v1beta/models?pageSize=5&key=AIza%2Btest%2FDDDD%3D4444&alt=AIza%2Btest%2FDDDD%3D4444&x=%2F"},
		host:     "generativelanguage.googleapis.com",
		injected: []string{"GEMINI_API_KEY"},
	},
	{
		name:       "case-08 query at evil.example",
		in:         []string{":method", "GET", ":authority", "evil.example", ":path", "/v1beta/models?key=" + phGemini + "&pageSize=5"},
		host:       "evil.example",
		violations: []string{"GEMINI_API_KEY"},
		denyBody:   denied("evil.example", "GEMINI_API_KEY"),
	},
	{
		name:       "case-08 encoded query at evil.example",
		in:         []string{":method", "GET", ":authority", "evil.example", ":path", "/v1beta/models?key=sgp%5Fgemini_000000000000000000005"},
		host:       "evil.example",
		violations: []string{"GEMINI_API_KEY"},
		denyBody:   denied("evil.example", "GEMINI_API_KEY"),
	},
	{
		// The '%' would read the value's first bytes as its digits: it is
		// written as "%25", which a server decodes to the '%' sent.
		name:     "case-08 placeholder whose first bytes a percent swallows",
		in:       []string{":method", "GET", ":authority", "api.hex.example", ":path", "/m?k=%" + phHex},
		out:      []string{":method", "GET", ":authority", "api.hex.example", ":path", "/m?k=%25" + valHex},
		host:     "api.hex.example",
		injected: []string{"HEX_TOKEN"},
	},
	{
		name:       "case-08 placeholder whose first bytes a percent swallows, at evil.example",
		in:         []string{":method", "GET", ":authority", "evil.example", ":path", "/m?k=%" + phHex},
		host:       "evil.example",
		violations: []string{"HEX_TOKEN"},
		denyBody:   denied("evil.example", "HEX_TOKEN"),
	},
	{
		name: "case-08 raw and decoded matches substituted in order",
		in: []string{":method", "GET", ":authority", "api.hex.example", ":path",
			"/m?a=%" + phHex + "&b=deadbeef%5Fplaceholder_00000000002&c=%4" + phHex + "&d=" + phHex},
		out: []string{":method", "GET", ":authority", "api.hex.example", ":path",
			"/m?a=%25" + valHex + "&b=" + valHex + "&c=%254" + valHex + "&d=" + valHex},
		host:     "api.hex.example",
		injected: []string{"HEX_TOKEN"},
	},
	{
		name:     "case-08 stray percent and a hex digit before a placeholder",
		in:       []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path", "/m?key=%a" + phGemini},
		out:      []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path", "/m?key=%25aAIza%2Btest%2FDDDD%3D4444"},
		host:     "generativelanguage.googleapis.com",
		injected: []string{"GEMINI_API_KEY"},
	},
	{
		name:       "case-08 stray percent and a hex digit before a placeholder, at evil.example",
		in:         []string{":method", "GET", ":authority", "evil.example", ":path", "/m?key=%a" + phGemini},
		host:       "evil.example",
		violations: []string{"GEMINI_API_KEY"},
		denyBody:   denied("evil.example", "GEMINI_API_KEY"),
	},
	{
		name: "case-08 stray percents before placeholders, raw and encoded",
		in: []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path",
			"/m?a=%" + phGemini + "&b=%%F" + phGemini + "&c=" + phGemini + "%" + phGemini + "&d=%a%73gp_gemini_000000000000000000005"},
		out: []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path",
			"/m?a=%25AIza%2Btest%2FDDDD%3D4444&b=%%25FAIza%2Btest%2FDDDD%3D4444" +
				"&c=AIza%2Btest%2FDDDD%3D4444%25AIza%2Btest%2FDDDD%3D4444&d=%25aAIza%2Btest%2FDDDD%3D4444"},
		host:     "generativelanguage.googleapis.com",
		injected: []string{"GEMINI_API_KEY"},
	},
	{
		// Only a '%' whose digits would reach into the value changes.
		name: "case-08 percents that cannot reach the value stay",
		in: []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path",
			"/m?a=%z" + phGemini + "&b=%41" + phGemini + "&c=%4" + "&d=" + phGemini + "%&e=%" + phOpenAI},
		out: []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path",
			"/m?a=%zAIza%2Btest%2FDDDD%3D4444&b=%41AIza%2Btest%2FDDDD%3D4444&c=%4&d=AIza%2Btest%2FDDDD%3D4444%&e=%" + phOpenAI},
		host:       "generativelanguage.googleapis.com",
		injected:   []string{"GEMINI_API_KEY"},
		violations: []string{"OPENAI_API_KEY"},
		denyBody:   denied("generativelanguage.googleapis.com", "OPENAI_API_KEY"),
	},
	{
		// Headers are not percent-decoded: a '%' there is left as sent.
		name:     "case-08 percent before a placeholder in a plain header",
		in:       req("generativelanguage.googleapis.com", "x-goog-api-key", "%a"+phGemini),
		out:      req("generativelanguage.googleapis.com", "x-goog-api-key", "%a"+valGemini),
		host:     "generativelanguage.googleapis.com",
		injected: []string{"GEMINI_API_KEY"},
	},
	{
		name: "case-08 raw match beside a decoded one of another secret",
		in: []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path",
			"/m?k=%" + phHex + "&key=sgp%5Fgemini_000000000000000000005"},
		out: []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path",
			"/m?k=%" + phHex + "&key=AIza%2Btest%2FDDDD%3D4444"},
		host:       "generativelanguage.googleapis.com",
		injected:   []string{"GEMINI_API_KEY"},
		violations: []string{"HEX_TOKEN"},
		denyBody:   denied("generativelanguage.googleapis.com", "HEX_TOKEN"),
	},
	{
		name:       "case-08 allowed and disallowed in one query",
		in:         []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path", "/m?key=" + phGemini + "&o=" + phOpenAI},
		out:        []string{":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path", "/m?key=AIza%2Btest%2FDDDD%3D4444&o=" + phOpenAI},
		host:       "generativelanguage.googleapis.com",
		injected:   []string{"GEMINI_API_KEY"},
		violations: []string{"OPENAI_API_KEY"},
		denyBody:   denied("generativelanguage.googleapis.com", "OPENAI_API_KEY"),
	},
}

// malformedAuthorities fail CanonicalAuthority (case-04, case-05).
var malformedAuthorities = []string{
	"api.openai.com,evil.example", "api.openai.com evil.example", "api.openai.com\t", "api%2eopenai.com",
	`api.openai.com\evil.example`, "api.openai.com\xc2\xa0", "api.openai.com..", "api.openai.com:",
	"api.openai.com@evil.example", "user:pass@api.openai.com:443", phOpenAI + "@api.openai.com", "",
}

func TestDecideCases(t *testing.T) {
	cases := slices.Clone(decideCases)
	for _, a := range malformedAuthorities {
		cases = append(cases, decideCase{
			name:       fmt.Sprintf("case-05 malformed authority %q", a),
			in:         req(a, "authorization", "Bearer "+phOpenAI),
			reason:     ReasonMalformedAuthority,
			violations: []string{"OPENAI_API_KEY"},
			denyBody:   deniedFor(ReasonMalformedAuthority, "OPENAI_API_KEY"),
		})
	}
	cases = append(cases, attackerTwins(decideCases)...)
	for _, mode := range []Mode{Passthrough, Deny} {
		r := NewRewriter(newSession(t, mode, fixtureSecrets))
		for _, c := range cases {
			t.Run(mode.String()+"/"+c.name, func(t *testing.T) {
				checkCase(t, r, mode, c)
			})
		}
	}
}

// attackerTwins turns every case that injects into the same request sent to
// each attacker host: nothing may be injected there.
func attackerTwins(cases []decideCase) []decideCase {
	var twins []decideCase
	for _, c := range cases {
		if len(c.injected) == 0 {
			continue
		}
		for _, evil := range attackerHosts {
			in := slices.Clone(c.in)
			for i := 0; i < len(in); i += 2 {
				if equalFoldASCII([]byte(in[i]), ":authority") || equalFoldASCII([]byte(in[i]), "host") {
					in[i+1] = evil
				}
			}
			violations := slices.Concat(c.injected, c.violations)
			slices.Sort(violations)
			twins = append(twins, decideCase{
				name:       c.name + " at " + evil,
				in:         in,
				host:       evil,
				violations: violations,
				denyBody:   denied(evil, violations...),
			})
		}
	}
	return twins
}

func checkCase(t *testing.T, r *Rewriter, mode Mode, c decideCase) {
	t.Helper()
	in := hdrs(c.in...)
	before := pairsOf(in)
	d := r.Decide(in)
	if got := pairsOf(in); !slices.Equal(got, before) {
		t.Fatalf("input modified:\n got %q\nwant %q", got, before)
	}

	wantVerdict, wantOut, wantInjected := Unchanged, []string(nil), c.injected
	if c.out != nil {
		wantVerdict, wantOut = Rewritten, c.out
	}
	if mode == Deny && len(c.violations) > 0 {
		wantVerdict, wantOut, wantInjected = Denied, nil, nil
	}
	if d.Verdict != wantVerdict {
		t.Fatalf("verdict %v, want %v", d.Verdict, wantVerdict)
	}
	if got := pairsOf(d.Headers); !slices.Equal(got, wantOut) {
		t.Errorf("headers\n got %q\nwant %q", got, wantOut)
	}
	if d.Host != c.host || d.Reason != c.reason {
		t.Errorf("host %q reason %q, want %q %q", d.Host, d.Reason, c.host, c.reason)
	}
	if !slices.Equal(d.Injected, wantInjected) {
		t.Errorf("injected %q, want %q", d.Injected, wantInjected)
	}
	if !slices.Equal(d.Violations, c.violations) {
		t.Errorf("violations %q, want %q", d.Violations, c.violations)
	}
	wantBody := ""
	if wantVerdict == Denied {
		wantBody = c.denyBody
		if !json.Valid(d.DenyBody) {
			t.Errorf("deny body is not JSON: %s", d.DenyBody)
		}
	}
	if string(d.DenyBody) != wantBody {
		t.Errorf("deny body\n got %s\nwant %s", d.DenyBody, wantBody)
	}

	// A value reaches only its own allowed host: no value of a secret not
	// injected may appear anywhere in what leaves the filter.
	for _, f := range fixtureSecrets {
		if slices.Contains(d.Injected, f.name) {
			continue
		}
		for _, v := range visibleForms(d) {
			if bytes.Contains(v, []byte(f.value)) {
				t.Errorf("value of %s leaked: %q", f.name, v)
			}
		}
	}
	for _, f := range fixtureSecrets {
		if bytes.Contains(d.DenyBody, []byte(f.value)) || bytes.Contains(d.DenyBody, []byte(f.placeholder)) {
			t.Errorf("deny body names a value or placeholder of %s", f.name)
		}
	}
}

// visibleForms returns the output's bytes as a server could read them:
// raw, percent-decoded and, for Basic credentials, base64-decoded.
func visibleForms(d *Decision) [][]byte {
	forms := [][]byte{d.DenyBody}
	for _, h := range d.Headers {
		forms = append(forms, h.Name, h.Value)
		var r Rewriter
		r.percentDecode(h.Value)
		forms = append(forms, slices.Clone(r.decoded))
		if tok := basicToken(h.Value); tok >= 0 && r.decodeBasic(h.Value[tok:]) {
			forms = append(forms, slices.Clone(r.decoded))
		}
	}
	return forms
}

func TestDecidePerSecretMode(t *testing.T) {
	s := newSession(t, Passthrough, fixtureSecrets)
	for i := range s.Secrets {
		if s.Secrets[i].Name == "GITHUB_TOKEN" {
			s.Secrets[i].OnDisallowed = Deny
		}
	}
	r := NewRewriter(s)

	d := r.Decide(hdrs(req("api.openai.com", "authorization", "Bearer "+phOpenAI, "x-a", phAnthropic)...))
	if d.Verdict != Rewritten || !slices.Equal(d.Violations, []string{"ANTHROPIC_API_KEY"}) {
		t.Fatalf("passthrough secret: verdict %v violations %q", d.Verdict, d.Violations)
	}
	d = r.Decide(hdrs(req("api.openai.com", "authorization", "Bearer "+phOpenAI, "x-a", phAnthropic, "x-g", phGitHub)...))
	if d.Verdict != Denied || d.Headers != nil || d.Injected != nil {
		t.Fatalf("deny secret: verdict %v headers %q injected %q", d.Verdict, pairsOf(d.Headers), d.Injected)
	}
	if want := denied("api.openai.com", "ANTHROPIC_API_KEY", "GITHUB_TOKEN"); string(d.DenyBody) != want {
		t.Fatalf("deny body\n got %s\nwant %s", d.DenyBody, want)
	}
}

func TestDecideOrdersNamesWhateverTheSessionOrder(t *testing.T) {
	reversed := slices.Clone(fixtureSecrets)
	slices.Reverse(reversed)
	r := NewRewriter(newSession(t, Passthrough, reversed))
	d := r.Decide(hdrs(req("evil.example", "x-b", phOpenAIOrg+phGitHub, "x-a", phOpenAI+" "+phAnthropic+" "+phOpenAIOrg)...))
	want := []string{"ANTHROPIC_API_KEY", "GITHUB_TOKEN", "OPENAI_API_KEY", "OPENAI_ORG"}
	if !slices.Equal(d.Violations, want) {
		t.Fatalf("violations %q, want %q", d.Violations, want)
	}
}

func TestDecideRewrittenValuesAreNotAppendable(t *testing.T) {
	r := NewRewriter(newSession(t, Passthrough, fixtureSecrets))
	d := r.Decide(hdrs(req("api.openai.com", "a", phOpenAI, "b", phOpenAIOrg)...))
	a := d.Headers[4].Value
	_ = append(a, "XXXX"...)
	if got := string(d.Headers[5].Value); got != valOpenAIOrg {
		t.Fatalf("appending to one value changed the next: %q", got)
	}
}

func TestDecideNoSecrets(t *testing.T) {
	r := NewRewriter(&Session{})
	in := hdrs(req("api.openai.com", "authorization", "Bearer "+phOpenAI)...)
	if d := r.Decide(in); d.Verdict != Unchanged || d.Violations != nil || d.Host != "" {
		t.Fatalf("got %+v", d)
	}
}

func TestNewRewriterRejectsUnscannablePlaceholders(t *testing.T) {
	for _, ph := range []string{"sgp_short_00001", "sgp_openai_00000000000000000000 1", "sgp_openai_0000000000000000000%1"} {
		t.Run(ph, func(t *testing.T) {
			defer func() {
				msg := fmt.Sprint(recover())
				if !strings.Contains(msg, "secrets.X.placeholder: ") {
					t.Fatalf("panic %q", msg)
				}
			}()
			NewRewriter(&Session{Secrets: []Secret{{Name: "X", Placeholder: ph}}})
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	for in, want := range map[string]string{
		"":                `""`,
		"OPENAI_API_KEY":  `"OPENAI_API_KEY"`,
		`a"b\c`:           `"a\"b\\c"`,
		"t\t\x00\x1f\x7f": `"t\u0009\u0000\u001F\u007F"`,
		"\xc3\xa9\xff":    `"\u00C3\u00A9\u00FF"`,
	} {
		got := appendJSONString(nil, in)
		if string(got) != want || !json.Valid(got) {
			t.Errorf("%q: got %s, want %s", in, got, want)
		}
	}
}

func TestDecideAllocations(t *testing.T) {
	r := NewRewriter(newSession(t, Passthrough, fixtureSecrets))
	for _, tc := range []struct {
		name string
		in   []Header
	}{
		{"no placeholder", hdrs(req("api.openai.com", "authorization", "Bearer sk-other", "x-request-id", "3f2a9c1e-7b44-4d1a-9e0f-2b8c6d5a4e31")...)},
		{"injected", hdrs(req("api.openai.com", "authorization", "Bearer "+phOpenAI)...)},
		{"injected basic", hdrs(req("github.com", "authorization", basic("x-access-token:"+phGitHub))...)},
		{"injected unpadded basic", hdrs(req("github.com", "authorization", "Basic "+base64.RawStdEncoding.EncodeToString([]byte("x-access-token:"+phGitHub)))...)},
		{"injected query", hdrs(":method", "GET", ":authority", "generativelanguage.googleapis.com", ":path", "/m?key=sgp%5Fgemini_000000000000000000005")},
		{"injected raw in encoded query", hdrs(":method", "GET", ":authority", "api.hex.example", ":path", "/m?a=%"+phHex+"&b=deadbeef%5Fplaceholder_00000000002")},
		{"injected raw basic", hdrs(req("api.alnum.example", "authorization", "Basic "+phAlnum)...)},
		{"violation", hdrs(req("evil.example", "authorization", "Bearer "+phOpenAI)...)},
		{"mismatch", hdrs(req("api.openai.com", "host", "evil.example", "authorization", "Bearer "+phOpenAI)...)},
	} {
		if n := testing.AllocsPerRun(100, func() { r.Decide(tc.in) }); n != 0 {
			t.Errorf("%s: %v allocations per Decide", tc.name, n)
		}
	}
	deny := NewRewriter(newSession(t, Deny, fixtureSecrets))
	in := hdrs(req("evil.example", "authorization", "Bearer "+phOpenAI)...)
	if n := testing.AllocsPerRun(100, func() { deny.Decide(in) }); n != 0 {
		t.Errorf("denied: %v allocations per Decide", n)
	}
}

func TestDecideRemembersDestinationsExactly(t *testing.T) {
	r := NewRewriter(newSession(t, Passthrough, fixtureSecrets))
	auth := []string{"authorization", "Bearer " + phOpenAI}
	for _, step := range []struct {
		in           []string
		host, reason string
		injected     bool
	}{
		{[]string{":authority", "api.openai.com"}, "api.openai.com", "", true},
		{[]string{":authority", "api.openai.com", "host", "evil.example"}, "", ReasonHostMismatch, false},
		{[]string{":authority", "api.openai.com"}, "api.openai.com", "", true},
		{[]string{":authority", "api.openai.com", "host", ""}, "", ReasonMalformedAuthority, false},
		{[]string{":authority", "api.openai.com", "host", "api.openai.com"}, "api.openai.com", "", true},
		{[]string{":authority", "evil.example"}, "evil.example", "", false},
		{[]string{":authority", "API.OPENAI.COM"}, "api.openai.com", "", true},
		{[]string{":authority", "api.openai.com:443"}, "api.openai.com:443", "", true},
		{[]string{":authority", "api.openai.com:8443"}, "api.openai.com:8443", "", false},
		{[]string{":authority", "api.openai.com,"}, "", ReasonMalformedAuthority, false},
		{[]string{":authority", "api.openai.com"}, "api.openai.com", "", true},
		{[]string{":authority", "api.openai.com", ":authority", "api.openai.com"}, "", ReasonRepeatedAuthority, false},
		{[]string{":authority", "api.openai.com"}, "api.openai.com", "", true},
		{[]string{"host", "api.openai.com"}, "", ReasonMissingAuthority, false},
		{[]string{":authority", "api.openai.com"}, "api.openai.com", "", true},
		{[]string{":authority", "api.openai.com", "host", "api.openai.com", "host", "api.openai.com"}, "", ReasonRepeatedAuthority, false},
	} {
		d := r.Decide(hdrs(append(step.in, auth...)...))
		if d.Host != step.host || d.Reason != step.reason || (d.Verdict == Rewritten) != step.injected {
			t.Errorf("%q: verdict %v host %q reason %q", step.in, d.Verdict, d.Host, d.Reason)
		}
	}
}

// parseFuzzHeaders reads lines "name\tvalue" separated by '\n'.
func parseFuzzHeaders(data string) []Header {
	var h []Header
	for _, line := range strings.Split(data, "\n") {
		name, value, _ := strings.Cut(line, "\t")
		h = append(h, Header{Name: []byte(name), Value: []byte(value)})
	}
	return h
}

// allowedSecrets is the reference for which secrets a request may receive.
func allowedSecrets(s *Session, headers []Header) map[string]bool {
	var authority, host [][]byte
	for _, h := range headers {
		switch strings.ToLower(string(h.Name)) {
		case ":authority":
			authority = append(authority, h.Value)
		case "host":
			host = append(host, h.Value)
		}
	}
	allowed := map[string]bool{}
	if len(authority) != 1 || len(host) > 1 {
		return allowed
	}
	a, ok := CanonicalAuthority(nil, authority[0])
	if !ok {
		return allowed
	}
	if len(host) == 1 {
		h, ok := CanonicalAuthority(nil, host[0])
		if !ok || h.String() != a.String() {
			return allowed
		}
	}
	for _, sec := range s.Secrets {
		for _, rule := range sec.Hosts {
			allowed[sec.Name] = allowed[sec.Name] || rule.Matches(a)
		}
	}
	return allowed
}

// readableForms is every way a server could read the headers: raw,
// percent-decoded and Basic-decoded.
func readableForms(headers []Header) [][]byte {
	return visibleForms(&Decision{Headers: headers})
}

// scannedRaw is the raw bytes Decide must scan, by the README's rules: every
// header value but the destination's, proxy-authorization and the
// pseudo-headers; of :path, the query only.
func scannedRaw(headers []Header) [][]byte {
	var raw [][]byte
	for _, h := range headers {
		switch name := strings.ToLower(string(h.Name)); {
		case name == ":path":
			if _, query, ok := bytes.Cut(h.Value, []byte("?")); ok {
				raw = append(raw, query)
			}
		case name == "host" || name == "proxy-authorization" || strings.HasPrefix(name, ":"):
		default:
			raw = append(raw, h.Value)
		}
	}
	return raw
}

func containsIn(forms [][]byte, s string) bool {
	for _, f := range forms {
		if bytes.Contains(f, []byte(s)) {
			return true
		}
	}
	return false
}

func FuzzDecide(f *testing.F) {
	for _, c := range decideCases {
		var lines []string
		for i := 0; i < len(c.in); i += 2 {
			lines = append(lines, c.in[i]+"\t"+c.in[i+1])
		}
		f.Add(strings.Join(lines, "\n"), false)
		f.Add(strings.Join(lines, "\n"), true)
	}
	sessions := map[bool]*Session{false: newSession(f, Passthrough, fixtureSecrets), true: newSession(f, Deny, fixtureSecrets)}
	f.Fuzz(func(t *testing.T, data string, deny bool) {
		data = data[:min(len(data), 8192)] // headers are small; long inputs only slow minimisation
		s := sessions[deny]
		in := parseFuzzHeaders(data)
		r := NewRewriter(s)
		d := r.Decide(in)
		inForms := readableForms(in)
		anyPlaceholder, connect := false, false
		for _, f := range fixtureSecrets {
			anyPlaceholder = anyPlaceholder || containsIn(inForms, f.placeholder)
		}
		for _, h := range in {
			connect = connect || equalFoldASCII(h.Name, ":method") && string(h.Value) == "CONNECT"
		}

		switch d.Verdict {
		case Unchanged:
			if d.Headers != nil || d.Injected != nil || d.DenyBody != nil {
				t.Fatalf("unchanged with output: %+v", d)
			}
		case Rewritten:
			if len(d.Headers) != len(in) || len(d.Injected) == 0 || d.DenyBody != nil {
				t.Fatalf("rewritten: %d lines for %d, injected %q", len(d.Headers), len(in), d.Injected)
			}
			for i := range in {
				if !bytes.Equal(d.Headers[i].Name, in[i].Name) {
					t.Fatalf("line %d renamed %q -> %q", i, in[i].Name, d.Headers[i].Name)
				}
				if k := classify(in[i].Name); k != kindPlain && k != kindPath && k != kindAuthorization &&
					!bytes.Equal(d.Headers[i].Value, in[i].Value) {
					t.Fatalf("line %q rewritten", in[i].Name)
				}
			}
		case Denied:
			if !deny || d.Headers != nil || d.Injected != nil || len(d.Violations) == 0 || !json.Valid(d.DenyBody) {
				t.Fatalf("denied: %+v", d)
			}
		}
		if !anyPlaceholder || connect {
			if d.Verdict != Unchanged || d.Violations != nil {
				t.Fatalf("no placeholder to act on, got %v, violations %q", d.Verdict, d.Violations)
			}
		}
		// Every placeholder written raw in a scanned line is acted on: injected,
		// reported, or (when denied, where Injected is empty) allowed.
		if !connect {
			allowed := allowedSecrets(s, in)
			raw := scannedRaw(in)
			for _, f := range fixtureSecrets {
				if containsIn(raw, f.placeholder) && !slices.Contains(d.Injected, f.name) &&
					!slices.Contains(d.Violations, f.name) && !(d.Verdict == Denied && allowed[f.name]) {
					t.Fatalf("placeholder of %s sent raw, neither injected nor reported: %v", f.name, d.Verdict)
				}
			}
		}
		if (d.Injected != nil || d.Violations != nil) != (d.Host != "" || d.Reason != "") {
			t.Fatalf("host %q reason %q with injected %q violations %q", d.Host, d.Reason, d.Injected, d.Violations)
		}

		allowed := allowedSecrets(s, in)
		outForms := visibleForms(d)
		for _, f := range fixtureSecrets {
			injected := slices.Contains(d.Injected, f.name)
			if injected && !allowed[f.name] {
				t.Fatalf("%s injected at a destination it does not allow", f.name)
			}
			if !injected && !containsIn(inForms, f.value) && containsIn(outForms, f.value) {
				t.Fatalf("value of %s leaked", f.name)
			}
			if injected && slices.Contains(d.Violations, f.name) {
				t.Fatalf("%s both injected and a violation", f.name)
			}
			// An injected value reads whole: no '%' before it takes its bytes.
			if injected && !containsIn(outForms, f.value) {
				t.Fatalf("%s injected, but no form of the output holds its value whole", f.name)
			}
		}
		for _, f := range fixtureSecrets {
			if bytes.Contains(d.DenyBody, []byte(f.value)) {
				t.Fatalf("deny body holds the value of %s", f.name)
			}
		}

		// The same request again, on the warm Rewriter, decides the same.
		first := fmt.Sprintf("%v %q %q %q %q %q %s", d.Verdict, pairsOf(d.Headers), d.Host, d.Reason, d.Injected, d.Violations, d.DenyBody)
		d = r.Decide(in)
		if again := fmt.Sprintf("%v %q %q %q %q %q %s", d.Verdict, pairsOf(d.Headers), d.Host, d.Reason, d.Injected, d.Violations, d.DenyBody); again != first {
			t.Fatalf("second decision differs:\n%s\n%s", first, again)
		}
	})
}
