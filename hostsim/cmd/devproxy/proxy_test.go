package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/plugin/plugintest"
)

const (
	placeholder = "sgp_openai_000000000000000000001"
	realValue   = "sk-test-OPENAI-aaaa1111"
	chatBody    = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	replyBody   = `{"id":"chatcmpl-test","object":"chat.completion"}`

	passConfig = `{"session":"test","secrets":{"OPENAI_API_KEY":{"placeholder":"` + placeholder + `","value":"` + realValue + `"}}}`
	denyConfig = `{"session":"test","on_disallowed":"deny","secrets":{"OPENAI_API_KEY":{"placeholder":"` + placeholder + `","value":"` + realValue + `"}}}`
)

// received is one request as the upstream saw it.
type received struct {
	Method, RequestURI, Host string
	Header                   http.Header
	Body                     string
}

// upstream is a local server standing in for every real upstream: it records
// what it receives and answers like an OpenAI endpoint.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newUpstream(t *testing.T, tlsServer bool) *upstream {
	u := &upstream{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("upstream: reading the body: %v", err)
		}
		u.mu.Lock()
		u.reqs = append(u.reqs, received{r.Method, r.RequestURI, r.Host, r.Header.Clone(), string(body)})
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "recorder")
		_, _ = io.WriteString(w, replyBody)
	})
	if tlsServer {
		u.Server = httptest.NewTLSServer(handler)
	} else {
		u.Server = httptest.NewServer(handler)
	}
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) received() []received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]received(nil), u.reqs...)
}

func (u *upstream) addr() string { return u.Listener.Addr().String() }

// syncBuffer collects the proxy's stderr, written from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// envoyYAML is a bootstrap shaped like the shipped envoy.yaml.
func envoyYAML(wasmPath, pluginConfig string) string {
	return `static_resources:
  listeners:
  - name: forward_proxy
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: secretgate
                root_id: secretgate
                fail_open: false
                vm_config:
                  vm_id: secretgate
                  runtime: envoy.wasm.runtime.v8
                  code: {local: {filename: ` + wasmPath + `}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: |
                    ` + pluginConfig + `
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
`
}

type proxy struct {
	url       *url.URL
	startLine string
	logs      *syncBuffer
	client    *http.Client
}

// startProxy runs the dev proxy in-process through run, as main does, on a
// free port, and shuts it down (checking it exits cleanly) when the test ends.
func startProxy(t *testing.T, args ...string) *proxy {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stdoutW := io.Pipe()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-listen", "127.0.0.1:0"}, args...), stdoutW, logs)
		stdoutW.Close()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("the proxy did not start: %v\n%s", <-done, logs)
	}
	addr, _, _ := strings.Cut(strings.TrimPrefix(line, "secretgate dev proxy listening on http://"), " ")
	p := &proxy{url: &url.URL{Scheme: "http", Host: addr}, startLine: line, logs: logs}
	p.client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(p.url), DisableCompression: true}}
	t.Cleanup(func() {
		p.client.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run returned %v after shutdown", err)
		}
		if strings.Contains(logs.String(), realValue) {
			t.Error("the proxy logged the real value") // printing the logs would print it again
		}
	})
	return p
}

// startOpenAIProxy starts the proxy with the real plugin, configuration from
// an envoy.yaml, and api.openai.com and evil.example both served by one
// recording upstream.
func startOpenAIProxy(t *testing.T, pluginConfig string, extra ...string) (*proxy, *upstream) {
	t.Helper()
	up := newUpstream(t, false)
	wasm := plugintest.WasmPath(t)
	envoy := writeFile(t, "envoy.yaml", envoyYAML(wasm, pluginConfig))
	args := append([]string{"-envoy", envoy, "-resolve", "api.openai.com=" + up.addr(), "-resolve", "evil.example=" + up.addr()}, extra...)
	return startProxy(t, args...), up
}

