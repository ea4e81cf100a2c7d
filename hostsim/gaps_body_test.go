package hostsim_test

import (
	"context"
	"reflect"
	"strconv"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// A request held by a headers StopAllIterationAndWatermark past the buffer
// limit: no 413 (that is for ...AndBuffer), but flow control: Envoy stops
// reading from downstream (filter_manager.cc requestDataTooLarge with
// decoder_filters_streaming_), reported as Result.Backpressure until the body
// leaves.
func TestWatermarkOverTheLimitAppliesBackpressure(t *testing.T) {
	cfg := baseConfig
	cfg.BufferLimit = 8
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	s := vm.NewStream(context.Background())
	ops := "on-tick:effective:" + strconv.Itoa(int(s.ID())) + ",continue;return:4"
	if r, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", ops), false); err != nil || r.Continue {
		t.Fatalf("RequestHeaders = %+v, %v; want held", r, err)
	}
	for _, step := range []struct {
		chunk        string
		backpressure bool
	}{{"12345", false}, {"678", false}, {"9", true}, {"0", true}} {
		r, err := s.RequestBody([]byte(step.chunk), false)
		want := hostsim.Result{Backpressure: step.backpressure}
		if err != nil || !reflect.DeepEqual(r, want) {
			t.Fatalf("RequestBody(%q) = %+v, %v; want %+v", step.chunk, r, err, want)
		}
	}
	vm.Tick() // continues: the held body goes through the module, and reading resumes
	assertResumes(t, s, []hostsim.Resume{{Result: hostsim.Result{Continue: true, Headers: hdrs(":path", "/", "x-ops", ops),
		Body: []byte("1234567890")}}})
	r, err := s.RequestBody([]byte("x"), true)
	if want := (hostsim.Result{Continue: true, Body: []byte("x")}); err != nil || !reflect.DeepEqual(r, want) {
		t.Fatalf("last RequestBody = %+v, %v; want %+v", r, err, want)
	}
	assertLines(t, resumeLines(vm), []string{
		"op=effective status=0",
		"op=continue status=0",
		"request_body size=10 eos=0 status=0 body=1234567890", // the stream had not ended
		"request_body size=1 eos=1 status=0 body=x",
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// The same for a response body callback returning StopIterationAndWatermark:
// past the limit Envoy read-disables the upstream stream instead of the 500
// or reset that ...AndBuffer gets; the body leaves when the filter continues.
func TestResponseBodyWatermarkOverTheLimit(t *testing.T) {
	cfg := baseConfig
	cfg.BufferLimit = 8
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	s := vm.NewStream(context.Background())
	if r, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", "resp-body-ops:return:2"), true); err != nil || !r.Continue {
		t.Fatalf("RequestHeaders = %+v, %v", r, err)
	}
	if r, err := s.ResponseHeaders(hdrs(":status", "200"), false); err != nil || !r.Continue {
		t.Fatalf("ResponseHeaders = %+v, %v", r, err)
	}
	for _, step := range []struct {
		chunk, held  string
		backpressure bool
	}{{"12345", "12345", false}, {"6789", "123456789", true}} {
		r, err := s.ResponseBody([]byte(step.chunk), false)
		want := hostsim.Result{Action: 2, Body: []byte(step.held), Backpressure: step.backpressure}
		if err != nil || !reflect.DeepEqual(r, want) {
			t.Fatalf("ResponseBody(%q) = %+v, %v; want %+v", step.chunk, r, err, want)
		}
	}
	r, err := s.ResponseTrailers(hdrs("x-ops", "return:0"))
	want := hostsim.Result{Continue: true, Body: []byte("123456789"), Trailers: hdrs("x-ops", "return:0")}
	if err != nil || !reflect.DeepEqual(r, want) {
		t.Fatalf("ResponseTrailers = %+v, %v; want %+v", r, err, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// After a body callback returns StopIterationAndBuffer, Envoy's getBuffer
// returns the filter manager's buffered body, mutable, from any callback on
// the stream until the next body callback (context.cc decodeData/encodeData
// keep buffering_*_body_): the trailers callback reads and changes it, and
// what it leaves is what leaves before the trailers.
func TestBufferedBodyInTheTrailersCallback(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	s := vm.NewStream(context.Background())
	if r, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", "resp-body-ops:return:1"), true); err != nil || !r.Continue {
		t.Fatalf("RequestHeaders = %+v, %v", r, err)
	}
	if r, err := s.ResponseHeaders(hdrs(":status", "200"), false); err != nil || !r.Continue {
		t.Fatalf("ResponseHeaders = %+v, %v", r, err)
	}
	if r, err := s.ResponseBody([]byte("hello"), false); err != nil || r.Continue {
		t.Fatalf("ResponseBody = %+v, %v; want buffered", r, err)
	}
	trailers := hdrs("x-ops", "body-get:1|0|100;body-set:1|0|5|HELLO;body-set:1|5|0|!;body-get:1|1|100")
	r, err := s.ResponseTrailers(trailers)
	if err != nil || !r.Continue || string(r.Body) != "HELLO!" {
		t.Fatalf("ResponseTrailers = %+v, %v; want the changed body %q to leave", r, err, "HELLO!")
	}
	assertLines(t, opLines(vm), []string{"op=body-get status=0 bytes=hello", "op=body-set status=0",
		"op=body-set status=0", "op=body-get status=0 bytes=ELLO!"})
}

// The same buffer from a tick that switches to the stream: readable and
// writable, and a continue then sends what the tick left. Once the body has
// left, the tick reads nothing and cannot write (hostsim; see DEVIATIONS).
func TestBufferedBodyFromATick(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	s := vm.NewStream(context.Background())
	id := strconv.Itoa(int(s.ID()))
	ops := "on-tick:effective:" + id + ",body-get:0|0|100,body-set:0|5|0| world,continue"
	if r, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", ops), false); err != nil || !r.Continue {
		t.Fatalf("RequestHeaders = %+v, %v", r, err)
	}
	if r, err := s.RequestBody([]byte("pause"), true); err != nil || r.Continue {
		t.Fatalf("RequestBody = %+v, %v; want buffered", r, err)
	}
	vm.Tick()
	assertResumes(t, s, []hostsim.Resume{{Result: hostsim.Result{Continue: true, Body: []byte("pause world")}}})
	vm.Tick()
	assertLines(t, opLines(vm), []string{
		"op=effective status=0", "op=body-get status=0 bytes=pause", "op=body-set status=0", "op=continue status=0",
		"op=effective status=0", "op=body-get status=0 bytes=",
		"op=body-set status=" + strconv.Itoa(int(hostsim.StatusBadArgument)), "op=continue status=0"})
}
