package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// chunkedWithTrailers is a POST whose body has no known length, so the
// client sends it chunked, followed by trailers.
func chunkedWithTrailers(t *testing.T, target string, trailers http.Header) *http.Request {
	t.Helper()
	body := io.MultiReader(strings.NewReader(chatBody[:10]), strings.NewReader(chatBody[10:]))
	req, err := http.NewRequest(http.MethodPost, target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+placeholder)
	req.Trailer = trailers
	return req
}

// W4: request trailers pass through the filter and go upstream after the
// body, empty values included.
func TestForwardsRequestTrailers(t *testing.T) {
	var (
		mu   sync.Mutex
		got  []received
		tail []http.Header
	)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // r.Trailer is complete after the body
		mu.Lock()
		got = append(got, received{r.Method, r.RequestURI, r.Host, r.Header.Clone(), string(body)})
		tail = append(tail, r.Trailer.Clone())
		mu.Unlock()
		_, _ = io.WriteString(w, replyBody)
	}))
	defer up.Close()
	p, _ := startOpenAIProxy(t, passConfig, "-resolve", "trailers.example="+up.Listener.Addr().String())

	req := chunkedWithTrailers(t, "http://trailers.example/v1/chat/completions",
		http.Header{"X-Checksum": {"sha256=abc"}, "X-Empty": {""}})
	resp, body := p.do(t, req)
	if resp.StatusCode != http.StatusOK || body != replyBody {
		t.Fatalf("response = %d %q", resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	wantReq := []received{{
		Method:     "POST",
		RequestURI: "/v1/chat/completions",
		Host:       "trailers.example",
		Header: http.Header{
			"Authorization": {"Bearer " + placeholder},
			"User-Agent":    {"Go-http-client/1.1"},
		},
		Body: chatBody,
	}}
	if !reflect.DeepEqual(got, wantReq) {
		t.Errorf("upstream received\n%+v\nwant\n%+v", got, wantReq)
	}
	wantTrailers := []http.Header{{"X-Checksum": {"sha256=abc"}, "X-Empty": {""}}}
	if !reflect.DeepEqual(tail, wantTrailers) {
		t.Errorf("upstream trailers = %q, want %q", tail, wantTrailers)
	}
}

// The echo shows the trailers after an empty line.
func TestEchoShowsTrailers(t *testing.T) {
	p, _ := startOpenAIProxy(t, passConfig, "-echo")
	req := chunkedWithTrailers(t, "http://evil.example/upload", http.Header{"X-Checksum": {"sha256=abc"}})
	resp, body := p.do(t, req)
	wantResponse(t, resp, body, http.StatusOK, "text/plain; charset=utf-8", "POST /upload\n"+
		"host: evil.example\n"+
		"authorization: Bearer "+placeholder+"\n"+
		"transfer-encoding: chunked\n"+
		"user-agent: Go-http-client/1.1\n"+
		"\n"+
		"x-checksum: sha256=abc\n")
}

// TestFilterSeesRequestTrailers runs hostsim's scriptable test guest, which
// runs the ops in the trailers' own x-ops: what it writes to the trailer map
// is what goes upstream, and a local reply from the trailers callback is what
// the client gets, with the upstream request left incomplete.
func TestFilterSeesRequestTrailers(t *testing.T) {
	var (
		mu       sync.Mutex
		complete []http.Header // trailers of each request whose body arrived whole
	)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err == nil {
			mu.Lock()
			complete = append(complete, r.Trailer.Clone())
			mu.Unlock()
		}
		_, _ = io.WriteString(w, replyBody)
	}))
	defer up.Close()
	guest := filepath.Join(t.TempDir(), "guest.wasm")
	if err := os.WriteFile(guest, hostsimtest.BuildGo(t, "../../testdata/guest"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := writeFile(t, "config.txt", "trailers")
	t.Chdir(t.TempDir()) // no envoy.yaml: -config and -wasm suffice
	p := startProxy(t, "-config", config, "-wasm", guest, "-resolve", "trailers.example="+up.Listener.Addr().String())

	req := chunkedWithTrailers(t, "http://trailers.example/", http.Header{
		"X-Checksum": {"sha256=abc"},
		"X-Ops":      {"replace:x-checksum=sha256=filtered;add:x-added=1;remove:x-ops"},
	})
	resp, body := p.do(t, req)
	if resp.StatusCode != http.StatusOK || body != replyBody {
		t.Fatalf("response = %d %q", resp.StatusCode, body)
	}
	mu.Lock()
	got := complete
	mu.Unlock()
	want := []http.Header{{"X-Added": {"1"}, "X-Checksum": {"sha256=filtered"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("upstream trailers = %q, want %q", got, want)
	}

	req = chunkedWithTrailers(t, "http://trailers.example/", http.Header{"X-Ops": {"reply:403=refused at trailers"}})
	resp, body = p.do(t, req)
	if resp.StatusCode != http.StatusForbidden || body != "refused at trailers" || resp.Header.Get("X-Reply") != "yes" {
		t.Errorf("response = %d %q %q; want the guest's 403", resp.StatusCode, resp.Header, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(complete) != 1 {
		t.Errorf("upstream got %d complete requests, want only the first: a request stopped at its trailers must not arrive whole", len(complete))
	}
}