// chat sends an OpenAI-shaped request through the proxy and returns the
// response with its body read.
func (p *proxy) chat(t *testing.T, target string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(chatBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+placeholder)
	req.Header.Set("Content-Type", "application/json")
	return p.do(t, req)
}

func (p *proxy) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// assertAbsent fails if the real value appears in anything the upstream
// received or the client got back.
func assertAbsent(t *testing.T, up *upstream, resp *http.Response, body string) {
	t.Helper()
	if s := fmt.Sprintf("%+v", up.received()); strings.Contains(s, realValue) {
		t.Error("the real value reached the upstream")
	}
	if s := fmt.Sprintf("%v %v %s", resp.Status, resp.Header, body); strings.Contains(s, realValue) {
		t.Error("the real value reached the client")
	}
}

func wantResponse(t *testing.T, resp *http.Response, body string, status int, contentType, wantBody string) {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != contentType || body != wantBody {
		t.Errorf("response = %d %q %q; want %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body, status, contentType, wantBody)
	}
}

func TestInjectsForAllowedHost(t *testing.T) {
	p, up := startOpenAIProxy(t, passConfig)
	resp, body := p.chat(t, "http://api.openai.com/v1/chat/completions")

	wantResponse(t, resp, body, http.StatusOK, "application/json", replyBody)
	if got := resp.Header.Get("X-Upstream"); got != "recorder" {
		t.Errorf("X-Upstream = %q: the upstream's headers did not reach the client", got)
	}
	want := []received{{
		Method:     "POST",
		RequestURI: "/v1/chat/completions",
		Host:       "api.openai.com",
		Header: http.Header{
			"Authorization":  {"Bearer " + realValue},
			"Content-Type":   {"application/json"},
			"Content-Length": {fmt.Sprint(len(chatBody))},
			"User-Agent":     {"Go-http-client/1.1"},
		},
		Body: chatBody,
	}}
	if got := up.received(); !reflect.DeepEqual(got, want) {
		t.Errorf("upstream received\n%+v\nwant\n%+v", got, want)
	}
	if logs := p.logs.String(); strings.Contains(logs, "[wasm debug]") {
		t.Errorf("debug logs printed without -v:\n%s", logs)
	}
}

func TestPassesPlaceholderToOtherHost(t *testing.T) {
	p, up := startOpenAIProxy(t, passConfig)
	resp, body := p.chat(t, "http://evil.example/v1/chat/completions")

	wantResponse(t, resp, body, http.StatusOK, "application/json", replyBody)
	got := up.received()
	if len(got) != 1 || got[0].Host != "evil.example" || got[0].RequestURI != "/v1/chat/completions" || got[0].Body != chatBody ||
		!reflect.DeepEqual(got[0].Header["Authorization"], []string{"Bearer " + placeholder}) {
		t.Errorf("upstream received %+v; want the request with the placeholder unchanged", got)
	}
	assertAbsent(t, up, resp, body)
	if logs := p.logs.String(); !strings.Contains(logs, "[wasm warn] ") || !strings.Contains(logs, "OPENAI_API_KEY") {
		t.Errorf("no warning logged for the violation:\n%s", logs)
	}
}

func TestDenyMode(t *testing.T) {
	p, up := startOpenAIProxy(t, denyConfig)
	var reused []bool
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = append(reused, info.Reused) }}

	resp, body := p.chat(t, "http://evil.example/v1/chat/completions")
	wantResponse(t, resp, body, http.StatusForbidden, "application/json",
		`{"error":"secret_not_allowed","secrets":["OPENAI_API_KEY"],"host":"evil.example"}`)
	if got := up.received(); len(got) != 0 {
		t.Errorf("upstream received %+v after a deny", got)
	}
	assertAbsent(t, up, resp, body)

	// The connection stays usable after a local reply.
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, "http://api.openai.com/v1/models", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+placeholder)
	resp, body = p.do(t, req)
	wantResponse(t, resp, body, http.StatusOK, "application/json", replyBody)
	if got := up.received(); len(got) != 1 || !reflect.DeepEqual(got[0].Header["Authorization"], []string{"Bearer " + realValue}) {
		t.Errorf("upstream received %+v; want one request with the value injected", got)
	}
	if !reflect.DeepEqual(reused, []bool{true}) {
		t.Errorf("connection reused = %v, want [true]", reused)
	}
}

