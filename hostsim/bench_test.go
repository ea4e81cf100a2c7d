package hostsim_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

func benchVM(b *testing.B) *hostsim.VM {
	cfg := baseConfig
	cfg.OnLog = func(hostsim.LogEntry) {}
	return hostsimtest.NewVM(b, guest(b), cfg)
}

// BenchmarkDo is a whole request through the scriptable guest: context
// creation, headers callback (one proxy_get_header_map_value), log, done, delete.
func BenchmarkDo(b *testing.B) {
	hostsimtest.BenchmarkDo(b, benchVM(b), hostsim.Request{Headers: hdrs(":path", "/", "host", "a.example")})
}

// BenchmarkDoRecording is BenchmarkDo with PluginConfig.RecordCalls: the cost
// of recording its 13 calls.
func BenchmarkDoRecording(b *testing.B) {
	cfg := baseConfig
	cfg.OnLog = func(hostsim.LogEntry) {}
	cfg.RecordCalls = true
	vm := hostsimtest.NewVM(b, guest(b), cfg)
	req := hostsim.Request{Headers: hdrs(":path", "/", "host", "a.example")}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		vm.ResetCalls()
		if _, err := vm.Do(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	if n := len(vm.Calls()); n != 13 {
		b.Fatalf("recorded %d calls per request, want 13", n)
	}
}

// BenchmarkDoPairs adds a proxy_get_header_map_pairs of ~1 KB of headers.
func BenchmarkDoPairs(b *testing.B) {
	h := hdrs(":method", "GET", ":path", "/v1/chat/completions", "host", "api.example.com",
		"authorization", "Bearer placeholder-0000000000000000000000000000000000000000",
		"content-type", "application/json", "user-agent", "bench/1.0", "x-ops", "pairs")
	for len(h) < 20 {
		h = append(h, hostsim.Header{Name: "x-filler-header", Value: "0123456789012345678901234567890123456789012345678901234567890123"})
	}
	hostsimtest.BenchmarkDo(b, benchVM(b), hostsim.Request{Headers: h})
}

var engines = []struct {
	name string
	opts []hostsim.Option
}{
	{"compiler", nil},
	{"interpreter", []hostsim.Option{hostsim.WithInterpreter()}},
}

// BenchmarkHostCall measures one host function: an op is one call the Go guest
// makes from proxy_on_request_headers, with what the guest needs around it
// (taking a returned buffer back from the host's malloc, say). One request
// makes all b.N calls, so the stream's own cost is spread over them. The
// request map has 5 entries (~110 bytes serialised).
func BenchmarkHostCall(b *testing.B) {
	fns := []struct{ name, status string }{
		{"proxy_log", "0"},
		{"proxy_get_header_map_value", "0"},
		{"proxy_get_header_map_value:notfound", "1"}, // the host's side alone: no malloc into the guest
		{"proxy_get_header_map_pairs", "0"},
		{"proxy_set_header_map_pairs", "0"},
		{"proxy_increment_metric", "0"},
		{"proxy_get_property", "0"},
	}
	for _, e := range engines {
		m := hostsimtest.Compile(b, hostsimtest.BuildGo(b, guestDir), e.opts...)
		for _, fn := range fns {
			b.Run(fn.name+"/"+e.name, func(b *testing.B) {
				var last string
				cfg := baseConfig
				cfg.OnLog = func(e hostsim.LogEntry) { last = e.Message }
				vm := hostsimtest.NewVM(b, m, cfg)
				n := strconv.Itoa(b.N)
				req := hostsim.Request{Headers: hdrs(":method", "GET", ":path", "/v1/chat/completions",
					"host", "api.example.com", "user-agent", "bench/1.0", "x-ops", "calls:"+fn.name+"="+n)}
				b.ReportAllocs()
				b.ResetTimer()
				s := vm.NewStream(context.Background())
				r, err := s.RequestHeaders(req.Headers, true)
				b.StopTimer()
				if want := "op=calls fn=" + fn.name + " n=" + n + " status=" + fn.status; err != nil || !r.Continue || last != want {
					b.Fatalf("err %v, result %+v, last log %q, want %q", err, r, last, want)
				}
				_ = s.Close()
			})
		}
	}
}

// BenchmarkStream is an empty stream: proxy_on_context_create,
// proxy_on_request_headers, proxy_on_done and proxy_on_delete (and the Go
// guest's proxy_on_log), none making a host call. "minimal" is a hand-assembled
// module whose callbacks return at once: hostsim's own cost per stream; "go" is
// the Go guest configured "quiet": plus the Go runtime's cost of each call in.
func BenchmarkStream(b *testing.B) {
	minimal := buildWasm(nil, []wasmExport{abi021, allocator,
		{name: "proxy_on_context_create", typ: wasmFunc{"ii", ""}},
		{name: "proxy_on_request_headers", typ: wasmFunc{"iii", "i"}, body: []byte{0x41, 0x00}}, // i32.const 0
		{name: "proxy_on_done", typ: wasmFunc{"i", "i"}, body: []byte{0x41, 0x01}},              // i32.const 1
		{name: "proxy_on_delete", typ: wasmFunc{"i", ""}},
	})
	req := hostsim.Request{Headers: hdrs(":method", "GET", ":path", "/v1/chat/completions",
		"host", "api.example.com", "user-agent", "bench/1.0")}
	for _, e := range engines {
		for _, module := range []string{"minimal", "go"} {
			b.Run(module+"/"+e.name, func(b *testing.B) {
				wasm, cfg := minimal, baseConfig
				if module == "go" {
					wasm = hostsimtest.BuildGo(b, guestDir)
					cfg.Configuration = []byte("quiet")
				}
				vm := hostsimtest.NewVM(b, hostsimtest.Compile(b, wasm, e.opts...), cfg)
				hostsimtest.BenchmarkDo(b, vm, req)
				if logs := vm.Logs(); len(logs) != 3 && module == "go" { // start-up only
					b.Fatalf("the quiet guest logged %d lines: %v", len(logs), logs)
				}
			})
		}
	}
}
