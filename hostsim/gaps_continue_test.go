package hostsim_test

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// proxy_continue_stream made inside the stream's own headers callback: cpp-host
// runs Envoy's deferred continueDecoding as the callback returns, before the
// filter manager applies the status (src/context.cc DeferAfterCallActions,
// Envoy context.cc continueStream, filter_manager.cc commonContinue), so the
// headers leave right after a pausing callback; a StopAll still holds the body
// until another continue.
func TestContinueInOwnHeadersCallbackSendsTheHeadersOn(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	s := vm.NewStream(context.Background())
	id := strconv.Itoa(int(s.ID()))
	ops := "on-tick:effective:" + id + ",continue;continue;return:1"
	r, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", ops), false)
	if err != nil {
		t.Fatal(err)
	}
	want := hostsim.Result{Action: 1, Continue: true, ContinueRequested: true, Headers: hdrs(":path", "/", "x-ops", ops)}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("RequestHeaders:\n got %+v\nwant %+v", r, want)
	}
	// Pause became StopAllIterationAndWatermark: the filter stays stopped for the body.
	if r, err := s.RequestBody([]byte("abc"), true); err != nil || r.Continue || r.Body != nil {
		t.Fatalf("RequestBody = %+v, %v; want held", r, err)
	}
	if lines := resumeLines(vm); !reflect.DeepEqual(lines, []string{"op=continue status=0"}) {
		t.Fatalf("module lines %q; want only the continue (the body is held from it)", lines)
	}
	assertResumes(t, s, nil)

	vm.Tick() // continues again: the held body goes through the module's body callback
	assertResumes(t, s, []hostsim.Resume{{Result: hostsim.Result{Continue: true, Body: []byte("abc")}}})
	assertLines(t, resumeLines(vm), []string{
		"op=continue status=0",
		"op=effective status=0",
		"op=continue status=0",
		"request_body size=3 eos=1 status=0 body=abc",
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestContinueInOwnHeadersCallback(t *testing.T) {
	tests := []struct {
		name      string
		allowStop bool
		ops       string
		action    hostsim.Action
		// body is what the request body step returns: Continue and whether
		// the module's body callback ran.
		bodyContinue, bodySeen bool
	}{
		// StopIteration kept as is: the headers left, later body callbacks run as usual.
		{"stop iteration allowed", true, "continue;return:1", 1, true, true},
		// Continue: nothing was held, so the continue changes nothing.
		{"continue", false, "continue;return:0", 0, true, true},
		// A response continue during the request headers is no request continue.
		{"response type", false, "continue-type:1;return:1", 1, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig
			cfg.AllowOnHeadersStopIteration = tt.allowStop
			vm := hostsimtest.NewVM(t, guest(t), cfg)
			s := vm.NewStream(context.Background())
			r, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", tt.ops), false)
			if err != nil {
				t.Fatal(err)
			}
			wantContinue := tt.name != "response type"
			if r.Action != tt.action || r.Continue != wantContinue || !r.ContinueRequested {
				t.Fatalf("RequestHeaders = %+v; want Action %d, Continue %v, ContinueRequested", r, tt.action, wantContinue)
			}
			rb, err := s.RequestBody([]byte("abc"), true)
			if err != nil {
				t.Fatal(err)
			}
			var wantLines []string
			if tt.bodySeen {
				wantLines = []string{"request_body size=3 eos=1 status=0 body=abc"}
			}
			var got []string
			for _, m := range messages(vm.Logs()) {
				if len(m) > 13 && m[:13] == "request_body " {
					got = append(got, m)
				}
			}
			if rb.Continue != tt.bodyContinue || !reflect.DeepEqual(got, wantLines) {
				t.Errorf("RequestBody = %+v, module saw %q; want Continue %v, %q", rb, got, tt.bodyContinue, wantLines)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The same in the response headers and in a trailers callback: what the filter
// held leaves right after the pausing callback.
func TestContinueInOwnResponseAndTrailersCallbacks(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	s := vm.NewStream(context.Background())
	if r, err := s.RequestHeaders(hdrs(":path", "/"), false); err != nil || !r.Continue {
		t.Fatalf("RequestHeaders = %+v, %v", r, err)
	}
	if r, err := s.RequestBody([]byte("pause"), false); err != nil || r.Continue || r.Action != 1 {
		t.Fatalf("RequestBody = %+v, %v; want paused", r, err)
	}
	r, err := s.RequestTrailers(hdrs("x-ops", "continue;return:1"))
	want := hostsim.Result{Action: 1, Continue: true, ContinueRequested: true, Body: []byte("pause"),
		Trailers: hdrs("x-ops", "continue;return:1")}
	if err != nil || !reflect.DeepEqual(r, want) {
		t.Fatalf("RequestTrailers:\n got %+v, %v\nwant %+v", r, err, want)
	}
	r, err = s.ResponseHeaders(hdrs(":status", "200", "x-resp-ops", "continue-type:1;return:1"), true)
	want = hostsim.Result{Action: 1, Continue: true, ContinueRequested: true,
		Headers: hdrs(":status", "200", "x-resp-ops", "continue-type:1;return:1")}
	if err != nil || !reflect.DeepEqual(r, want) {
		t.Fatalf("ResponseHeaders:\n got %+v, %v\nwant %+v", r, err, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// In a body callback the continue sends on what the filter manager buffered
// by then: nothing for a first chunk (it is buffered only after the call, so
// the StopIterationAndBuffer holds it), but the whole body, this chunk
// included, once the chunks join a StopIterationAndBuffer buffer.
func TestContinueInOwnBodyCallback(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	s := vm.NewStream(context.Background())
	if r, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", "resp-body-ops:continue-type:1,return:1"), true); err != nil || !r.Continue {
		t.Fatalf("RequestHeaders = %+v, %v", r, err)
	}
	if r, err := s.ResponseHeaders(hdrs(":status", "200"), false); err != nil || !r.Continue {
		t.Fatalf("ResponseHeaders = %+v, %v", r, err)
	}
	r, err := s.ResponseBody([]byte("first "), false)
	want := hostsim.Result{Action: 1, ContinueRequested: true, Body: []byte("first ")}
	if err != nil || !reflect.DeepEqual(r, want) {
		t.Fatalf("first ResponseBody:\n got %+v, %v\nwant %+v", r, err, want)
	}
	r, err = s.ResponseBody([]byte("second"), true)
	want = hostsim.Result{Action: 1, Continue: true, ContinueRequested: true, Body: []byte("first second")}
	if err != nil || !reflect.DeepEqual(r, want) {
		t.Fatalf("second ResponseBody:\n got %+v, %v\nwant %+v", r, err, want)
	}
	assertLines(t, callbackLines(vm), []string{
		"response_headers n=1 eos=0",
		"response_body size=6 eos=0",
		"response_body size=12 eos=1", // the buffered body, this chunk included
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// Envoy's Context::continueStream forgets only the request maps, for either
// stream type; response_headers_ is cleared only when encodeHeaders returns
// Continue. After a response continue (from a tick, or from the response
// headers callback itself) the response body and trailers callbacks still
// read the response headers; after a Continue status they do not. (The own
// callback returns StopIteration, allowed, so the body is not held.)
func TestResponseHeadersStayAfterAResponseContinue(t *testing.T) {
	for _, tt := range []struct {
		name, reqOps, respOps string
		tick, allowStop       bool
		want                  string
	}{
		{"continued by a tick", "on-tick:effective:%d,continue-type:1;resp-body-ops:get-map:2", "return:1", true, false, "0"},
		{"continued in its own callback", "resp-body-ops:get-map:2", "continue-type:1;return:1", false, true, "0"},
		{"headers returned Continue", "resp-body-ops:get-map:2", "return:0", false, false,
			strconv.Itoa(int(hostsim.StatusBadArgument))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig
			cfg.AllowOnHeadersStopIteration = tt.allowStop
			vm := hostsimtest.NewVM(t, guest(t), cfg)
			s := vm.NewStream(context.Background())
			reqOps := strings.ReplaceAll(tt.reqOps, "%d", strconv.Itoa(int(s.ID())))
			if r, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", reqOps), true); err != nil || !r.Continue {
				t.Fatalf("RequestHeaders = %+v, %v", r, err)
			}
			r, err := s.ResponseHeaders(hdrs(":status", "200", "x", "1", "x-resp-ops", tt.respOps), false)
			if err != nil || r.Continue == tt.tick {
				t.Fatalf("ResponseHeaders = %+v, %v", r, err)
			}
			if tt.tick {
				vm.Tick()
				if n := len(s.Resumes()); n != 1 {
					t.Fatalf("%d resumes, want 1", n)
				}
			}
			if r, err := s.ResponseBody([]byte("abc"), false); err != nil || !r.Continue {
				t.Fatalf("ResponseBody = %+v, %v", r, err)
			}
			if r, err := s.ResponseTrailers(hdrs("x-ops", "get-map:2")); err != nil || !r.Continue {
				t.Fatalf("ResponseTrailers = %+v, %v", r, err)
			}
			var got []string
			for _, l := range opLines(vm) {
				if strings.HasPrefix(l, "op=get-map") {
					got = append(got, l)
				}
			}
			assertLines(t, got, []string{"op=get-map status=" + tt.want, "op=get-map status=" + tt.want})
		})
	}
}
