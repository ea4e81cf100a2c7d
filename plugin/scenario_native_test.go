package main

import (
	"testing"

	"github.com/secretgate/secretgate/policies"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

func TestScenariosNative(t *testing.T) { runScenarios(t, runNative, true) }

// runNative runs one request through the filter against a fake host.
func runNative(t *testing.T, config []byte, request []hdr) outcome {
	host := &fakeHost{config: config, level: logDebug}
	for _, h := range request {
		host.headers = append(host.headers, policies.Header{Name: []byte(h.name), Value: []byte(h.value)})
	}
	d, ok := nativeVM(t, host)
	if !ok {
		t.Fatalf("configure failed: %v", host.logs)
	}
	action := request2(d, host)
	var out outcome
	for _, l := range host.logs {
		out.logs = append(out.logs, l.msg)
	}
	capture(out.logs)
	out.metrics = map[string]int64{}
	for _, m := range host.metrics {
		out.metrics[m.name] = m.value
		capture([]string{m.name})
	}
	if host.reply != nil {
		if action != types.ActionPause {
			t.Errorf("local reply sent, then the callback returned %d, want Pause", action)
		}
		out.status, out.body, out.reply = int(host.reply.status), string(host.reply.body), toHdrs(host.reply.headers)
		return out
	}
	if action != types.ActionContinue {
		t.Fatalf("action %d without a local reply", action)
	}
	out.forwarded = toHdrs(host.headers)
	return out
}

func request2(d *dispatcher, _ *fakeHost) types.Action { return request(d, 7) }

func toHdrs(hs []policies.Header) []hdr {
	out := []hdr{}
	for _, h := range hs {
		out = append(out, hdr{string(h.Name), string(h.Value)})
	}
	return out
}
