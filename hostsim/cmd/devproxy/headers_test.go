package main

import (
	"bufio"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
)

func readRequest(t *testing.T, raw string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRequestHeaders(t *testing.T) {
	for name, tc := range map[string]struct {
		raw  string
		want hostsim.Headers
	}{
		"absolute-form authority wins over Host": {
			raw: "POST http://api.openai.com/v1/chat/completions?x=%2F%20y HTTP/1.1\r\n" +
				"Host: other.example\r\n" +
				"Authorization: Bearer sgp_openai_000000000000000000001\r\n" +
				"Content-Length: 2\r\n\r\n{}",
			want: hostsim.Headers{
				{Name: ":method", Value: "POST"},
				{Name: ":scheme", Value: "http"},
				{Name: ":authority", Value: "api.openai.com"},
				{Name: ":path", Value: "/v1/chat/completions?x=%2F%20y"},
				{Name: "authorization", Value: "Bearer sgp_openai_000000000000000000001"},
				{Name: "content-length", Value: "2"},
			},
		},
		"absolute-form without a path": {
			raw: "GET http://API.openai.com:8080?q=1 HTTP/1.1\r\nHost: api.openai.com\r\n\r\n",
			want: hostsim.Headers{
				{Name: ":method", Value: "GET"},
				{Name: ":scheme", Value: "http"},
				{Name: ":authority", Value: "API.openai.com:8080"},
				{Name: ":path", Value: "/?q=1"},
			},
		},
		"origin-form takes Host": {
			raw: "GET /a/%2e%2E/b//c?k=sgp%5Fgemini HTTP/1.1\r\nHost: api.openai.com:443\r\nAccept: */*\r\n\r\n",
			want: hostsim.Headers{
				{Name: ":method", Value: "GET"},
				{Name: ":scheme", Value: "http"},
				{Name: ":authority", Value: "api.openai.com:443"},
				{Name: ":path", Value: "/a/%2e%2E/b//c?k=sgp%5Fgemini"},
				{Name: "accept", Value: "*/*"},
			},
		},
		"hop-by-hop removed, proxy-authorization and duplicates kept": {
			raw: "GET http://api.openai.com/ HTTP/1.1\r\n" +
				"Host: api.openai.com\r\n" +
				"X-Api-Key: first\r\n" +
				"Connection: keep-alive, Upgrade\r\n" +
				"Proxy-Connection: keep-alive\r\n" +
				"Keep-Alive: timeout=5\r\n" +
				"TE: trailers\r\n" +
				"Trailer: X-Checksum\r\n" +
				"Upgrade: websocket\r\n" +
				"Proxy-Authorization: Basic dXNlcjpwYXNz\r\n" +
				"x-api-key: second\r\n" +
				"X-API-KEY: third\r\n" +
				"Accept: a, b\r\n" +
				"Accept: c\r\n\r\n",
			want: hostsim.Headers{
				{Name: ":method", Value: "GET"},
				{Name: ":scheme", Value: "http"},
				{Name: ":authority", Value: "api.openai.com"},
				{Name: ":path", Value: "/"},
				{Name: "accept", Value: "a, b"},
				{Name: "accept", Value: "c"},
				{Name: "proxy-authorization", Value: "Basic dXNlcjpwYXNz"},
				{Name: "x-api-key", Value: "first"},
				{Name: "x-api-key", Value: "second"},
				{Name: "x-api-key", Value: "third"},
			},
		},
		"chunked body: transfer-encoding removed": {
			raw: "POST /upload HTTP/1.1\r\nHost: evil.example\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			want: hostsim.Headers{
				{Name: ":method", Value: "POST"},
				{Name: ":scheme", Value: "http"},
				{Name: ":authority", Value: "evil.example"},
				{Name: ":path", Value: "/upload"},
			},
		},
		"CONNECT has no :scheme or :path": {
			raw: "CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\nProxy-Authorization: Basic eDp5\r\n\r\n",
			want: hostsim.Headers{
				{Name: ":method", Value: "CONNECT"},
				{Name: ":authority", Value: "api.openai.com:443"},
				{Name: "proxy-authorization", Value: "Basic eDp5"},
			},
		},
		"asterisk-form": {
			raw: "OPTIONS * HTTP/1.1\r\nHost: api.openai.com\r\n\r\n",
			want: hostsim.Headers{
				{Name: ":method", Value: "OPTIONS"},
				{Name: ":scheme", Value: "http"},
				{Name: ":authority", Value: "api.openai.com"},
				{Name: ":path", Value: "*"},
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			got, ok := requestHeaders(readRequest(t, tc.raw))
			if !ok || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("headers =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestResponseHeaders(t *testing.T) {
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(
		"HTTP/1.1 201 Created\r\nContent-Type: text/event-stream\r\nConnection: close\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n")), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := hostsim.Headers{
		{Name: ":status", Value: "201"},
		{Name: "content-length", Value: "0"},
		{Name: "content-type", Value: "text/event-stream"},
		{Name: "set-cookie", Value: "a=1"},
		{Name: "set-cookie", Value: "b=2"},
	}
	if got := responseHeaders(resp); !reflect.DeepEqual(got, want) {
		t.Errorf("headers =\n%q\nwant\n%q", got, want)
	}
	if resp.Body != http.NoBody {
		t.Error("an empty response body is not http.NoBody: end of stream would be misreported")
	}
}

func TestRequestPath(t *testing.T) {
	for target, want := range map[string]string{
		"/":                        "/",
		"/v1/models?key=a%2Bb":     "/v1/models?key=a%2Bb",
		"http://h":                 "/",
		"http://h/":                "/",
		"http://h?x=1":             "/?x=1",
		"http://h:80/a/b?c=d://e":  "/a/b?c=d://e",
		"http://h:65535/":          "/",
		"http://user@h/p":          "/p",
		"https://h/%7Euser/../x?y": "/%7Euser/../x?y",
		"HTTP://[::1]:8080/x":      "/x",
		"/a?b=http://c/d":          "/a?b=http://c/d",
		"//h/x":                    "//h/x",
		"http://h//x?u=http:/y":    "//x?u=http:/y",
	} {
		if got, ok := requestPath(http.MethodGet, target); !ok || got != want {
			t.Errorf("requestPath(GET, %q) = %q, %v; want %q", target, got, ok, want)
		}
	}
	if got, ok := requestPath(http.MethodOptions, "*"); !ok || got != "*" {
		t.Errorf("requestPath(OPTIONS, *) = %q, %v; want *", got, ok)
	}
	// Envoy's codec answers 400 for each of these; none may become a path.
	for _, target := range []string{
		"http:/v1/models?key=sgp_gemini_000000000000000000001", // W2: no authority
		"http:v1/models",
		"http:///v1/models",
		"http://?x=1",
		"http://user@/p",
		"http://h:/p",
		"http://h:65536/p",
		"http://h:8o/p",
		"http://[::1/p",
		"http://[::1]x/p",
		"ftp://h/p",
		"h/p",
		"v1/models?key=p",
		"*",
		"http://h/v1/models?key=p#", // a fragment, even empty
		"/v1#frag?key=p",
	} {
		if got, ok := requestPath(http.MethodGet, target); ok {
			t.Errorf("requestPath(GET, %q) = %q, want it refused", target, got)
		}
	}
}

func TestValidConnectAuthority(t *testing.T) {
	for a, want := range map[string]bool{
		"api.openai.com:443": true,
		"[::1]:8443":         true,
		"api.openai.com":     false,
		"api.openai.com:":    false,
		":443":               false,
		"[::1]":              false,
		"h:99999":            false,
		"user@h:443":         false,
		"/v1/models":         false,
	} {
		if got := validAuthority(a, true); got != want {
			t.Errorf("validAuthority(%q, connect) = %v, want %v", a, got, want)
		}
	}
}

// TestRequestHeadersRefusesTargets covers what net/http's server accepts but
// Envoy's codec does not: the filter never sees these requests.
func TestRequestHeadersRefusesTargets(t *testing.T) {
	for _, raw := range []string{
		"GET http:/v1/models?key=sgp_gemini_000000000000000000001 HTTP/1.1\r\nHost: generativelanguage.googleapis.com\r\n\r\n",
		"GET * HTTP/1.1\r\nHost: api.openai.com\r\n\r\n",
		"GET http://api.openai.com:/v1 HTTP/1.1\r\nHost: api.openai.com\r\n\r\n",
		"CONNECT api.openai.com HTTP/1.1\r\nHost: api.openai.com\r\n\r\n",
		"CONNECT /v1/models HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n",
		"GET /v1#frag?key=sgp_gemini_000000000000000000001 HTTP/1.1\r\nHost: generativelanguage.googleapis.com\r\n\r\n",
		"GET http://api.openai.com/v1#x HTTP/1.1\r\nHost: api.openai.com\r\n\r\n",
	} {
		if h, ok := requestHeaders(readRequest(t, raw)); ok {
			t.Errorf("requestHeaders(%q) = %q, want it refused", raw, h)
		}
	}
}