func TestForwardsPathBytesAndRepeatedHeaders(t *testing.T) {
	p, up := startOpenAIProxy(t, passConfig)
	const target = "/v1/a%2Fb/./c/%2e%2E/d//e?x=%7e&y=a+b&z"
	req, err := http.NewRequest(http.MethodGet, "http://api.openai.com"+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header["X-Api-Key"] = []string{placeholder, "other", "k=" + placeholder}
	req.Header.Set("Proxy-Authorization", "Basic dXNlcjpwYXNz")
	resp, body := p.do(t, req)

	wantResponse(t, resp, body, http.StatusOK, "application/json", replyBody)
	want := []received{{
		Method:     "GET",
		RequestURI: target,
		Host:       "api.openai.com",
		Header: http.Header{
			"X-Api-Key":           {realValue, "other", "k=" + realValue},
			"Proxy-Authorization": {"Basic dXNlcjpwYXNz"},
			"User-Agent":          {"Go-http-client/1.1"},
		},
	}}
	if got := up.received(); !reflect.DeepEqual(got, want) {
		t.Errorf("upstream received\n%+v\nwant\n%+v", got, want)
	}
}

func TestInjectsIntoQuery(t *testing.T) {
	const geminiConfig = `{"session":"test","secrets":{"GEMINI_API_KEY":{"placeholder":"sgp_gemini_000000000000000000005","value":"AIza+test/DDDD=4444"}}}`
	for host, wantURI := range map[string]string{
		"generativelanguage.googleapis.com": "//v1beta//models?key=AIza%2Btest%2FDDDD%3D4444&pageSize=5",
		"evil.example":                      "//v1beta//models?key=sgp_gemini_000000000000000000005&pageSize=5",
	} {
		t.Run(host, func(t *testing.T) {
			up := newUpstream(t, false)
			p := startProxy(t, "-config", writeFile(t, "config.json", geminiConfig), "-wasm", plugintest.WasmPath(t),
				"-envoy", writeFile(t, "envoy.yaml", envoyYAML("unused.wasm", "{}")), "-resolve", host+"="+up.addr())
			// A leading "//" must stay a path, not become an authority.
			req, err := http.NewRequest(http.MethodGet, "http://"+host+"//v1beta//models?key=sgp_gemini_000000000000000000005&pageSize=5", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, body := p.do(t, req)
			wantResponse(t, resp, body, http.StatusOK, "application/json", replyBody)
			if got := up.received(); len(got) != 1 || got[0].RequestURI != wantURI || got[0].Host != host {
				t.Errorf("upstream received %+v, want %s", got, wantURI)
			}
			if s := fmt.Sprintf("%+v %v %s", up.received(), resp.Header, body); host == "evil.example" && strings.Contains(s, "AIza") {
				t.Errorf("the real value reached the upstream or the client: %s", s)
			}
			if strings.Contains(p.logs.String(), "AIza") {
				t.Errorf("the real value was logged:\n%s", p.logs)
			}
		})
	}
}

func TestOriginFormRequest(t *testing.T) {
	p, up := startOpenAIProxy(t, passConfig)
	conn, err := net.Dial("tcp", p.url.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = io.WriteString(conn, "GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n"+
		"Authorization: Bearer "+placeholder+"\r\nConnection: close\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	wantResponse(t, resp, string(body), http.StatusOK, "application/json", replyBody)
	want := []received{{
		Method:     "GET",
		RequestURI: "/v1/models",
		Host:       "api.openai.com",
		Header:     http.Header{"Authorization": {"Bearer " + realValue}},
	}}
	if got := up.received(); !reflect.DeepEqual(got, want) {
		t.Errorf("upstream received\n%+v\nwant\n%+v", got, want)
	}
}

// W2: "http:/v1/models?..." parses in net/http as a path with no host, and
// was sent on as "GET /". Envoy's codec answers 400 before any filter runs,
// and so must the dev proxy.
func TestRefusesTargetWithoutAuthority(t *testing.T) {
	p, up := startOpenAIProxy(t, passConfig)
	conn, err := net.Dial("tcp", p.url.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = io.WriteString(conn, "GET http:/v1/models?key="+placeholder+" HTTP/1.1\r\nHost: api.openai.com\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	wantResponse(t, resp, string(body), http.StatusBadRequest, "text/plain; charset=utf-8", "devproxy: invalid request target\n")
	if !resp.Close {
		t.Error("the connection stays open after a 400 for the request line; Envoy closes it")
	}
	if got := up.received(); len(got) != 0 {
		t.Errorf("upstream received %+v; want nothing", got)
	}
	assertAbsent(t, up, resp, string(body))
	if logs := p.logs.String(); strings.Contains(logs, placeholder) || !strings.Contains(logs, "devproxy: GET with a request target that is neither") {
		t.Errorf("logs = %q; want the refusal logged without the target", logs)
	}
}

func TestVerboseLogsDebug(t *testing.T) {
	p, _ := startOpenAIProxy(t, passConfig, "-v")
	resp, body := p.chat(t, "http://api.openai.com/v1/chat/completions")
	wantResponse(t, resp, body, http.StatusOK, "application/json", replyBody)
	if logs := p.logs.String(); !strings.Contains(logs, "[wasm debug] ") {
		t.Errorf("no debug log with -v:\n%s", logs)
	}
}

func TestStreamsResponseAsItArrives(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "data: two\n\n")
	}))
	defer up.Close()
	defer close(release)
	// -config overrides the configuration in envoy.yaml, which the plugin would refuse.
	config := writeFile(t, "config.json", passConfig)
	p := startProxy(t, "-envoy", writeFile(t, "envoy.yaml", envoyYAML(plugintest.WasmPath(t), "{}")),
		"-config", config, "-resolve", "api.openai.com="+up.Listener.Addr().String())

	// A deadline turns a proxy that buffers the stream into a failure, not a hang.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://api.openai.com/v1/responses", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("response = %d %q", resp.StatusCode, ct)
	}
	// The first event arrives while the upstream still holds the second.
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first line = %q, %v", line, err)
	}
}

