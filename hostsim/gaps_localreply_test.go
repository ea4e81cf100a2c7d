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

// callbackLines are the guest's response callback lines.
func callbackLines(vm *hostsim.VM) []string {
	var out []string
	for _, m := range messages(vm.Logs()) {
		if strings.HasPrefix(m, "response_headers ") || strings.HasPrefix(m, "response_body ") {
			out = append(out, m)
		}
	}
	return out
}

// A local reply from the response headers callback: the response has started
// but its headers have not gone downstream, so Envoy's
// FilterManager::sendLocalReply sends the reply straight to the codec
// (sendDirectLocalReply, filter_manager.cc): it replaces the upstream
// response, the module does not see it, and the rest of the upstream response
// no longer reaches the module.
func TestLocalReplyFromTheResponseHeadersReplacesTheResponse(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	s := vm.NewStream(context.Background())
	logCases := []propCase{{"prop:response/code", 0, i64(403)}, {"prop:response/code_details", 0, hexs("denied_by_test")}}
	reqH := hdrs(":path", "/", "x-ops", "resp-body-ops:return:0;log-ops", "x-log-ops", opsOf(logCases))
	if r, err := s.RequestHeaders(reqH, true); err != nil || !r.Continue {
		t.Fatalf("RequestHeaders = %+v, %v", r, err)
	}
	respH := hdrs(":status", "200", "x-resp-ops", "reply:403=nope;return:0")
	r, err := s.ResponseHeaders(respH, false)
	if err != nil {
		t.Fatal(err)
	}
	want := hostsim.Result{Headers: respH, LocalReply: &hostsim.LocalReply{Status: 403,
		Headers: hdrs(":status", "403", "x-reply", "yes", "x-reply", "again", "x-resp-ops", "add:x-seen=1",
			"content-length", "4", "content-type", "text/plain"),
		Body: []byte("nope"), Details: "denied_by_test", GrpcStatus: -1}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("ResponseHeaders:\n got %+v\nwant %+v", r, want)
	}
	b, err := s.ResponseBody([]byte("upstream body"), true)
	if err != nil || b.Continue || b.Body != nil || !reflect.DeepEqual(b.LocalReply, want.LocalReply) {
		t.Fatalf("ResponseBody = %+v, %v; want the upstream body dropped", b, err)
	}
	// The reply's own headers (x-resp-ops: add:x-seen=1) never reach the module.
	assertLines(t, callbackLines(vm), []string{"response_headers n=2 eos=0"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The stream info took the reply's code and details (access log phase).
	assertLines(t, opLines(vm), append([]string{"op=reply status=0"}, linesOf(logCases)...))
}

// Once the response headers went downstream, a local reply can only reset
// the stream (FilterManager::sendLocalReply's last branch).
func TestLocalReplyAfterTheResponseHeadersLeftResetsTheStream(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	s := vm.NewStream(context.Background())
	if r, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", "resp-body-ops:reply:500=late,return:0"), true); err != nil || !r.Continue {
		t.Fatalf("RequestHeaders = %+v, %v", r, err)
	}
	if r, err := s.ResponseHeaders(hdrs(":status", "200"), false); err != nil || !r.Continue {
		t.Fatalf("ResponseHeaders = %+v, %v", r, err)
	}
	r, err := s.ResponseBody([]byte("upstream body"), false)
	if err != nil || r.Continue || !r.Reset || r.LocalReply != nil {
		t.Fatalf("ResponseBody = %+v, %v; want a reset", r, err)
	}
	if r, err := s.ResponseBody([]byte("more"), true); err != nil || r.Continue || !r.Reset {
		t.Fatalf("second ResponseBody = %+v, %v; want the reset stream", r, err)
	}
	assertLines(t, callbackLines(vm), []string{"response_headers n=1 eos=0", "response_body size=13 eos=0"})
	assertLines(t, opLines(vm), []string{"op=reply status=0"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// proxy_close_stream sets response.code_details to wasm_close_stream when the
// stream has none (context.cc closeStream); there is still no response code.
// Details a response already set stay.
func TestCloseStreamSetsCodeDetails(t *testing.T) {
	logCases := []propCase{{"prop:response/code_details", 0, hexs(hostsim.CloseStreamDetails)},
		{"prop:response/code", 1, ""}}
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "log-ops;close:0", "x-log-ops", opsOf(logCases))})
	if !out.Reset {
		t.Fatalf("Do = %+v; want a reset", out)
	}
	assertLines(t, opLines(vm), append([]string{"op=close type=0 status=0"}, linesOf(logCases)...))

	afterUpstream := []propCase{{"prop:response/code_details", 0, hexs("via_upstream")}}
	vm = hostsimtest.NewVM(t, guest(t), baseConfig)
	s := vm.NewStream(context.Background())
	if _, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", "log-ops", "x-log-ops", opsOf(afterUpstream)), true); err != nil {
		t.Fatal(err)
	}
	if r, err := s.ResponseHeaders(hdrs(":status", "200", "x-resp-ops", "close:1"), true); err != nil || !r.Reset {
		t.Fatalf("ResponseHeaders = %+v, %v; want a reset", r, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	assertLines(t, opLines(vm), append([]string{"op=close type=1 status=0"}, linesOf(afterUpstream)...))
}

// StringUtil::replaceAllEmptySpace replaces the whitespace bytes of the
// details with '_' and keeps every other byte, invalid UTF-8 included.
func TestLocalReplyDetailsKeepOtherBytes(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/",
		"x-ops", "reply-with:403|-1|a b\tc\n\r\f\vd\xff\xfe é|nope|")})
	if out.LocalReply == nil {
		t.Fatalf("Do = %+v; want a local reply", out)
	}
	if got, want := out.LocalReply.Details, "a_b_c____d\xff\xfe_é"; got != want {
		t.Errorf("details = %q, want %q", got, want)
	}
}

