package hostsim_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// An HTTP call Envoy's async client fails (Context::onHttpCallFailure, Envoy
// source/extensions/common/wasm/context.cc): the upstream stream was reset or
// the response went over the async client's buffer limit. The root context
// gets proxy_on_http_call_response(root, token, 0, 0, 0) with no response maps
// or body, and proxy_get_status reads BrokenConnection (11) "reset" during it;
// afterwards the message is cleared but the code stays 11.
func TestHTTPCallFailures(t *testing.T) {
	tests := []struct {
		name    string
		limit   int
		handler http.HandlerFunc
	}{
		{"handler panics", 0, func(http.ResponseWriter, *http.Request) { panic("upstream crashed") }},
		{"handler aborts", 0, func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "partial")
			panic(http.ErrAbortHandler)
		}},
		{"handler hijacks and closes", 0, func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				panic(err)
			}
			io.WriteString(conn, "HTTP/1.1 200 OK\r\n")
			conn.Close()
		}},
		{"response over the buffer limit", 6, func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "gran")
			io.WriteString(w, "ted")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig
			cfg.Clusters = map[string]http.Handler{"authz": tt.handler}
			cfg.CallResponseLimit = tt.limit
			vm := hostsimtest.NewVM(t, guest(t), cfg)
			out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops",
				"http-call:authz|0|GET|/check|authz.local;return:1",
				"x-callback-ops", "get-status;buffer-status:4;get-map:6;continue")})
			if out.Upstream == nil {
				t.Fatalf("Do = %+v; want the request continued by the callback", out)
			}
			do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "get-status")})
			assertLines(t, calloutLines(vm), []string{
				"op=http-call status=0 token=4",
				"http_call_response id=1 token=4 headers=0 body=0 trailers=0",
				// No response maps (pairs of a missing map read as none) and no body.
				"call headers= body_status=1 body= trailers=",
				"op=effective status=0",
				"op=get-status status=0 code=11 ptr_zero=false message=reset",
				"op=buffer-status type=4 status=1 size=57005 flags=57005",
				"op=get-map status=2",
				"op=continue status=0",
				// Envoy clears only the message after the callback.
				"op=get-status status=0 code=11 ptr_zero=true message=",
			})
		})
	}
}

// A body exactly at the limit is a success, and leaves the status alone.
func TestHTTPCallResponseAtTheBufferLimit(t *testing.T) {
	cfg := baseConfig
	cfg.Clusters = map[string]http.Handler{"authz": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "granted")
	})}
	cfg.CallResponseLimit = len("granted")
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops",
		"http-call:authz|0|GET|/check|authz.local;return:1", "x-callback-ops", "get-status;continue")})
	var got []string
	for _, l := range calloutLines(vm) {
		if strings.HasPrefix(l, "http_call_response") || strings.HasPrefix(l, "op=get-status") {
			got = append(got, l)
		}
	}
	assertLines(t, got, []string{
		"http_call_response id=1 token=4 headers=1 body=7 trailers=0",
		"op=get-status status=0 code=0 ptr_zero=true message=",
	})
	if hostsim.DefaultCallResponseLimit != 32<<20 {
		t.Errorf("DefaultCallResponseLimit = %d, want Envoy's 32 MiB", hostsim.DefaultCallResponseLimit)
	}
}
