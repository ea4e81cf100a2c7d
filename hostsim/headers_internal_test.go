package hostsim

import (
	"bytes"
	"reflect"
	"testing"
)

func TestUnmarshalPairs(t *testing.T) {
	good := marshalPairs(nil, []Header{{"a", "1"}, {"", ""}, {"bb", "22"}})
	tests := []struct {
		name string
		in   []byte
		want []Header
	}{
		{"round trip", good, []Header{{"a", "1"}, {"", ""}, {"bb", "22"}}},
		{"empty list", []byte{0, 0, 0, 0}, []Header{}},
		{"short count", []byte{1, 0}, nil},
		{"trailing byte", append(append([]byte(nil), good...), 0), nil},
		{"missing NUL", append(append([]byte(nil), good[:len(good)-1]...), 'x'), nil},
		{"sizes past the end", []byte{1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 'a', 0, 0}, nil},
		{"over the count limit", []byte{1, 4, 0, 0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unmarshalPairs(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("unmarshalPairs(%x) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzUnmarshalPairs(f *testing.F) {
	f.Add(marshalPairs(nil, []Header{{":path", "/"}, {"x", ""}}))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		pairs := unmarshalPairs(b)
		if pairs == nil {
			return
		}
		// Whatever parses is exactly what marshalling it gives back.
		if again := marshalPairs(nil, pairs); !bytes.Equal(again, b) {
			t.Fatalf("marshal(unmarshal(%x)) = %x", b, again)
		}
	})
}

func TestHeaderMapSetPairsKeepsPseudoHeadersFirst(t *testing.T) {
	m := newHeaderMap(MapRequestHeaders)
	m.setPairs([]Header{{"x-a", "1"}, {":path", "/"}, {"Host", "h"}, {"x-a", "2"}, {"User-Agent", "u1"}, {"user-agent", "u2"}})
	want := []Header{{":path", "/"}, {":authority", "h"}, {"x-a", "1"}, {"x-a", "2"}, {"user-agent", "u1,u2"}}
	if !reflect.DeepEqual(m.entries, want) {
		t.Errorf("entries = %q, want %q", m.entries, want)
	}
}

// Envoy v1.40's default inline headers (envoy/http/header_map.h
// INLINE_REQ_*/INLINE_REQ_RESP_*/INLINE_RESP_* lists): each joins a second
// value with ","; any other name keeps two entries.
func TestInlineHeaderLists(t *testing.T) {
	reqResp := []string{"connection", "content-type", "x-envoy-decorator-operation", "keep-alive",
		"proxy-connection", "proxy-status", "x-request-id", "transfer-encoding", "upgrade", "via",
		"content-length", "x-envoy-attempt-count"}
	lists := []struct {
		t      MapType
		inline []string
	}{
		{MapRequestHeaders, append([]string{"x-client-trace-id", "x-envoy-downstream-service-cluster",
			"x-envoy-downstream-service-node", "x-envoy-external-address", "x-envoy-force-trace",
			"x-envoy-hedge-on-per-try-timeout", "x-envoy-internal", "x-envoy-ip-tags", "x-envoy-retry-on",
			"x-envoy-retry-grpc-on", "x-envoy-retriable-status-codes", "x-envoy-retriable-header-names",
			"x-envoy-is-timeout-retry", "x-envoy-original-path", "x-envoy-original-url",
			"x-envoy-upstream-alt-stat-name", "x-envoy-upstream-rq-timeout-alt-response", "expect",
			"x-forwarded-client-cert", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
			"grpc-timeout", ":authority", ":method", ":path", ":protocol", ":scheme", "te", "user-agent",
			"x-envoy-expected-rq-timeout-ms", "x-envoy-max-retries", "x-envoy-upstream-rq-timeout-ms",
			"x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-upstream-stream-duration-ms",
			"x-forwarded-port"}, reqResp...)},
		{MapResponseHeaders, append([]string{"date", "x-envoy-degraded", "x-envoy-immediate-health-check-fail",
			"x-envoy-ratelimited", "x-envoy-upstream-canary", "x-envoy-upstream-healthchecked-cluster",
			"location", "server", "x-envoy-upstream-service-time", ":status", "grpc-status", "grpc-message"},
			reqResp...)},
		{MapResponseTrailers, []string{"grpc-status", "grpc-message"}},
		{MapRequestTrailers, nil},
	}
	for _, l := range lists {
		m := newHeaderMap(l.t)
		if len(m.inline) != len(l.inline) {
			t.Errorf("map %d: %d inline headers, want %d", l.t, len(m.inline), len(l.inline))
		}
		for _, name := range append(l.inline, "x-not-inline") {
			m.setPairs(nil)
			m.add(name, "a")
			m.add(name, "b")
			want := []Header{{name, "a,b"}}
			if name == "x-not-inline" {
				want = []Header{{name, "a"}, {name, "b"}}
			}
			if !reflect.DeepEqual(m.entries, want) {
				t.Errorf("map %d: add %s twice = %q, want %q", l.t, name, m.entries, want)
			}
		}
	}
}