// The form of a local reply follows Envoy's Utility::prepareLocalReply and
// encodeLocalReply (source/common/http/utility.cc): trailers-only for a gRPC
// request, no body for a HEAD request, no content-length/content-type for an
// empty body. Each case sends its reply from proxy_on_request_headers and
// checks the headers as they leave (after the module's own
// proxy_on_response_headers, which here changes nothing), the body, and what
// the module's response callbacks were called with.
func TestLocalReplyForm(t *testing.T) {
	grpcReq := []string{":method", "POST", ":path", "/pkg.Svc/Call", "content-type", "application/grpc"}
	plainReq := []string{":method", "GET", ":path", "/"}
	headReq := []string{":method", "HEAD", ":path", "/"}
	// Each case: name, request headers, x-ops (reply-with:code|grpc|details|body|headers),
	// the headers that leave, the body that follows them, and the module's response
	// callbacks ("; " between them).
	tests := []struct {
		name     string
		req      []string
		ops      string
		headers  []string
		body     string
		callList string
	}{
		{"grpc: status 200, grpc-status from the code, message, no content-length", grpcReq, "reply-with:403|-1|denied|no access|content-length=99,x-a=1,content-type=text/html",
			[]string{":status", "200", "x-a", "1", "content-type", "application/grpc", "grpc-status", "7", "grpc-message", "no access"}, "", "response_headers n=5 eos=1"},
		{"grpc: the module's status argument wins over the code", grpcReq, "reply-with:503|16|d|x|",
			[]string{":status", "200", "content-type", "application/grpc", "grpc-status", "16", "grpc-message", "x"}, "", "response_headers n=4 eos=1"},
		{"grpc: the module's grpc-status header wins, its grpc-message is replaced in place", grpcReq, "reply-with:404|3|d|gone|grpc-message=old,grpc-status=5",
			[]string{":status", "200", "grpc-message", "gone", "grpc-status", "5", "content-type", "application/grpc"}, "", "response_headers n=4 eos=1"},
		{"grpc: an empty grpc-status header is set in place", grpcReq, "reply-with:404|-1|d||grpc-status=,x-a=1",
			[]string{":status", "200", "grpc-status", "12", "x-a", "1", "content-type", "application/grpc"}, "", "response_headers n=4 eos=1"},
		{"grpc: percent-encoding of the message", grpcReq, "reply-with:400|-1|d|a%b~c\x7f\x01\té} {|",
			[]string{":status", "200", "content-type", "application/grpc", "grpc-status", "13", "grpc-message", "a%25b%7Ec%7F%01%09%C3%A9} {"}, "", "response_headers n=4 eos=1"},
		{"grpc: application/grpc+proto is gRPC", []string{":path", "/p", "content-type", "application/grpc+proto"}, "reply-with:401|-1|d||",
			[]string{":status", "200", "content-type", "application/grpc", "grpc-status", "16"}, "", "response_headers n=3 eos=1"},
		{"grpc HEAD: no grpc-message", []string{":method", "HEAD", ":path", "/p", "content-type", "application/grpc"}, "reply-with:429|-1|d|slow down|",
			[]string{":status", "200", "content-type", "application/grpc", "grpc-status", "14"}, "", "response_headers n=3 eos=1"},
		{"not grpc: application/grpc;charset", []string{":path", "/p", "content-type", "application/grpc;charset=utf-8"}, "reply-with:403|-1|d|no|",
			[]string{":status", "403", "content-length", "2", "content-type", "text/plain"}, "no", "response_headers n=3 eos=0; response_body size=2 eos=1"},
		{"not grpc: application/grpc-web", []string{":path", "/p", "content-type", "application/grpc-web"}, "reply-with:403|-1|d||",
			[]string{":status", "403"}, "", "response_headers n=1 eos=1"},
		{"not grpc: no :path", []string{":method", "CONNECT", ":authority", "h:443", "content-type", "application/grpc"}, "reply-with:403|-1|d||",
			[]string{":status", "403"}, "", "response_headers n=1 eos=1"},
		{"judged on the client's headers: the module's content-type does not make it gRPC", plainReq, "replace:content-type=application/grpc;reply-with:403|-1|d||",
			[]string{":status", "403"}, "", "response_headers n=1 eos=1"},
		{"judged on the client's headers: removing content-type keeps it gRPC", grpcReq, "remove:content-type;reply-with:403|-1|d||",
			[]string{":status", "200", "content-type", "application/grpc", "grpc-status", "7"}, "", "response_headers n=3 eos=1"},
		{"HEAD: content-length kept, no body", headReq, "reply-with:403|-1|d|nope|",
			[]string{":status", "403", "content-length", "4", "content-type", "text/plain"}, "", "response_headers n=3 eos=1"},
		{"empty body: the module's content-length and content-type go", plainReq, "reply-with:204|-1|d||content-length=12,x-b=2,content-type=text/html",
			[]string{":status", "204", "x-b", "2"}, "", "response_headers n=2 eos=1"},
		{"body: the module's content-length is set in place, its content-type kept", plainReq, "reply-with:403|-1|d|nope|content-length=99,x-b=2,content-type=text/html",
			[]string{":status", "403", "content-length", "4", "x-b", "2", "content-type", "text/html"}, "nope", "response_headers n=4 eos=0; response_body size=4 eos=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := hostsimtest.NewVM(t, guest(t), baseConfig)
			// resp-body-ops makes proxy_on_response_body log its calls.
			out := do(t, vm, hostsim.Request{Headers: hdrs(append(tt.req, "x-ops", "resp-body-ops:return:0;"+tt.ops)...)})
			// Status, gRPC status and details are the reply-with arguments.
			args := strings.SplitN(tt.ops[strings.Index(tt.ops, "reply-with:")+len("reply-with:"):], "|", 4)
			code, _ := strconv.Atoi(args[0])
			grpc, _ := strconv.Atoi(args[1])
			want := hostsim.LocalReply{Status: code, Headers: hdrs(tt.headers...), Details: args[2], GrpcStatus: grpc}
			if tt.body != "" {
				want.Body = []byte(tt.body)
			}
			if out.LocalReply == nil || !reflect.DeepEqual(*out.LocalReply, want) {
				t.Errorf("local reply:\n got %+v\nwant %+v", out.LocalReply, want)
			}
			assertLines(t, callbackLines(vm), strings.Split(tt.callList, "; "))
		})
	}
}