func TestStreamsChunkedRequestBody(t *testing.T) {
	p, up := startOpenAIProxy(t, passConfig)
	// A reader of unknown length makes the client send the body chunked.
	body := io.MultiReader(strings.NewReader(chatBody[:10]), strings.NewReader(chatBody[10:]))
	req, err := http.NewRequest(http.MethodPost, "http://api.openai.com/v1/chat/completions", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+placeholder)
	resp, respBody := p.do(t, req)
	wantResponse(t, resp, respBody, http.StatusOK, "application/json", replyBody)
	want := []received{{
		Method:     "POST",
		RequestURI: "/v1/chat/completions",
		Host:       "api.openai.com",
		Header: http.Header{
			"Authorization": {"Bearer " + realValue},
			"User-Agent":    {"Go-http-client/1.1"},
		},
		Body: chatBody,
	}}
	if got := up.received(); !reflect.DeepEqual(got, want) {
		t.Errorf("upstream received\n%+v\nwant\n%+v", got, want)
	}
}

func TestResponseHeadersAsUpstreamSent(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil // no Content-Type at all
		w.Header()["Set-Cookie"] = []string{"a=1", "b=2"}
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "<html>not sniffed")
	}))
	defer up.Close()
	p, _ := startOpenAIProxy(t, passConfig, "-resolve", "plain.example="+up.Listener.Addr().String())
	req, err := http.NewRequest(http.MethodGet, "http://plain.example/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := p.do(t, req)
	if resp.StatusCode != http.StatusTeapot || body != "<html>not sniffed" {
		t.Errorf("response = %d %q", resp.StatusCode, body)
	}
	if ct, ok := resp.Header["Content-Type"]; ok {
		t.Errorf("Content-Type = %q, want none (the proxy must not sniff one)", ct)
	}
	if got := resp.Header["Set-Cookie"]; !reflect.DeepEqual(got, []string{"a=1", "b=2"}) {
		t.Errorf("Set-Cookie = %q", got)
	}
}

