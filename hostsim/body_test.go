package hostsim_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// bodyLines returns the guest's body, trailers and op log lines.
func bodyLines(vm *hostsim.VM) []string {
	var out []string
	for _, m := range messages(vm.Logs()) {
		for _, p := range []string{"op=", "request_body", "response_body", "request_trailers", "response_trailers", "response_headers"} {
			if strings.HasPrefix(m, p) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// check fails the test on a callback's error and returns its result.
func check(t *testing.T) func(hostsim.Result, error) hostsim.Result {
	return func(r hostsim.Result, err error) hostsim.Result {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

// openStream starts a stream whose request headers (with ops) continued.
func openStream(t *testing.T, vm *hostsim.VM, ops string) *hostsim.Stream {
	t.Helper()
	s := vm.NewStream(context.Background())
	t.Cleanup(func() { s.Close() })
	check(t)(s.RequestHeaders(hdrs(":path", "/", "x-ops", ops), false))
	return s
}

func TestRequestBodyBuffersWhileStopIterationAndBuffer(t *testing.T) {
	// context.cc decodeData: while the module buffers, each chunk joins the filter
	// manager's buffer and body_size is the whole of it; Continue sends it all.
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	s := openStream(t, vm, "")
	r := check(t)(s.RequestBody([]byte("pause"), false))
	if r.Action != hostsim.ActionPause || r.Continue || string(r.Body) != "pause" {
		t.Errorf("first chunk = %+v", r)
	}
	r = check(t)(s.RequestBody([]byte("-more"), false))
	if !r.Continue || string(r.Body) != "pause-more" {
		t.Errorf("second chunk = %+v, want the whole body continued", r)
	}
	r = check(t)(s.RequestBody([]byte("tail"), true))
	if !r.Continue || string(r.Body) != "tail" {
		t.Errorf("last chunk = %+v", r)
	}
	assertLines(t, bodyLines(vm), []string{
		"request_body size=5 eos=0 status=0 body=pause",
		"request_body size=10 eos=0 status=0 body=pause-more",
		"request_body size=4 eos=1 status=0 body=tail",
	})
}

func TestInterleavedStreamsKeepTheirBuffers(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	a, b := openStream(t, vm, ""), openStream(t, vm, "")
	check(t)(a.RequestBody([]byte("pause"), false))
	check(t)(b.RequestBody([]byte("pause"), false))
	ra := check(t)(a.RequestBody([]byte("A"), true))
	rb := check(t)(b.RequestBody([]byte("BB"), true))
	if string(ra.Body) != "pauseA" || string(rb.Body) != "pauseBB" || !ra.Continue || !rb.Continue {
		t.Errorf("bodies = %q, %q, want pauseA, pauseBB continued", ra.Body, rb.Body)
	}
}

func TestRequestBodyOverTheBufferLimit(t *testing.T) {
	// filter_manager.cc requestDataTooLarge: 413 through the filter chain, so the
	// module sees the reply in proxy_on_response_headers; context.cc decodeData
	// does not call the module with the chunk that went over.
	want413 := &hostsim.LocalReply{Status: 413,
		Headers: hdrs(":status", "413", "content-length", "17", "content-type", "text/plain"),
		Body:    []byte("Payload Too Large"), Details: hostsim.RequestPayloadTooLargeDetails, GrpcStatus: -1}
	tests := []struct {
		name   string
		limit  int
		chunks []string
		want   *hostsim.LocalReply
		lines  []string
	}{{
		name: "second chunk over", limit: 8, chunks: []string{"pause", "1234"}, want: want413,
		lines: []string{"request_body size=5 eos=0 status=0 body=pause", "response_headers n=3 eos=0"},
	}, {
		name: "at the limit", limit: 9, chunks: []string{"pause", "1234"},
		lines: []string{"request_body size=5 eos=0 status=0 body=pause", "request_body size=9 eos=1 status=0 body=pause1234"},
	}, {
		name: "first chunk over", limit: 4, chunks: []string{"pause", "more"}, want: want413,
		lines: []string{"request_body size=5 eos=0 status=0 body=pause", "response_headers n=3 eos=0"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig
			cfg.BufferLimit = tt.limit
			vm := hostsimtest.NewVM(t, guest(t), cfg)
			s := openStream(t, vm, "")
			var r hostsim.Result
			for i, c := range tt.chunks {
				r = check(t)(s.RequestBody([]byte(c), i == len(tt.chunks)-1))
			}
			if !reflect.DeepEqual(r.LocalReply, tt.want) {
				t.Errorf("local reply = %+v, want %+v", r.LocalReply, tt.want)
			}
			if r.Continue == (tt.want != nil) {
				t.Errorf("Continue = %v", r.Continue)
			}
			assertLines(t, bodyLines(vm), tt.lines)
		})
	}
}

func TestResponseBodyOverTheBufferLimit(t *testing.T) {
	// filter_manager.cc responseDataTooLarge: response headers already sent
	// downstream -> reset; still held by the filter -> a 500 sent directly.
	t.Run("headers sent", func(t *testing.T) {
		cfg := baseConfig
		cfg.BufferLimit = 4
		vm := hostsimtest.NewVM(t, guest(t), cfg)
		s := openStream(t, vm, "resp-body-ops:return:1")
		check(t)(s.ResponseHeaders(hdrs(":status", "200"), false))
		r := check(t)(s.ResponseBody([]byte("hello"), false))
		if !r.Reset || r.Continue || r.LocalReply != nil {
			t.Errorf("result = %+v, want reset", r)
		}
		r = check(t)(s.ResponseBody([]byte("more"), true))
		if !r.Reset || r.Continue {
			t.Errorf("after reset = %+v", r)
		}
		assertLines(t, bodyLines(vm), []string{"response_headers n=1 eos=0", "response_body size=5 eos=0"})
	})
	t.Run("headers held", func(t *testing.T) {
		cfg := baseConfig
		cfg.BufferLimit = 4
		cfg.AllowOnHeadersStopIteration = true
		vm := hostsimtest.NewVM(t, guest(t), cfg)
		s := openStream(t, vm, "resp-body-ops:return:1")
		check(t)(s.ResponseHeaders(hdrs(":status", "200", "x-resp-ops", "return:1"), false))
		r := check(t)(s.ResponseBody([]byte("hello"), false))
		want := &hostsim.LocalReply{Status: 500,
			Headers: hdrs(":status", "500", "content-length", "21", "content-type", "text/plain"),
			Body:    []byte("Internal Server Error"), Details: hostsim.ResponsePayloadTooLargeDetails, GrpcStatus: -1}
		if !reflect.DeepEqual(r.LocalReply, want) || r.Continue || r.Reset {
			t.Errorf("result = %+v, want local reply %+v", r, want)
		}
		check(t)(s.ResponseBody([]byte("more"), false))
		check(t)(s.ResponseTrailers(hdrs("x-ops", "")))
		assertLines(t, bodyLines(vm), []string{"response_headers n=2 eos=0", "response_body size=5 eos=0"})
	})
}

func TestHeadersStopAllHoldsTheBody(t *testing.T) {
	// cpp-host turns a headers StopIteration into StopAllIterationAndWatermark
	// unless allowed; the filter manager then holds body chunks without calling
	// the filter (handleDataIfStopAll). StopAllIterationAndBuffer (3) holds them
	// under the buffer limit, Watermark (4) with flow control instead.
	tests := []struct {
		name      string
		ret       string
		allow     bool
		limit     int
		wantLines []string
		want413   bool
	}{
		{name: "StopIteration", ret: "1", wantLines: nil},
		{name: "StopIteration allowed", ret: "1", allow: true,
			wantLines: []string{"request_body size=5 eos=1 status=0 body=hello"}},
		{name: "StopAllIterationAndBuffer over the limit", ret: "3", limit: 4, want413: true,
			wantLines: []string{"response_headers n=3 eos=0"}},
		{name: "StopAllIterationAndWatermark over the limit", ret: "4", limit: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig
			cfg.AllowOnHeadersStopIteration, cfg.BufferLimit = tt.allow, tt.limit
			vm := hostsimtest.NewVM(t, guest(t), cfg)
			s := vm.NewStream(context.Background())
			defer s.Close()
			r := check(t)(s.RequestHeaders(hdrs(":path", "/", "x-ops", "return:"+tt.ret), false))
			if r.Continue {
				t.Fatalf("headers continued: %+v", r)
			}
			r = check(t)(s.RequestBody([]byte("hello"), true))
			if r.Continue != tt.allow || (r.LocalReply != nil) != tt.want413 {
				t.Errorf("body = %+v", r)
			}
			if tt.want413 && r.LocalReply.Status != 413 {
				t.Errorf("local reply = %+v, want 413", r.LocalReply)
			}
			assertLines(t, bodyLines(vm), tt.wantLines)
		})
	}
}

func TestCloseStreamResetsTheStream(t *testing.T) {
	// context.cc closeStream: resetStream after the callback; nothing goes
	// upstream and the filter is called no more, but the stream still ends
	// with proxy_on_log, proxy_on_done and proxy_on_delete.
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "close:0"), Body: []byte("hello")})
	if !out.Reset || out.Upstream != nil || out.UpstreamBody != nil || out.Paused || out.LocalReply != nil {
		t.Errorf("outcome = %+v, want reset only", out)
	}

	vm = hostsimtest.NewVM(t, guest(t), baseConfig)
	s := vm.NewStream(context.Background())
	r := check(t)(s.RequestHeaders(hdrs(":path", "/", "x-ops", "close:1"), false))
	if !r.Reset || r.Continue {
		t.Errorf("headers = %+v, want reset, not continued", r)
	}
	r = check(t)(s.RequestBody([]byte("pause"), true))
	if !r.Reset || r.Continue {
		t.Errorf("body = %+v", r)
	}
	r = check(t)(s.ResponseHeaders(hdrs(":status", "200"), true))
	if !r.Reset || r.Continue {
		t.Errorf("response headers = %+v", r)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got := messages(vm.Logs())
	assertLines(t, got[len(got)-5:], []string{"request_headers n=2 eos=0", "op=close type=1 status=0",
		"on_log path_status=0 path=/", "done 2", "delete 2"})
}

func TestBufferBytesRules(t *testing.T) {
	// cpp-host exports.cc get_buffer_bytes clamps start/length to the buffer;
	// Envoy's Buffer::copyFrom (context.cc): start 0 drains length bytes then
	// prepends, start at or past the end appends, anything else is BadArgument.
	tests := []struct {
		ops, wantBody string
		wantLines     []string
	}{
		{"body-get:1|1|3", "hello", []string{"op=body-get status=0 bytes=ell"}},
		{"body-get:1|3|100", "hello", []string{"op=body-get status=0 bytes=lo"}},
		{"body-get:1|9|2", "hello", []string{"op=body-get status=0 bytes="}},
		{"body-set:1|0|0|>>", ">>hello", []string{"op=body-set status=0"}},
		{"body-set:1|0|2|X", "Xllo", []string{"op=body-set status=0"}},
		{"body-set:1|0|99|X", "X", []string{"op=body-set status=0"}},
		{"body-set:1|5|0|!!", "hello!!", []string{"op=body-set status=0"}},
		{"body-set:1|9|3|!!", "hello!!", []string{"op=body-set status=0"}},
		{"body-set:1|2|1|X", "hello", []string{"op=body-set status=2"}},
		// The request body is not this callback's: empty, and not writable.
		{"body-get:0|0|10,body-set:0|0|0|X", "hello", []string{"op=body-get status=0 bytes=", "op=body-set status=2"}},
	}
	for _, tt := range tests {
		t.Run(tt.ops, func(t *testing.T) {
			vm := hostsimtest.NewVM(t, guest(t), baseConfig)
			s := openStream(t, vm, "resp-body-ops:"+tt.ops)
			check(t)(s.ResponseHeaders(hdrs(":status", "200"), false))
			r := check(t)(s.ResponseBody([]byte("hello"), true))
			if string(r.Body) != tt.wantBody || !r.Continue {
				t.Errorf("body = %q (continue %v), want %q", r.Body, r.Continue, tt.wantBody)
			}
			assertLines(t, opLines(vm), tt.wantLines)
		})
	}
}

func TestTrailers(t *testing.T) {
	// context.cc decodeTrailers/encodeTrailers and getMap: each trailer map is
	// there while its callback runs; the request headers are gone by then.
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	s := openStream(t, vm, "")
	r := check(t)(s.RequestBody([]byte("pause"), false))
	r = check(t)(s.RequestTrailers(hdrs("X-Ops", "get:grpc-status;add:x-added=1;get-map:0;get-map:3", "grpc-status", "0")))
	if !r.Continue || string(r.Body) != "pause" ||
		!reflect.DeepEqual(r.Trailers, hdrs("x-ops", "get:grpc-status;add:x-added=1;get-map:0;get-map:3", "grpc-status", "0", "x-added", "1")) {
		t.Errorf("request trailers = %+v, want the buffered body and x-added", r)
	}
	check(t)(s.ResponseHeaders(hdrs(":status", "200"), false))
	r = check(t)(s.ResponseTrailers(hdrs("x-ops", "remove:grpc-message;get-map:1;return:1", "grpc-message", "bad")))
	if r.Continue || r.Action != hostsim.ActionPause || !reflect.DeepEqual(r.Trailers, hdrs("x-ops", "remove:grpc-message;get-map:1;return:1")) {
		t.Errorf("response trailers = %+v", r)
	}
	assertLines(t, bodyLines(vm), []string{
		"request_body size=5 eos=0 status=0 body=pause",
		"request_trailers n=2",
		"op=get status=0 value=0",
		"op=add status=0",
		"op=get-map status=2", // request headers: gone
		"op=get-map status=2", // response trailers: not yet
		"response_headers n=1 eos=0",
		"response_trailers n=2",
		"op=remove status=0",
		"op=get-map status=2", // request trailers: continued
	})
}

func TestBodyCallbackAddsTrailersAtEndOfStream(t *testing.T) {
	// context.cc getMap: a body callback at end of stream may add trailers
	// (addEncodedTrailers); before the end there are none to add to.
	for _, eos := range []bool{true, false} {
		vm := hostsimtest.NewVM(t, guest(t), baseConfig)
		s := openStream(t, vm, "resp-body-ops:add:x-checksum=abc")
		check(t)(s.ResponseHeaders(hdrs(":status", "200"), false))
		r := check(t)(s.ResponseBody([]byte("hello"), eos))
		want, status := hdrs("x-checksum", "abc"), "0"
		if !eos {
			want, status = nil, "2"
		}
		if !reflect.DeepEqual(r.Trailers, want) || string(r.Body) != "hello" || !r.Continue {
			t.Errorf("eos %v: result = %+v, want trailers %v", eos, r, want)
		}
		assertLines(t, opLines(vm), []string{"op=add status=" + status})
	}
}

func TestTraceOfABodyOverTheLimit(t *testing.T) {
	// The chunk that goes over the limit never reaches the module; the 413 does,
	// in its response callbacks (the guest's response body callback makes no
	// host call without resp-body-ops).
	vm := recordingVM(t, func(c *hostsim.PluginConfig) { c.BufferLimit = 6 })
	s := openStream(t, vm, "")
	vm.ResetCalls()
	check(t)(s.RequestBody([]byte("pause"), false))
	check(t)(s.RequestBody([]byte("XY"), true))
	assertTrace(t, hostsim.WithoutWASI(vm.Calls()), []string{
		"proxy_on_request_body(2) -> Pause",
		"  proxy_get_buffer_bytes -> Ok",
		"    proxy_on_memory_allocate",
		"  proxy_log -> Ok",
		"proxy_on_response_headers(2) -> Continue",
		"  proxy_log -> Ok",
		"  proxy_get_header_map_value -> NotFound", // x-resp-ops
		"proxy_on_response_body(2) -> Continue",
	})
}

func TestBodyStopIterationAndWatermark(t *testing.T) {
	// context.cc encodeData: only StopIterationAndBuffer makes getBuffer return
	// the filter manager's buffer; after Watermark (2) the module sees each new
	// chunk alone while the filter manager keeps the earlier ones, past the limit.
	cfg := baseConfig
	cfg.BufferLimit = 3
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	s := openStream(t, vm, "resp-body-ops:return:2")
	check(t)(s.ResponseHeaders(hdrs(":status", "200"), false))
	check(t)(s.ResponseBody([]byte("ab"), false))
	r := check(t)(s.ResponseBody([]byte("cd"), true))
	if string(r.Body) != "abcd" || r.Continue || r.LocalReply != nil || r.Reset {
		t.Errorf("result = %+v, want abcd held", r)
	}
	assertLines(t, bodyLines(vm), []string{"response_headers n=1 eos=0", "response_body size=2 eos=0", "response_body size=2 eos=1"})
}
