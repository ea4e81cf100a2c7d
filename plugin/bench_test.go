package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
	"github.com/secretgate/secretgate/policies"
)

// typicalRequest is an OpenAI-shaped request of 20 header lines, about
// 1.2 KB, with one placeholder in authorization unless placeholder is false.
func typicalRequest(placeholder bool) []hdr {
	auth := "Bearer " + phOpenAI
	if !placeholder {
		auth = "Bearer sk-live-not-a-placeholder-at-all-000"
	}
	return []hdr{
		{":method", "POST"}, {":scheme", "http"}, {":authority", "api.openai.com"}, {":path", "/v1/chat/completions"},
		{"authorization", auth},
		{"content-type", "application/json"},
		{"accept", "application/json, text/event-stream"},
		{"accept-encoding", "gzip, deflate, br"},
		{"user-agent", "OpenAI/Python 1.54.3 (linux; x86_64) httpx/0.27.2 CPython/3.12.7"},
		{"x-stainless-lang", "python"},
		{"x-stainless-package-version", "1.54.3"},
		{"x-stainless-os", "Linux"},
		{"x-stainless-arch", "x64"},
		{"x-stainless-runtime", "CPython"},
		{"x-stainless-runtime-version", "3.12.7"},
		{"x-stainless-retry-count", "0"},
		{"x-request-id", "6f1c2b9e-3a4d-4f8e-9b7a-2c5d8e1f0a3b"},
		{"openai-organization", "org-testnotreal00000000000000"},
		{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{"cookie", "__cf_bm=Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG8; _cfuvid=abcdefghijklmnopqrstuvwxyz0123456789-1700000000000-0.0.1.1-604800000"},
	}
}

// manySecretsConfig adds n-1 custom secrets to OPENAI_API_KEY, all with
// placeholders sharing the typical prefix, the scanner's hardest case.
func manySecretsConfig(n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"session":"bench","secrets":{"OPENAI_API_KEY":{"placeholder":%q,"value":%q}`, phOpenAI, valOpenAI)
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, `,"CUSTOM_%d":{"placeholder":"sgp_custom_%021d","value":"custom-test-value-%d","hosts":["api%d.example.com"]}`, i, i, i, i)
	}
	b.WriteString("}}")
	return []byte(b.String())
}

func toHostsim(hs []hdr) hostsim.Headers {
	out := make(hostsim.Headers, len(hs))
	for i, h := range hs {
		out[i] = hostsim.Header{Name: h.name, Value: h.value}
	}
	return out
}

func benchVM(b *testing.B, config []byte) *hostsim.VM {
	return hostsimtest.NewVM(b, module(b), hostsim.PluginConfig{Name: "secretgate", RootID: "secretgate", VMID: "secretgate", Configuration: config, MeasureGuest: true})
}

// benchWasm runs whole streams through vm and reports, beside ns/op (which
// includes hostsim's own Go work), guest-ns/op: the time spent in the
// module's code, which is what Envoy's host would also run.
func benchWasm(b *testing.B, vm *hostsim.VM, req hostsim.Request) {
	start := vm.GuestTime()
	hostsimtest.BenchmarkDo(b, vm, req)
	b.ReportMetric(float64(vm.GuestTime()-start)/float64(b.N), "guest-ns/op")
}

// BenchmarkRequestHeaders: one request's headers through the filter, natively
// (decode pairs, policies.Decide, encode pairs: what the guest computes) and
// through the compiled module in hostsim (a whole stream: create, request
// headers, log, done, delete, with every host call).
func BenchmarkRequestHeaders(b *testing.B) {
	for _, c := range []struct {
		name        string
		placeholder bool
	}{{"typical", true}, {"no-placeholder", false}} {
		req := typicalRequest(c.placeholder)
		b.Run("native/"+c.name, func(b *testing.B) { benchNative(b, manySecretsConfig(1), req) })
		b.Run("wasm/"+c.name, func(b *testing.B) {
			benchWasm(b, benchVM(b, manySecretsConfig(1)), hostsim.Request{Headers: toHostsim(req)})
		})
	}
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("native/secrets=%d", n), func(b *testing.B) { benchNative(b, manySecretsConfig(n), typicalRequest(true)) })
		b.Run(fmt.Sprintf("wasm/secrets=%d", n), func(b *testing.B) {
			benchWasm(b, benchVM(b, manySecretsConfig(n)), hostsim.Request{Headers: toHostsim(typicalRequest(true))})
		})
	}
}

func benchNative(b *testing.B, config []byte, req []hdr) {
	session, err := policies.ParseConfig(config)
	if err != nil {
		b.Fatal(err)
	}
	r := policies.NewRewriter(session)
	var in []policies.Header
	for _, h := range req {
		in = append(in, policies.Header{Name: []byte(h.name), Value: []byte(h.value)})
	}
	pairs := encodePairs(nil, in)
	var headers []policies.Header
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		headers, _ = decodePairs(headers[:0], pairs)
		if d := r.Decide(headers); d.Verdict == policies.Rewritten {
			out = encodePairs(out[:0], d.Headers)
		}
	}
}

// BenchmarkGuestMemory reports the guest's linear memory after a warm-up and
// after 100,000 more requests: growth means the steady state allocates or leaks.
func BenchmarkGuestMemory(b *testing.B) {
	vm := benchVM(b, manySecretsConfig(1))
	req := hostsim.Request{Headers: toHostsim(typicalRequest(true))}
	do := func(n int) {
		for range n {
			if _, err := vm.Do(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	}
	for b.Loop() {
		do(1000)
		warm := vm.MemorySize()
		do(100_000)
		b.ReportMetric(float64(warm), "warm-bytes")
		b.ReportMetric(float64(vm.MemorySize()), "after-100k-bytes")
	}
}