func TestUpstreamErrorIs502(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	p, up := startOpenAIProxy(t, passConfig, "-resolve", "down.example="+closedAddr)
	resp, body := p.chat(t, "http://down.example/v1/chat/completions")
	wantResponse(t, resp, body, http.StatusBadGateway, "text/plain; charset=utf-8", "devproxy: upstream request failed\n")
	assertAbsent(t, up, resp, body)
	if logs := p.logs.String(); !strings.Contains(logs, "devproxy: upstream down.example: ") {
		t.Errorf("upstream failure not logged:\n%s", logs)
	}
}

func TestConnectTunnelsUninspected(t *testing.T) {
	up := newUpstream(t, true)
	config := writeFile(t, "config.json", passConfig)
	t.Chdir(t.TempDir()) // no envoy.yaml here: -config and -wasm suffice
	wasm := plugintest.WasmPath(t)
	p := startProxy(t, "-config", config, "-wasm", wasm, "-resolve", "example.com="+up.addr())
	if want := "(module " + wasm + ", config from " + config + ")\n"; !strings.HasSuffix(p.startLine, want) {
		t.Errorf("start line = %q, want it to end with %q", p.startLine, want)
	}

	transport := up.Client().Transport.(*http.Transport).Clone()
	transport.Proxy = http.ProxyURL(p.url)
	transport.TLSClientConfig.ServerName = "example.com"
	client := &http.Client{Transport: transport}
	defer client.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodPost, "https://example.com/v1/chat/completions", strings.NewReader(chatBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+placeholder)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantResponse(t, resp, string(body), http.StatusOK, "application/json", replyBody)
	got := up.received()
	if len(got) != 1 || got[0].Host != "example.com" || got[0].Body != chatBody ||
		!reflect.DeepEqual(got[0].Header["Authorization"], []string{"Bearer " + placeholder}) {
		t.Errorf("upstream received %+v; want the tunnelled request byte for byte", got)
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Error("the request did not go through TLS inside the tunnel")
	}
}

func TestStartupLine(t *testing.T) {
	wasm := plugintest.WasmPath(t)
	envoy := writeFile(t, "envoy.yaml", envoyYAML(wasm, passConfig))
	p := startProxy(t, "-envoy", envoy)
	want := "secretgate dev proxy listening on http://" + p.url.Host + " (module " + wasm + ", config from " + envoy + ")\n"
	if p.startLine != want {
		t.Errorf("start line = %q, want %q", p.startLine, want)
	}
}

func TestRejectedConfigurationStopsStartup(t *testing.T) {
	wasm := plugintest.WasmPath(t)
	config := writeFile(t, "config.json", `{"session":"test","secrets":{"OPENAI_API_KEY":{"placeholder":"`+placeholder+`","value":"`+realValue+`\r\nX-Injected: 1"}}}`)
	var logs syncBuffer
	err := run(context.Background(), []string{"-listen", "127.0.0.1:0", "-envoy", writeFile(t, "envoy.yaml", envoyYAML(wasm, "{}")), "-config", config}, io.Discard, &logs)
	if !errors.Is(err, hostsim.ErrConfigure) {
		t.Fatalf("err = %v, want hostsim.ErrConfigure", err)
	}
	if prefix := config + ": module " + wasm + " refused the plugin configuration: "; !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("err = %q, want it to start with %q", err, prefix)
	}
	if !strings.Contains(logs.String(), "[wasm critical] ") {
		t.Errorf("the module's reason was not printed:\n%s", &logs)
	}
	if strings.Contains(err.Error()+logs.String(), realValue) {
		t.Errorf("the real value was printed: %v\n%s", err, &logs)
	}
}

