package hostsim_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// calloutLines returns the guest's log lines about ops, HTTP-call responses and
// queue notices, in order.
func calloutLines(vm *hostsim.VM) []string {
	var out []string
	for _, m := range messages(vm.Logs()) {
		for _, prefix := range []string{"op=", "http_call_response ", "call ", "queue_ready ", "dequeue "} {
			if strings.HasPrefix(m, prefix) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

func assertLines(t *testing.T, got, want []string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lines:\n got %q\nwant %q", got, want)
	}
}

// seenRequest is what a cluster's handler saw.
type seenRequest struct {
	method, path, host, caller, contentLength, body, trailer string
}

// authzCluster answers every call alike and records the requests in seen
// (handlers run concurrently, so in any order).
func authzCluster(seen *[]seenRequest) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		*seen = append(*seen, seenRequest{r.Method, r.URL.Path, r.Host, r.Header.Get("X-Caller"),
			r.Header.Get("Content-Length"), string(body), r.Trailer.Get("X-Tr")})
		mu.Unlock()
		w.Header().Set("X-B", "1")
		w.Header().Set("X-A", "2")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "granted")
		w.Header().Set(http.TrailerPrefix+"X-T", "9")
	})
}

func TestHTTPCallResponseResumesTheRequest(t *testing.T) {
	var seen []seenRequest
	cfg := baseConfig
	cfg.Clusters = map[string]http.Handler{"authz": authzCluster(&seen)}
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/api", "x-ops",
		"http-call:authz|5000|POST|/check|authz.local|payload|x-tr=1;get-map:6;call-body;return:1",
		"x-callback-ops", "call-maps-write;add:x-authz=ok;continue")})

	assertLines(t, calloutLines(vm), []string{
		"op=http-call status=0 token=4",
		"op=get-map status=2",         // the response maps exist only during the callback
		"op=call-body status=1 body=", // and so does the body (NotFound)
		"http_call_response id=1 token=4 headers=3 body=7 trailers=1",
		"call headers=:status=201,x-a=2,x-b=1 body_status=0 body=granted trailers=x-t=9",
		"op=effective status=0",
		"op=call-maps-write add=2 size=2 set_body=2",
		"op=add status=0",
		"op=continue status=0",
	})
	wantSeen := []seenRequest{{"POST", "/check", "authz.local", "guest", "7", "payload", "1"}}
	if !reflect.DeepEqual(seen, wantSeen) {
		t.Errorf("handler saw %+v, want %+v", seen, wantSeen)
	}
	if out.Paused || out.LocalReply != nil || out.Upstream == nil {
		t.Fatalf("outcome = %+v, want the request resumed upstream", out)
	}
	if v, _ := out.Upstream.Get("x-authz"); v != "ok" {
		t.Errorf("upstream headers %q lack x-authz: ok added by the callback", *out.Upstream)
	}
}

func TestHTTPCallResponseCanAnswerLocally(t *testing.T) {
	var seen []seenRequest
	cfg := baseConfig
	cfg.Clusters = map[string]http.Handler{"authz": authzCluster(&seen)}
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/api", "x-ops",
		"http-call:authz|0|GET|/check|authz.local;return:1", "x-callback-ops", "reply:403=denied")})
	if out.LocalReply == nil || out.LocalReply.Status != 403 || string(out.LocalReply.Body) != "denied" || out.Upstream != nil {
		t.Fatalf("outcome = %+v, want a 403 local reply from the callback", out)
	}
}

func TestHTTPCallWithoutResumeStaysPaused(t *testing.T) {
	var seen []seenRequest
	cfg := baseConfig
	cfg.Clusters = map[string]http.Handler{"authz": authzCluster(&seen)}
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/api", "x-ops",
		"http-call:authz|0|GET|/check|authz.local;return:1")})
	if !out.Paused || out.Upstream != nil {
		t.Errorf("outcome = %+v, want paused", out)
	}
}