// The stream info's response code is the :status that leaves, set when the
// reply's headers reach the connection manager (ActiveStream::chargeStats): a
// gRPC reply logs 200, and the module's own response callback on the reply
// sees no code yet (FilterManager::sendLocalReply sets only the details).
func TestLocalReplyResponseCodeIsTheStatusThatLeaves(t *testing.T) {
	during := propCase{"prop:response/code", 1, ""}
	after := []propCase{{"prop:response/code", 0, i64(200)}, {"prop:response/code_details", 0, hexs("d")},
		{"prop:response/grpc_status", 0, i64(7)}}
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/p", "content-type", "application/grpc",
		"x-ops", "log-ops;reply-with:403|-1|d||x-resp-ops="+during.op, "x-log-ops", opsOf(after))})
	if out.LocalReply == nil {
		t.Fatalf("Do = %+v; want a local reply", out)
	}
	want := []string{"op=reply-with status=0", during.line()}
	assertLines(t, opLines(vm), append(want, linesOf(after)...))
}

// Envoy's own replies take the same forms: the fail-closed 503
// (Context::failStream: no body, gRPC status Unavailable), the 413 for a
// request body over the buffer limit, and the 500 sent directly for a
// response over it.
func TestHostLocalRepliesTakeTheGrpcAndHeadForms(t *testing.T) {
	grpcReq := hdrs(":method", "POST", ":path", "/pkg.Svc/Call", "content-type", "application/grpc")
	headReq := hdrs(":method", "HEAD", ":path", "/")

	t.Run("fail-closed 503, gRPC", func(t *testing.T) {
		vm := hostsimtest.NewVM(t, guest(t), baseConfig)
		out := do(t, vm, hostsim.Request{Headers: append(grpcReq, hostsim.Header{Name: "x-ops", Value: "trap"})})
		want := &hostsim.LocalReply{Status: 503, Headers: hdrs(":status", "200",
			"content-type", "application/grpc", "grpc-status", "14"), Details: hostsim.FailStreamDetails, GrpcStatus: 14}
		if !reflect.DeepEqual(out.LocalReply, want) {
			t.Errorf("local reply:\n got %+v\nwant %+v", out.LocalReply, want)
		}
	})

	t.Run("413, gRPC and HEAD", func(t *testing.T) {
		for _, tc := range []struct {
			req  hostsim.Headers
			want *hostsim.LocalReply
			line string
		}{{
			req: grpcReq,
			want: &hostsim.LocalReply{Status: 413, Headers: hdrs(":status", "200", "content-type", "application/grpc",
				"grpc-status", "2", "grpc-message", "Payload Too Large"),
				Details: hostsim.RequestPayloadTooLargeDetails, GrpcStatus: -1},
			line: "response_headers n=4 eos=1",
		}, {
			req: headReq,
			want: &hostsim.LocalReply{Status: 413, Headers: hdrs(":status", "413", "content-length", "17",
				"content-type", "text/plain"), Details: hostsim.RequestPayloadTooLargeDetails, GrpcStatus: -1},
			line: "response_headers n=3 eos=1",
		}} {
			cfg := baseConfig
			cfg.BufferLimit = 8
			vm := hostsimtest.NewVM(t, guest(t), cfg)
			s := vm.NewStream(context.Background())
			check(t)(s.RequestHeaders(append(tc.req, hostsim.Header{Name: "x-ops", Value: "resp-body-ops:return:0"}), false))
			check(t)(s.RequestBody([]byte("pause"), false))
			r := check(t)(s.RequestBody([]byte("1234"), true))
			if !reflect.DeepEqual(r.LocalReply, tc.want) || r.Continue {
				t.Errorf("result = %+v\nwant local reply %+v", r, tc.want)
			}
			assertLines(t, callbackLines(vm), []string{tc.line})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("direct 500, gRPC and HEAD", func(t *testing.T) {
		for _, tc := range []struct {
			req  hostsim.Headers
			want *hostsim.LocalReply
		}{{
			req: grpcReq,
			want: &hostsim.LocalReply{Status: 500, Headers: hdrs(":status", "200", "content-type", "application/grpc",
				"grpc-status", "2", "grpc-message", "Internal Server Error"),
				Details: hostsim.ResponsePayloadTooLargeDetails, GrpcStatus: -1},
		}, {
			req: headReq,
			want: &hostsim.LocalReply{Status: 500, Headers: hdrs(":status", "500", "content-length", "21",
				"content-type", "text/plain"), Details: hostsim.ResponsePayloadTooLargeDetails, GrpcStatus: -1},
		}} {
			cfg := baseConfig
			cfg.BufferLimit = 4
			cfg.AllowOnHeadersStopIteration = true
			vm := hostsimtest.NewVM(t, guest(t), cfg)
			s := vm.NewStream(context.Background())
			check(t)(s.RequestHeaders(append(tc.req, hostsim.Header{Name: "x-ops", Value: "resp-body-ops:return:1"}), true))
			check(t)(s.ResponseHeaders(hdrs(":status", "200", "x-resp-ops", "return:1"), false))
			r := check(t)(s.ResponseBody([]byte("hello"), false))
			if !reflect.DeepEqual(r.LocalReply, tc.want) || r.Continue || r.Reset {
				t.Errorf("result = %+v\nwant local reply %+v", r, tc.want)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// A module's reply from its response headers callback goes straight to the
// codec (sendDirectLocalReply), prepared the same way: trailers-only for a
// gRPC request, the module not called with it.
func TestDirectLocalReplyTakesTheGrpcForm(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	s := vm.NewStream(context.Background())
	check(t)(s.RequestHeaders(hdrs(":path", "/p", "content-type", "application/grpc"), true))
	r := check(t)(s.ResponseHeaders(hdrs(":status", "200", "x-resp-ops", "reply-with:403|-1|d|no|x-a=1,content-length=2"), false))
	want := &hostsim.LocalReply{Status: 403, Headers: hdrs(":status", "200", "x-a", "1",
		"content-type", "application/grpc", "grpc-status", "7", "grpc-message", "no"), Details: "d", GrpcStatus: -1}
	if !reflect.DeepEqual(r.LocalReply, want) || r.Continue {
		t.Errorf("result = %+v\nwant local reply %+v", r, want)
	}
	assertLines(t, callbackLines(vm), []string{"response_headers n=2 eos=0"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