func TestMissingEnvoyFile(t *testing.T) {
	t.Chdir(t.TempDir())
	err := run(context.Background(), nil, io.Discard, io.Discard)
	if want := "open envoy.yaml: no such file or directory (run from the repository root, or pass -envoy or -config)"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	missing := filepath.Join(t.TempDir(), "envoy.yaml")
	err = run(context.Background(), []string{"-envoy", missing}, io.Discard, io.Discard)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want a missing-file error", err)
	}
	// An explicit -envoy must exist even with -config.
	err = run(context.Background(), []string{"-envoy", missing, "-config", writeFile(t, "c.json", passConfig)}, io.Discard, io.Discard)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("with -config: err = %v, want a missing-file error", err)
	}
}

func TestConcurrentStreams(t *testing.T) {
	p, up := startOpenAIProxy(t, passConfig)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			host := []string{"api.openai.com", "evil.example"}[i%2]
			req, err := http.NewRequest(http.MethodPost, "http://"+host+"/v1/chat/completions", strings.NewReader(chatBody))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Authorization", "Bearer "+placeholder)
			resp, err := p.client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != replyBody {
				t.Errorf("%s: %d %q", host, resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	got := up.received()
	if len(got) != 16 {
		t.Fatalf("upstream received %d requests, want 16", len(got))
	}
	for _, r := range got {
		want := "Bearer " + placeholder
		if r.Host == "api.openai.com" {
			want = "Bearer " + realValue
		}
		if a := r.Header.Get("Authorization"); a != want {
			t.Errorf("%s received Authorization %q, want %q", r.Host, a, want)
		}
	}
}

// TestDenyTakesEnvoysLocalReplyForms: Envoy answers a gRPC request's local
// reply trailers-only (200, grpc-status from the HTTP code, the body as
// grpc-message) and a HEAD request's without its body; the dev proxy must
// write the reply hostsim prepared, not rebuild a plain 403.
func TestDenyTakesEnvoysLocalReplyForms(t *testing.T) {
	p, up := startOpenAIProxy(t, denyConfig)
	deny := `{"error":"secret_not_allowed","secrets":["OPENAI_API_KEY"],"host":"evil.example"}`
	for _, c := range []struct {
		name, method, contentType string
		status                    int
		header                    http.Header
		body                      string
	}{
		{"grpc", http.MethodPost, "application/grpc", http.StatusOK, http.Header{
			"Content-Type":   {"application/grpc"},
			"Content-Length": {"0"},
			"Grpc-Status":    {"7"}, // PERMISSION_DENIED, Envoy's mapping of 403
			"Grpc-Message":   {`{"error":"secret_not_allowed","secrets":["OPENAI_API_KEY"],"host":"evil.example"}`},
		}, ""},
		{"head", http.MethodHead, "", http.StatusForbidden, http.Header{
			"Content-Type":   {"application/json"},
			"Content-Length": {fmt.Sprint(len(deny))},
		}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, "http://evil.example/helloworld.Greeter/SayHello", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+placeholder)
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			resp, body := p.do(t, req)
			got := resp.Header.Clone()
			got.Del("Date")
			if resp.StatusCode != c.status || !reflect.DeepEqual(got, c.header) || body != c.body {
				t.Errorf("response = %d %v %q; want %d %v %q", resp.StatusCode, got, body, c.status, c.header, c.body)
			}
			if got := up.received(); len(got) != 0 {
				t.Errorf("upstream received %+v after a deny", got)
			}
			assertAbsent(t, up, resp, body)
		})
	}
}
