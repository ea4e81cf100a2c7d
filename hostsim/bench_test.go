package hostsim_test

import (
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