func TestHTTPCallStatuses(t *testing.T) {
	var seen []seenRequest
	cfg := baseConfig
	cfg.Clusters = map[string]http.Handler{"authz": authzCluster(&seen)}
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", strings.Join([]string{
		"http-call:authz|0|GET|/a|authz.local",
		"http-call:nowhere|0|GET|/a|authz.local",        // unknown cluster
		"http-call:authz|0|GET|/a|",                     // no :authority
		"http-call:authz|0||/a|authz.local",             // no :method
		"http-call:authz|0|GET||authz.local",            // no :path
		"http-call:authz|4294967295|GET|/a|authz.local", // timeout -1 as Envoy reads it
		"http-call:authz|0|GET|/b|authz.local",
	}, ";"))})
	// A failed call writes token 0 (exports.cc writes it before calling); tokens grow by 4.
	assertLines(t, calloutLines(vm), []string{
		"op=http-call status=0 token=4",
		"op=http-call status=2 token=0",
		"op=http-call status=2 token=0",
		"op=http-call status=2 token=0",
		"op=http-call status=2 token=0",
		"op=http-call status=2 token=0",
		"op=http-call status=0 token=8",
		"http_call_response id=1 token=4 headers=3 body=7 trailers=1",
		"call headers=:status=201,x-a=2,x-b=1 body_status=0 body=granted trailers=x-t=9",
		"op=effective status=0",
		"http_call_response id=1 token=8 headers=3 body=7 trailers=1",
		"call headers=:status=201,x-a=2,x-b=1 body_status=0 body=granted trailers=x-t=9",
		"op=effective status=0",
	})
	slices.SortFunc(seen, func(a, b seenRequest) int { return strings.Compare(a.path, b.path) })
	if len(seen) != 2 || seen[0].path != "/a" || seen[1].path != "/b" {
		t.Errorf("handler saw %+v, want /a and /b", seen)
	}
}

func TestHTTPCallTimeout(t *testing.T) {
	ended := make(chan error, 1)
	cfg := baseConfig
	cfg.Clusters = map[string]http.Handler{"slow": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		ended <- r.Context().Err()
		io.WriteString(w, "too late")
	})}
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "http-call:slow|20|GET|/a|slow.local")})
	// Envoy's router answers the async request with its 504 local reply.
	assertLines(t, calloutLines(vm), []string{
		"op=http-call status=0 token=4",
		"http_call_response id=1 token=4 headers=3 body=24 trailers=0",
		"call headers=:status=504,content-length=24,content-type=text/plain body_status=0 body=upstream request timeout trailers=",
		"op=effective status=0",
	})
	if err := <-ended; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the handler's request context ended with %v, want the deadline", err)
	}
}

func TestGrpcCallsFailAsWithoutACluster(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", strings.Join([]string{
		"grpc-call:grpc_cluster", // not a GrpcService message: a cluster name, unknown
		"grpc-call:hex=0a020a00", // GrpcService{envoy_grpc{}}: no client here
		"grpc-call:",             // an empty message parses too
		"grpc-stream:x",          // 'x' starts a varint field that never ends
		"grpc-stream:hex=1a00",   // GrpcService{timeout{}}
		"grpc-cancel:1",          // a gRPC call token nobody has
		"grpc-cancel:2",          // a gRPC stream token
		"grpc-cancel:4",          // an HTTP call token
		"grpc-close:5",
		"grpc-send:1", // send takes stream tokens only
		"grpc-send:6",
	}, ";"))})
	assertLines(t, calloutLines(vm), []string{
		"op=grpc-call status=4 token=57005",
		"op=grpc-call status=2 token=57005",
		"op=grpc-call status=2 token=57005",
		"op=grpc-stream status=4 token=57005",
		"op=grpc-stream status=2 token=57005",
		"op=grpc-cancel status=1",
		"op=grpc-cancel status=1",
		"op=grpc-cancel status=2",
		"op=grpc-close status=1",
		"op=grpc-send status=2",
		"op=grpc-send status=1",
	})
}

func TestForeignFunctions(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", strings.Join([]string{
		"zlib-roundtrip:sk-test-OPENAI-aaaa1111",
		"foreign:uncompress|789ccb48cdc9c90700062c0215", // zlib.compress(b"hello") from C zlib
		"foreign:uncompress|789ccb48cdc9c907",           // truncated
		"foreign:uncompress|",
		"foreign:clear_route_cache|",
		"foreign:sign|",
		"foreign:no_such_function|",
		"foreign-no-results",
	}, ";"))})
	assertLines(t, calloutLines(vm), []string{
		"op=zlib-roundtrip compress=0 uncompress=0 result=sk-test-OPENAI-aaaa1111",
		"op=foreign status=0 result=68656c6c6f",
		"op=foreign status=3 result=",
		"op=foreign status=3 result=",
		"op=foreign status=0 result=",
		"op=foreign status=1 result=",
		"op=foreign status=1 result=",
		"op=foreign-no-results status=0 size_nonzero=true",
	})
}
