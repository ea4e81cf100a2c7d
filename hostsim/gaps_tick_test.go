package hostsim_test

import (
	"context"
	"reflect"
	"strconv"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// proxy_send_local_response sets cpp-host's stopNextIteration, and
// ~DeferAfterCallActions (src/context.cc) clears it after every callback. A
// tick that sends a local reply from its root context (Envoy: no decoder
// callbacks there, so nothing is sent) leaves no stop behind for the next
// request.
func TestTickLocalReplyDoesNotPauseTheNextRequest(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "on-tick:reply:403=tick")})
	vm.Tick()
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/next")})
	if out.Upstream == nil || out.LocalReply != nil || out.Paused {
		t.Fatalf("next request = %+v; want it forwarded", out)
	}
	assertLines(t, opLines(vm), []string{"op=reply status=0"})
}

// A tick that switches to a paused stream and answers it: the reply goes
// through the module's response callbacks right after the tick, the paused
// stream is answered (later calls report it), and an unrelated next stream
// is not paused.
func TestTickLocalReplyAnswersThePausedStreamOnly(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	ctx := context.Background()
	paused := vm.NewStream(ctx)
	ops := "on-tick:effective:" + strconv.Itoa(int(paused.ID())) + ",reply:403=tick;return:1"
	if r, err := paused.RequestHeaders(hdrs(":path", "/", "x-ops", ops), false); err != nil || r.Continue {
		t.Fatalf("RequestHeaders = %+v, %v; want paused", r, err)
	}
	vm.Tick()
	assertLines(t, callbackLines(vm), []string{"response_headers n=6 eos=0"})

	next := vm.NewStream(ctx)
	if r, err := next.RequestHeaders(hdrs(":path", "/next"), true); err != nil || !r.Continue {
		t.Fatalf("next RequestHeaders = %+v, %v; want continue", r, err)
	}
	want := &hostsim.LocalReply{Status: 403,
		Headers: hdrs(":status", "403", "x-reply", "yes", "x-reply", "again", "x-resp-ops", "add:x-seen=1",
			"content-length", "4", "content-type", "text/plain", "x-seen", "1"),
		Body: []byte("tick"), Details: "denied_by_test", GrpcStatus: -1}
	r, err := paused.RequestBody([]byte("late"), true)
	if err != nil || r.Continue || !reflect.DeepEqual(r.LocalReply, want) {
		t.Fatalf("RequestBody after the reply = %+v, %v; want the reply %+v", r, err, want)
	}
	assertResumes(t, paused, nil)
	assertLines(t, opLines(vm), []string{"op=effective status=0", "op=reply status=0", "op=add status=0"})
}
