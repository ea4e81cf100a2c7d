package hostsim_test

import (
	"context"
	"reflect"
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
