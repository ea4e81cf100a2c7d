package hostsim_test

import (
	"context"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// resumeLines are the guest's request body and trailer callback lines.
func resumeLines(vm *hostsim.VM) []string {
	var out []string
	for _, m := range messages(vm.Logs()) {
		if strings.HasPrefix(m, "request_body ") || strings.HasPrefix(m, "op=effective") || strings.HasPrefix(m, "op=continue") {
			out = append(out, m)
		}
	}
	return out
}

func assertResumes(t *testing.T, s *hostsim.Stream, want []hostsim.Resume) {
	t.Helper()
	if got := s.Resumes(); !reflect.DeepEqual(got, want) {
		t.Errorf("resumes:\n got %+v\nwant %+v", got, want)
	}
}

// A request held by a headers StopAllIterationAndBuffer, with its body and
// trailers, resumed by an HTTP-call response delivered after the call that
// paused it: the headers leave as the callback left them, then the module sees
// the held body once (filter_manager.cc commonContinue from the current
// filter), then the trailers.
func TestHTTPCallResponseResumesHeldRequestLater(t *testing.T) {
	var seen []seenRequest
	cfg := baseConfig
	cfg.Clusters = map[string]http.Handler{"authz": authzCluster(&seen)}
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	ctx := context.Background()
	s := vm.NewStream(ctx)
	ops := "on-tick:http-call:authz|0|GET|/check|authz.local;return:3"
	r, err := s.RequestHeaders(hdrs(":path", "/api", "x-ops", ops, "x-callback-ops", "add:x-authz=ok;continue"), false)
	if err != nil || r.Continue || r.Action != 3 {
		t.Fatalf("RequestHeaders = %+v, %v; want paused", r, err)
	}
	for _, chunk := range []string{"hello ", "world"} {
		if r, err := s.RequestBody([]byte(chunk), false); err != nil || r.Continue || r.Body != nil {
			t.Fatalf("RequestBody(%q) = %+v, %v; want held", chunk, r, err)
		}
	}
	if r, err := s.RequestTrailers(hdrs("x-t", "1")); err != nil || r.Continue {
		t.Fatalf("RequestTrailers = %+v, %v; want held", r, err)
	}
	assertResumes(t, s, nil)
	if lines := resumeLines(vm); lines != nil {
		t.Fatalf("module saw %q while the headers held the request", lines)
	}

	vm.Tick() // the tick makes the call; its response continues the stream
	assertResumes(t, s, []hostsim.Resume{{Result: hostsim.Result{Continue: true,
		Headers: hdrs(":path", "/api", "x-ops", ops, "x-callback-ops", "add:x-authz=ok;continue", "x-authz", "ok"),
		Body:    []byte("hello world"), Trailers: hdrs("x-t", "1")}}})
	assertLines(t, resumeLines(vm), []string{
		"op=effective status=0",
		"op=continue status=0",
		"request_body size=11 eos=0 status=0 body=hello world",
	})
	if len(seen) != 1 {
		t.Errorf("handler saw %d calls, want 1", len(seen))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// A tick that switches to a stream paused in its body callback and continues
// it releases the buffered body past the module (which is not called again).
func TestTickResumesPausedBody(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	s := vm.NewStream(context.Background())
	ops := "on-tick:effective:" + strconv.Itoa(int(s.ID())) + ",continue"
	if r, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", ops), false); err != nil || !r.Continue {
		t.Fatalf("RequestHeaders = %+v, %v; want continue", r, err)
	}
	if r, err := s.RequestBody([]byte("pause"), true); err != nil || r.Continue {
		t.Fatalf("RequestBody = %+v, %v; want paused", r, err)
	}
	vm.Tick()
	assertResumes(t, s, []hostsim.Resume{{Result: hostsim.Result{Continue: true, Body: []byte("pause")}}})
	assertLines(t, resumeLines(vm), []string{
		"request_body size=5 eos=1 status=0 body=pause",
		"op=effective status=0",
		"op=continue status=0",
	})
	vm.Tick() // a second continue finds nothing paused
	if n := len(s.Resumes()); n != 1 {
		t.Errorf("%d resumes after a second continue, want 1", n)
	}
}

// A continue aimed at a stream that has closed: proxy_set_effective_context
// refuses the id (cpp-host: BadArgument for an unknown context), and the
// continue then acts on the root context, which has no filter callbacks
// (context.cc continueStream: Ok, nothing happens). Another paused stream
// stays paused.
func TestContinueOnClosedStream(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	ctx := context.Background()
	closed := vm.NewStream(ctx)
	ops := "on-tick:effective:" + strconv.Itoa(int(closed.ID())) + ",continue;return:1"
	if r, err := closed.RequestHeaders(hdrs(":path", "/", "x-ops", ops), true); err != nil || r.Continue {
		t.Fatalf("RequestHeaders = %+v, %v; want paused", r, err)
	}
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	open := vm.NewStream(ctx)
	if r, err := open.RequestHeaders(hdrs(":path", "/", "x-ops", "return:1"), true); err != nil || r.Continue {
		t.Fatalf("RequestHeaders = %+v, %v; want paused", r, err)
	}
	vm.Tick()
	assertLines(t, resumeLines(vm), []string{
		"op=effective status=" + strconv.Itoa(int(hostsim.StatusBadArgument)),
		"op=continue status=0",
	})
	assertResumes(t, closed, nil)
	assertResumes(t, open, nil)
}

// The response side: headers stopped (StopIteration becomes
// StopAllIterationAndWatermark) hold the body; a tick continuing the response
// sends the headers, then the held body through the module.
func TestTickResumesHeldResponse(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	s := vm.NewStream(context.Background())
	ops := "on-tick:effective:" + strconv.Itoa(int(s.ID())) + ",continue-type:1"
	if r, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", ops), true); err != nil || !r.Continue {
		t.Fatalf("RequestHeaders = %+v, %v; want continue", r, err)
	}
	if r, err := s.ResponseHeaders(hdrs(":status", "200", "x-resp-ops", "return:1"), false); err != nil || r.Continue {
		t.Fatalf("ResponseHeaders = %+v, %v; want paused", r, err)
	}
	if r, err := s.ResponseBody([]byte("abc"), true); err != nil || r.Continue {
		t.Fatalf("ResponseBody = %+v, %v; want held", r, err)
	}
	vm.Tick()
	assertResumes(t, s, []hostsim.Resume{{Response: true, Result: hostsim.Result{Continue: true,
		Headers: hdrs(":status", "200", "x-resp-ops", "return:1"), Body: []byte("abc")}}})
}
