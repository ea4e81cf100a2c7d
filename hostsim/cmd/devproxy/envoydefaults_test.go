package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// rawExchange writes raw to the proxy on a new connection and reads one
// response, its body included.
func rawExchange(t *testing.T, p *proxy, raw string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", p.url.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// G1: net/http takes a "#fragment" as part of the path, so the placeholder in
// "/v1#frag?key=..." was injected and sent on. Envoy answers 400
// (http_reject_path_with_fragment), to allowed and other hosts alike.
func TestRefusesTargetWithFragment(t *testing.T) {
	p, up := startOpenAIProxy(t, passConfig)
	for _, host := range []string{"api.openai.com", "evil.example"} {
		for _, target := range []string{"/v1#frag?key=" + placeholder, "http://" + host + "/v1/models#frag?key=" + placeholder} {
			resp, body := rawExchange(t, p, "GET "+target+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
			wantResponse(t, resp, body, http.StatusBadRequest, "text/plain; charset=utf-8", "devproxy: invalid request target\n")
			if !resp.Close {
				t.Errorf("%s: the connection stays open after the 400; Envoy closes it", target)
			}
			assertAbsent(t, up, resp, body)
		}
	}
	if got := up.received(); len(got) != 0 {
		t.Errorf("upstream received %+v; want nothing", got)
	}
	if logs := p.logs.String(); strings.Contains(logs, placeholder) || !strings.Contains(logs, "devproxy: GET with a request target that is neither") {
		t.Errorf("logs = %q; want the refusals logged without the target", logs)
	}
}

// G1: net/http's server answers "OPTIONS *" itself with 200, so the filter
// never saw it. In Envoy it is a request like any other: denied to a host the
// secret does not allow, injected for one it allows.
func TestOptionsAsteriskGoesThroughFilter(t *testing.T) {
	p, _ := startOpenAIProxy(t, denyConfig, "-echo")

	resp, body := rawExchange(t, p, "OPTIONS * HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer "+placeholder+"\r\n\r\n")
	wantResponse(t, resp, body, http.StatusForbidden, "application/json",
		`{"error":"secret_not_allowed","secrets":["OPENAI_API_KEY"],"host":"evil.example"}`)
	if s := resp.Status + body; strings.Contains(s, realValue) {
		t.Error("the real value reached the client")
	}

	resp, body = rawExchange(t, p, "OPTIONS * HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer "+placeholder+"\r\n\r\n")
	want := "OPTIONS *\nhost: api.openai.com\nauthorization: Bearer " + realValue + "\n"
	if resp.StatusCode != http.StatusOK || body != want {
		hide := strings.NewReplacer(realValue, "<real value>")
		t.Errorf("response = %d %q; want 200 %q", resp.StatusCode, hide.Replace(body), hide.Replace(want))
	}
}

// G1: Envoy's default (accept_http_10: false) answers HTTP/1.0 with 426
// before any filter runs; net/http served it.
func TestRefusesHTTP10(t *testing.T) {
	p, up := startOpenAIProxy(t, passConfig)
	for _, host := range []string{"api.openai.com", "evil.example"} {
		for _, target := range []string{"/v1/models", "http://" + host + "/v1/models"} {
			resp, body := rawExchange(t, p, "GET "+target+" HTTP/1.0\r\nHost: "+host+"\r\n"+
				"Authorization: Bearer "+placeholder+"\r\nConnection: keep-alive\r\n\r\n")
			wantResponse(t, resp, body, http.StatusUpgradeRequired, "text/plain; charset=utf-8", "devproxy: HTTP/1.0 is not accepted; use HTTP/1.1\n")
			if !resp.Close {
				t.Errorf("%s: the connection stays open after the 426; Envoy closes it", target)
			}
			assertAbsent(t, up, resp, body)
		}
	}
	if got := up.received(); len(got) != 0 {
		t.Errorf("upstream received %+v; want nothing", got)
	}
	if logs := p.logs.String(); strings.Contains(logs, placeholder) || !strings.Contains(logs, "devproxy: GET over HTTP/1.0: 426") {
		t.Errorf("logs = %q; want the refusals logged without the target", logs)
	}
}

// A documented limit (README, dev proxy): net/http's server refuses an
// HTTP/1.1 request without a Host line before any handler runs, absolute-form
// included, where Envoy takes the host from the target. If net/http ever
// serves it, this fails and the README must change.
func TestAbsoluteFormWithoutHostIsRefused(t *testing.T) {
	p, up := startOpenAIProxy(t, passConfig)
	resp, body := rawExchange(t, p, "GET http://api.openai.com/v1/models?key="+placeholder+" HTTP/1.1\r\n\r\n")
	wantResponse(t, resp, body, http.StatusBadRequest, "text/plain; charset=utf-8", "400 Bad Request: missing required Host header")
	if got := up.received(); len(got) != 0 {
		t.Errorf("upstream received %+v; want nothing", got)
	}
}

// A documented limit (README, dev proxy): net/http's server refuses a request
// with two Host lines before any handler runs, where Envoy folds them into one
// comma-joined :authority that matches no allowed host. Either way nothing is
// sent; if net/http ever serves it, this fails and the README must change.
func TestTwoHostLinesAreRefused(t *testing.T) {
	p, up := startOpenAIProxy(t, passConfig)
	resp, body := rawExchange(t, p, "GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\nHost: evil.example\r\n"+
		"Authorization: Bearer "+placeholder+"\r\n\r\n")
	wantResponse(t, resp, body, http.StatusBadRequest, "text/plain; charset=utf-8", "400 Bad Request")
	assertAbsent(t, up, resp, body)
	if got := up.received(); len(got) != 0 {
		t.Errorf("upstream received %+v; want nothing", got)
	}
}

// Found by a new-user review: "Upgrade: websocket" was stripped as hop-by-hop
// and the request sent on, injected. Envoy, with no upgrade_configs in the
// shipped envoy.yaml, answers 403 with an empty body before any filter runs,
// and the unfinished stream closes the connection.
func TestRefusesUpgrades(t *testing.T) {
	p, up := startOpenAIProxy(t, passConfig)
	for _, host := range []string{"api.openai.com", "evil.example"} {
		for _, upgrade := range []string{
			"Upgrade: websocket\r\nConnection: Upgrade",
			"Upgrade: WebSocket\r\nConnection: keep-alive, upgrade",
			"Upgrade: h2c, websocket\r\nConnection: close\r\nConnection: Upgrade",
		} {
			resp, body := rawExchange(t, p, "GET /v1/realtime HTTP/1.1\r\nHost: "+host+"\r\n"+upgrade+"\r\n"+
				"Authorization: Bearer "+placeholder+"\r\n\r\n")
			wantResponse(t, resp, body, http.StatusForbidden, "", "")
			if resp.ContentLength != 0 || !resp.Close {
				t.Errorf("%s %q: Content-Length %d, closes %v; want 0 and a closed connection", host, upgrade, resp.ContentLength, resp.Close)
			}
			assertAbsent(t, up, resp, body)
		}
	}
	if got := up.received(); len(got) != 0 {
		t.Errorf("upstream received %+v; want nothing", got)
	}
	logs := p.logs.String()
	if strings.Contains(logs, "not allowed") || strings.Contains(logs, "websocket") || !strings.Contains(logs, "devproxy: GET asking for a protocol upgrade: 403") {
		t.Errorf("logs = %q; want the refusals logged, without the Upgrade value, and no filter run", logs)
	}
}

// Envoy's HTTP/1 codec drops an h2c upgrade's headers and serves the request
// as HTTP/1.1, so it goes through the filter like any other: injected at the
// allowed host, the placeholder kept at another.
func TestH2cUpgradeIsServedAsHTTP11(t *testing.T) {
	p, up := startOpenAIProxy(t, passConfig)
	for _, host := range []string{"api.openai.com", "evil.example"} {
		resp, body := rawExchange(t, p, "GET /v1/models HTTP/1.1\r\nHost: "+host+"\r\n"+
			"Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"+
			"Authorization: Bearer "+placeholder+"\r\nUser-Agent: t\r\n\r\n")
		wantResponse(t, resp, body, http.StatusOK, "application/json", replyBody)
		if strings.Contains(resp.Status+fmt.Sprint(resp.Header)+body, realValue) {
			t.Error("the real value reached the client")
		}
	}
	auth := map[string]string{"api.openai.com": realValue, "evil.example": placeholder}
	got := up.received()
	if len(got) != 2 {
		t.Fatalf("upstream received %d requests, want 2", len(got))
	}
	for _, r := range got {
		want := received{Method: "GET", RequestURI: "/v1/models", Host: r.Host,
			Header: http.Header{"Authorization": {"Bearer " + auth[r.Host]}, "User-Agent": {"t"}}}
		if !reflect.DeepEqual(r, want) {
			hide := strings.NewReplacer(realValue, "<real value>")
			t.Errorf("upstream received %s; want %s", hide.Replace(fmt.Sprintf("%+v", r)), hide.Replace(fmt.Sprintf("%+v", want)))
		}
	}
}

// Found by a new-user review: after -echo refused a CONNECT, the bytes the
// client wrote after it were served as a new request, injected. A CONNECT not
// tunnelled leaves its stream unfinished, so Envoy resets it and closes the
// connection; the dev proxy closes it too, whether -echo refuses the CONNECT
// or the tunnel cannot be dialled.
func TestConnectRefusalClosesTheConnection(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	smuggled := "GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer " + placeholder + "\r\n\r\n"
	for name, tc := range map[string]struct {
		args   []string
		status int
	}{
		"echo":        {[]string{"-echo"}, http.StatusForbidden},
		"dial failed": {[]string{"-resolve", "closed.example=" + closedAddr}, http.StatusBadGateway},
	} {
		t.Run(name, func(t *testing.T) {
			p, up := startOpenAIProxy(t, passConfig, tc.args...)
			conn, err := net.Dial("tcp", p.url.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Without the close, reading to the end would wait forever.
			if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
				t.Fatal(err)
			}
			_, err = io.WriteString(conn, "CONNECT closed.example:443 HTTP/1.1\r\nHost: closed.example:443\r\n\r\n"+smuggled)
			if err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(conn)
			resp, err := http.ReadResponse(r, &http.Request{Method: http.MethodConnect})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !resp.Close {
				t.Errorf("response %d, closes %v; want %d and a closed connection", resp.StatusCode, resp.Close, tc.status)
			}
			rest, _ := io.ReadAll(r)
			if len(rest) != 0 {
				t.Errorf("after the %d the proxy wrote %d more bytes; want the connection closed", resp.StatusCode, len(rest))
			}
			if strings.Contains(string(rest), realValue) {
				t.Error("the request written after the CONNECT was served, injected")
			}
			assertAbsent(t, up, resp, string(body))
			if got := up.received(); len(got) != 0 {
				t.Errorf("upstream received %d requests; want none", len(got))
			}
		})
	}
}
