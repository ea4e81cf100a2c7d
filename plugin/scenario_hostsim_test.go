package main

import (
	"context"
	"reflect"
	"strconv"
	"sync"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
	"github.com/secretgate/secretgate/plugin/plugintest"
)

// TestScenariosWasm runs the scenario table through the compiled module in
// hostsim, under wazero's compiler and its interpreter.
func TestScenariosWasm(t *testing.T) {
	for _, rt := range []struct {
		name string
		opts []hostsim.Option
	}{{"compiler", nil}, {"interpreter", []hostsim.Option{hostsim.WithInterpreter()}}} {
		t.Run(rt.name, func(t *testing.T) {
			runScenarios(t, wasmRunner(module(t, rt.opts...)), false)
		})
	}
}

var (
	modulesMu sync.Mutex
	modules   = map[int]*hostsim.Module{}
)

// module compiles the plugin once per option set for the whole test binary.
func module(t testing.TB, opts ...hostsim.Option) *hostsim.Module {
	t.Helper()
	modulesMu.Lock()
	defer modulesMu.Unlock()
	if m, ok := modules[len(opts)]; ok {
		return m
	}
	m, err := hostsim.Compile(context.Background(), plugintest.Wasm(t), opts...)
	if err != nil {
		t.Fatalf("compiling the plugin: %v", err)
	}
	modules[len(opts)] = m
	return m
}

// wasmRunner sends each request through a fresh VM configured as Envoy would.
func wasmRunner(m *hostsim.Module) runner {
	return func(t *testing.T, config []byte, request []hdr) outcome {
		vm := hostsimtest.NewVM(t, m, hostsim.PluginConfig{
			Name: "secretgate", RootID: "secretgate", VMID: "secretgate",
			Configuration: config, LogLevel: hostsim.LogDebug,
		})
		// hostsim keeps metrics per Module, as Envoy's stats outlive a VM
		// and every VM of the module adds into them: count this request only.
		before := map[string]int64{}
		for _, m := range vm.Metrics() {
			before[m.Name] = int64(m.Value)
		}
		var hs hostsim.Headers
		for _, h := range request {
			hs = append(hs, hostsim.Header{Name: h.name, Value: h.value})
		}
		res, err := vm.Do(context.Background(), hostsim.Request{Headers: hs})
		if err != nil {
			t.Fatalf("Do: %v", err)
		}
		if d := vm.Diagnostics(); len(d) > 0 {
			t.Errorf("the module misused the host: %q", d)
		}
		out := outcome{logs: messages(vm)}
		capture(out.logs)
		out.metrics = map[string]int64{}
		for _, m := range vm.Metrics() {
			out.metrics[m.Name] = int64(m.Value) - before[m.Name]
			capture([]string{m.Name})
		}
		if res.Paused {
			t.Fatal("the module paused the request without answering it")
		}
		if r := res.LocalReply; r != nil {
			out.status, out.body = r.Status, string(r.Body)
			// Envoy adds :status and content-length; keep the module's own headers.
			status, _ := r.Headers.Get(":status")
			length, _ := r.Headers.Get("content-length")
			if status != strconv.Itoa(r.Status) || length != strconv.Itoa(len(r.Body)) {
				t.Errorf("local reply headers %q disagree with status %d and body length %d", r.Headers, r.Status, len(r.Body))
			}
			for _, h := range r.Headers {
				if h.Name != ":status" && h.Name != "content-length" {
					out.reply = append(out.reply, hdr{h.Name, h.Value})
				}
			}
			return out
		}
		out.forwarded = []hdr{}
		for _, h := range *res.Upstream {
			out.forwarded = append(out.forwarded, hdr{h.Name, h.Value})
		}
		return out
	}
}

// TestHostHeaderFoldedByEnvoy: Envoy's header map treats host as :authority,
// so a request carrying both reaches the filter with one :authority holding
// both values, comma-joined. That is malformed, so nothing is injected even
// when both name the same host: fail closed.
func TestHostHeaderFoldedByEnvoy(t *testing.T) {
	run := wasmRunner(module(t))
	for _, host := range []string{"evil.example", "API.OpenAI.com."} {
		request := get("api.openai.com", "/v1/models", hdr{"host", host}, hdr{"authorization", "Bearer " + phOpenAI})
		got := run(t, fixtureConfig("passthrough", ""), request)
		want := get("api.openai.com,"+host, "/v1/models", hdr{"authorization", "Bearer " + phOpenAI})
		if !reflect.DeepEqual(got.forwarded, want) {
			t.Errorf("host %s: forwarded\n got %q\nwant %q", host, got.forwarded, want)
		}
		if got.metrics["secretgate.violation.OPENAI_API_KEY"] != 1 || got.metrics["secretgate.injected.OPENAI_API_KEY"] != 0 {
			t.Errorf("host %s: metrics %v", host, got.metrics)
		}
	}
}

// TestDenyReachesGrpcAndHeadClientsInEnvoysForms: the module's 403 is
// reshaped by Envoy for gRPC and HEAD clients, and neither form may carry a
// value. The twin, the same gRPC request to an allowed host, is injected.
func TestDenyReachesGrpcAndHeadClientsInEnvoysForms(t *testing.T) {
	deny := `{"error":"secret_not_allowed","secrets":["OPENAI_API_KEY"],"host":"evil.example"}`
	grpc := []hdr{{"content-type", "application/grpc"}, {"authorization", "Bearer " + phOpenAI}}
	for _, c := range []struct {
		name    string
		request []hdr
		headers hostsim.Headers
		body    []byte
	}{
		{"grpc", req("POST", "evil.example", "/helloworld.Greeter/SayHello", grpc...), hostsim.Headers{
			{Name: ":status", Value: "200"},
			{Name: "content-type", Value: "application/grpc"},
			{Name: "grpc-status", Value: "7"},
			{Name: "grpc-message", Value: deny},
		}, nil},
		{"head", req("HEAD", "evil.example", "/v1/models", hdr{"authorization", "Bearer " + phOpenAI}), hostsim.Headers{
			{Name: ":status", Value: "403"},
			{Name: "content-type", Value: "application/json"},
			{Name: "content-length", Value: strconv.Itoa(len(deny))},
		}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := doWasm(t, fixtureConfig("deny", ""), c.request)
			r := res.LocalReply
			if r == nil || r.Status != 403 || !reflect.DeepEqual(r.Headers, c.headers) || r.Body != nil {
				t.Fatalf("reply = %+v; want 403 in the form %q with no body", r, c.headers)
			}
		})
	}
	res := doWasm(t, fixtureConfig("deny", ""), req("POST", "api.openai.com", "/helloworld.Greeter/SayHello", grpc...))
	if res.LocalReply != nil || res.Upstream == nil {
		t.Fatalf("allowed host: reply %+v, want the request forwarded", res.LocalReply)
	}
	if got, _ := res.Upstream.Get("authorization"); got != "Bearer "+valOpenAI {
		t.Errorf("allowed host: authorization %q, want the value injected", got)
	}
}

func doWasm(t *testing.T, config []byte, request []hdr) hostsim.Outcome {
	t.Helper()
	vm := hostsimtest.NewVM(t, module(t), hostsim.PluginConfig{Name: "secretgate", RootID: "secretgate", VMID: "secretgate", Configuration: config})
	var hs hostsim.Headers
	for _, h := range request {
		hs = append(hs, hostsim.Header{Name: h.name, Value: h.value})
	}
	res, err := vm.Do(context.Background(), hostsim.Request{Headers: hs})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	capture(messages(vm))
	return res
}
