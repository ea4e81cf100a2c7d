package main

import (
	"bufio"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzRequestTarget drives a request line and Host header through net/http's
// parser and the dev proxy's front door. A target requestHeaders refuses gets
// the 400 before any filter runs; one it accepts reaches the filter (a closed
// proxy, so 503) with :path keeping every byte after the authority and
// :authority the host the target names, as sent, or else the Host header.
func FuzzRequestTarget(f *testing.F) {
	for _, seed := range [][3]string{
		{"GET", "/v1/models?key=a%2Bb", "api.openai.com"},
		{"POST", "http://api.openai.com/v1/chat/completions", "other.example"},
		{"GET", "HTTP://API.openai.com:8080?q=1", "api.openai.com"},
		{"GET", "http://user@h/p", "h"},
		{"GET", "https://[::1]:8443/x", "h"},
		{"GET", "http:/v1/models?key=sgp_gemini_000000000000000000001", "generativelanguage.googleapis.com"},
		{"GET", "http://h:/p", "h"},
		{"GET", "http://h?x/y@z/p", "h"},
		{"OPTIONS", "*", "h"},
		{"GET", "*", "h"},
		{"CONNECT", "api.openai.com:443", "api.openai.com:443"},
		{"CONNECT", "api.openai.com", "api.openai.com"},
		{"CONNECT", "/v1/models", "api.openai.com:443"},
		{"GET", "//h/x", "h"},
		{"GET", "http://[fe80::1%25en0]:8080/v1", "h"},
		{"CONNECT", "[fe80::1%25en0]:443", "h"},
		{"GET", "http://a@b@api.openai.com/", "h"},
		{"GET", "http://api.openai.com!x/", "h"},
		{"GET", "http://h\xc3\xa9/", "h"},
		{"GET", "/v1#frag?k=v", "h"},
		{"GET", "http://h/p?q#f", "h"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	logger := log.New(io.Discard, "", 0)
	f.Fuzz(func(t *testing.T, method, target, host string) {
		raw := method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return // net/http's server answers these itself
		}
		h, accepted := requestHeaders(r)

		rec := httptest.NewRecorder()
		(&devProxy{logger: logger}).ServeHTTP(rec, r)
		switch {
		case !accepted && rec.Code != http.StatusBadRequest:
			t.Fatalf("%q: refused target answered %d, want 400 before the filter", raw, rec.Code)
		case accepted && rec.Code != http.StatusServiceUnavailable:
			t.Fatalf("%q: accepted target answered %d, want it to reach the (closed) filter chain", raw, rec.Code)
		case !accepted:
			return
		}

		authority, _ := pseudo(h, ":authority")
		if method == http.MethodConnect {
			if !strings.EqualFold(authority, target) {
				t.Fatalf("%q: CONNECT :authority %q, want the target", raw, authority)
			}
			return
		}
		path, _ := pseudo(h, ":path")
		switch {
		case strings.HasPrefix(target, "/") || target == "*":
			if path != target || target == "*" && method != http.MethodOptions {
				t.Fatalf("%q: accepted as %s %q, want the target as sent (* only for OPTIONS)", raw, method, path)
			}
			if authority != r.Host {
				t.Fatalf("%q: :authority %q, want the Host header", raw, authority)
			}
		default:
			checkAbsoluteForm(t, raw, target, authority, path)
		}
	})
}

// Found with FuzzRequestTarget's seeds: hosts http_parser refuses (so Envoy
// answers 400) reached the filter, and an IPv6 zone's "%25" reached it
// decoded, unlike the target Envoy hands on.
func TestRequestHeadersHostGrammar(t *testing.T) {
	for target, want := range map[string]string{
		"http://[fe80::1%25en0]:8080/v1": "[fe80::1%25en0]:8080",
		"http://u:p%41@Api_1.x-y.COM:1/": "Api_1.x-y.COM:1",
		"http://[::FFFF:1.2.3.4]/":       "[::FFFF:1.2.3.4]",
	} {
		h, ok := requestHeaders(readRequest(t, "GET "+target+" HTTP/1.1\r\nHost: h\r\n\r\n"))
		if got, _ := pseudo(h, ":authority"); !ok || got != want {
			t.Errorf("%s: :authority %q (accepted %v), want %q", target, got, ok, want)
		}
	}
	h, ok := requestHeaders(readRequest(t, "CONNECT [fe80::1%25en0]:443 HTTP/1.1\r\nHost: h\r\n\r\n"))
	if got, _ := pseudo(h, ":authority"); !ok || got != "[fe80::1%25en0]:443" {
		t.Errorf("CONNECT with a zone: :authority %q (accepted %v)", got, ok)
	}
	for _, raw := range []string{
		"GET http://a@b@api.openai.com/ HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET http://api.openai.com!x/ HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET http://api.openai.com~x/ HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET http://h\xc3\xa9/ HTTP/1.1\r\nHost: h\r\n\r\n",
		"CONNECT api.openai.com*:443 HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		if h, ok := requestHeaders(readRequest(t, raw)); ok {
			t.Errorf("requestHeaders(%q) = %q, want it refused", raw, h)
		}
	}
}

// checkAbsoluteForm checks that :path is all of target after its scheme and
// authority, and that :authority is that authority without userinfo, the same
// host net/url finds.
func checkAbsoluteForm(t *testing.T, raw, target, authority, path string) {
	t.Helper()
	if !strings.HasPrefix(path, "/") {
		t.Fatalf("%q: absolute-form :path %q does not start with /", raw, path)
	}
	prefix, ok := strings.CutSuffix(target, path)
	if !ok || path == "/" && !strings.HasSuffix(target, "/") {
		// Only a target without a path gets its "/" added.
		if prefix, ok = strings.CutSuffix(target, path[1:]); !ok || strings.HasSuffix(prefix, "/") {
			t.Fatalf("%q: :path %q is not the rest of the target", raw, path)
		}
	}
	scheme, hostPart, ok := strings.Cut(prefix, "://")
	if !ok || !strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") || strings.ContainsAny(hostPart, "/?") {
		t.Fatalf("%q: :path %q leaves %q, not a scheme and an authority", raw, path, prefix)
	}
	if i := strings.LastIndexByte(hostPart, '@'); i >= 0 {
		hostPart = hostPart[i+1:]
	}
	if !strings.EqualFold(authority, hostPart) {
		t.Fatalf("%q: :authority %q, want the target's %q", raw, authority, hostPart)
	}
	// net/url decodes an IPv6 zone's "%25".
	u, err := url.Parse(target)
	if err != nil || !strings.EqualFold(strings.Replace(authority, "%25", "%", 1), u.Host) {
		t.Fatalf("%q: :authority %q, net/url host %q (%v)", raw, authority, u.Host, err)
	}
}
