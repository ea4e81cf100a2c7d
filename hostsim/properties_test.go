package hostsim_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// propCase is one property op of the test guest ("prop:request/path" reads
// request\x00path) and the status and bytes the guest must get.
type propCase struct {
	op     string
	status int
	hex    string
}

func (c propCase) line() string {
	switch name, arg, _ := strings.Cut(c.op, ":"); name {
	case "prop":
		return "op=prop path=" + arg + " status=" + strconv.Itoa(c.status) + " hex=" + c.hex
	default:
		return "op=" + name + " status=" + strconv.Itoa(c.status)
	}
}

func opsOf(cases []propCase) string {
	ops := make([]string, len(cases))
	for i, c := range cases {
		ops[i] = c.op
	}
	return strings.Join(ops, ";")
}

func linesOf(cases []propCase) []string {
	lines := make([]string, len(cases))
	for i, c := range cases {
		lines[i] = c.line()
	}
	return lines
}

func hexs(s string) string { return hex.EncodeToString([]byte(s)) }

func i64(n int64) string { return hex.EncodeToString(binary.LittleEndian.AppendUint64(nil, uint64(n))) }

// pairsHex is the pairs encoding: u32 count, u32 name and value sizes, then
// each name and value NUL-terminated.
func pairsHex(kv ...string) string {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(kv)/2))
	for _, s := range kv {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	}
	for _, s := range kv {
		b = append(append(b, s...), 0)
	}
	return hex.EncodeToString(b)
}

func byteSize(h hostsim.Headers) int64 {
	n := 0
	for _, f := range h {
		n += len(f.Name) + len(f.Value)
	}
	return int64(n)
}

var (
	propStart = time.Date(2026, 5, 4, 10, 20, 30, 123456789, time.UTC)
	propNode  = hostsim.Node{ID: "node-1", Cluster: "edge"}
	// node as protobuf: id (1), cluster (2), user_agent_name (6) = "envoy".
	propNodeHex = "0a066e6f64652d31" + "120465646765" + "3205656e766f79"
	propConn    = hostsim.Connection{ID: 42, Source: "10.1.2.3:5555", Destination: "[2001:db8::1]:8443",
		Protocol: "HTTP/2", ServerName: "api.example.com", TLSVersion: "TLSv1.3", MTLS: true}
	propRoute = &hostsim.Route{Name: "to-api", VirtualHost: "api-vhost", Cluster: "api-cluster",
		UpstreamHost: "10.0.0.9:8080"}
)

func propConfig(now *time.Time) hostsim.PluginConfig {
	cfg := baseConfig
	cfg.Node, cfg.Connection, cfg.Route = propNode, propConn, propRoute
	cfg.Now = func() time.Time { return *now }
	return cfg
}

func TestPropertiesInRequestHeaders(t *testing.T) {
	now := propStart
	vm := hostsimtest.NewVM(t, guest(t), propConfig(&now))
	cases := []propCase{
		{"prop:request/path", 0, hexs("/v1/chat?model=x#frag")},
		{"prop:request/url_path", 0, hexs("/v1/chat")},
		{"prop:request/query", 0, hexs("model=x")},
		{"prop:request/host", 0, hexs("api.example.com")},
		{"prop:request/scheme", 0, hexs("https")},
		{"prop:request/method", 0, hexs("POST")},
		{"prop:request/referer", 0, hexs("https://ref.example/")},
		{"prop:request/useragent", 0, hexs("ua/1")},
		{"prop:request/id", 0, hexs("req-1")},
		{"prop:request/protocol", 0, hexs("HTTP/2")},
		{"prop:request/time", 0, i64(propStart.UnixNano())},
		{"prop:request/size", 0, i64(12)}, // content-length
		{"prop:request/duration", 1, ""},  // the request is not complete
		{"prop:request/headers/x-a", 0, hexs("1,2")},
		{"prop:request/headers/X-A", 0, hexs("1,2")},
		{"prop:request/headers/x(a", 1, ""}, // not a valid header name
		{"prop:request/headers/x-missing", 1, ""},
		{"prop:request/nope", 1, ""},
		{"prop:request/path/more", 1, ""}, // a string has no fields
		{"prop:request", 3, ""},           // Envoy cannot list the request attributes
		{"prop:source/address", 0, hexs("10.1.2.3:5555")},
		{"prop:source/port", 0, i64(5555)},
		{"prop:destination/address", 0, hexs("[2001:db8::1]:8443")},
		{"prop:destination/port", 0, i64(8443)},
		{"prop:connection/id", 0, i64(42)},
		{"prop:connection_id", 0, i64(42)},
		{"prop:connection/mtls", 0, "01"},
		{"prop:connection/requested_server_name", 0, hexs("api.example.com")},
		{"prop:connection/tls_version", 0, hexs("TLSv1.3")},
		{"prop:upstream/address", 1, ""}, // no upstream host yet
		{"prop:response/code", 1, ""},
		{"prop:response/headers", 0, pairsHex()},
		{"prop:response/size", 0, i64(0)},
		{"prop:xds/node", 0, propNodeHex},
		{"prop:xds/node/id", 0, hexs("node-1")},
		{"prop:xds/node/cluster", 0, hexs("edge")},
		{"prop:xds/cluster_name", 0, hexs("api-cluster")},
		{"prop:xds/route_name", 0, hexs("to-api")},
		{"prop:xds/virtual_host_name", 0, hexs("api-vhost")},
		{"prop:xds/nope", 1, ""},
		{"prop:xds", 3, ""},
		{"prop:node", 1, ""}, // top-level node was removed in Envoy 1.33: xds.node
		{"prop:plugin_name", 0, hexs("plugin-a")},
		{"prop:plugin_root_id", 0, hexs("root-a")},
		{"prop:plugin_vm_id", 0, hexs("vm-a")},
		{"prop:metadata", 0, ""},
		{"prop:metadata/filter_metadata", 0, pairsHex()},
		{"prop:no_such_property", 1, ""},
		{"prop:", 3, ""}, // an empty path
		{"set-prop:my_key=v1", 0, ""},
		{"prop:my_key", 0, hexs("v1")},
		{"prop:filter_state/wasm.my_key", 0, hexs("v1")},
		{"set-prop:my_key=v2", 0, ""},
		{"prop:my_key", 0, hexs("v2")},
		{"set-prop:plugin_name=shadowed", 0, ""},
		{"prop:plugin_name", 0, hexs("plugin-a")},
		{"set-prop:a/b=x", 0, ""},
		{"prop:a", 1, ""}, // stored as "wasm.a\x00b"; lookups use the first segment
		{"prop-bad-path", 6, ""},
		{"prop-bad-return:plugin_name", 6, ""},
		{"set-prop-bad", 6, ""},
	}
	h := hdrs(":method", "POST", ":scheme", "https", ":path", "/v1/chat?model=x#frag",
		":authority", "api.example.com", "user-agent", "ua/1", "referer", "https://ref.example/",
		"x-request-id", "req-1", "x-a", "1", "x-a", "2", "content-length", "12", "x-ops", opsOf(cases))
	cases = append(cases,
		propCase{"prop:request/headers_bytes", 0, i64(byteSize(h))},
		propCase{"prop:request/total_size", 0, i64(byteSize(h))})
	h[len(h)-1].Value = opsOf(cases)
	cases[len(cases)-2].hex = i64(byteSize(h))
	cases[len(cases)-1].hex = i64(byteSize(h))
	do(t, vm, hostsim.Request{Headers: h})
	if got, want := opLines(vm), linesOf(cases); !reflect.DeepEqual(got, want) {
		t.Errorf("ops:\n got %q\nwant %q", got, want)
	}
}

func TestPropertyRequestHeadersMap(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	h := hdrs(":path", "/", "x-a", "1", "x-b", "2", "x-a", "3", "x-ops", "prop:request/headers")
	do(t, vm, hostsim.Request{Headers: h})
	want := []string{"op=prop path=request/headers status=0 hex=" +
		pairsHex(":path", "/", "x-a", "1,3", "x-b", "2", "x-ops", "prop:request/headers")}
	if got := opLines(vm); !reflect.DeepEqual(got, want) {
		t.Errorf("ops:\n got %q\nwant %q", got, want)
	}
}

// After the request headers continue, Envoy's filter no longer holds them, so
// request attributes from headers are NotFound until the access log phase;
// the response attributes appear with the response.
func TestPropertiesInResponseAndLogPhases(t *testing.T) {
	now := propStart
	vm := hostsimtest.NewVM(t, guest(t), propConfig(&now))
	respCases := []propCase{
		{"prop:response/code", 0, i64(201)},
		{"prop:response/code_details", 0, hexs("via_upstream")},
		{"prop:response/headers/x-up", 0, hexs("yes")},
		{"prop:request/path", 1, ""},
		{"prop:request/size", 0, i64(5)}, // no headers to read content-length from: bytes received
		{"prop:upstream/address", 0, hexs("10.0.0.9:8080")},
		{"prop:upstream/port", 0, i64(8080)},
	}
	respH := hdrs(":status", "201", "x-up", "yes", "x-resp-ops", opsOf(respCases))
	logCases := []propCase{
		{"prop:request/path", 0, hexs("/p")},
		{"prop:request/size", 0, i64(99)}, // the headers are back: content-length wins
		{"prop:request/duration", 0, i64(int64(1500 * time.Millisecond))},
		{"prop:response/code", 0, i64(201)},
		{"prop:response/size", 0, i64(3)},
		{"prop:response/headers/x-up", 0, hexs("yes")},
		{"prop:response/total_size", 0, i64(3 + byteSize(respH))},
	}
	s := vm.NewStream(context.Background())
	reqH := hdrs(":path", "/p", "content-length", "99", "x-ops", "log-ops", "x-log-ops", opsOf(logCases))
	if _, err := s.RequestHeaders(reqH, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequestBody([]byte("hello"), true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResponseHeaders(respH, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResponseBody([]byte("abc"), true); err != nil {
		t.Fatal(err)
	}
	now = propStart.Add(1500 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want := append(linesOf(respCases), linesOf(logCases)...)
	if got := opLines(vm); !reflect.DeepEqual(got, want) {
		t.Errorf("ops:\n got %q\nwant %q", got, want)
	}
}

func TestPropertiesOfALocalReply(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	logCases := []propCase{
		{"prop:response/code", 0, i64(403)},
		{"prop:response/code_details", 0, hexs("denied_by_test")},
		{"prop:response/size", 0, i64(2)}, // the body "no"
		{"prop:upstream/address", 1, ""},
	}
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "log-ops;reply:403=no", "x-log-ops", opsOf(logCases))})
	// The module sees its reply in proxy_on_response_headers, whose ops add a header.
	want := append([]string{"op=reply status=0", "op=add status=0"}, linesOf(logCases)...)
	if got := opLines(vm); !reflect.DeepEqual(got, want) {
		t.Errorf("ops:\n got %q\nwant %q", got, want)
	}
}

// The root context has no stream: only the plugin and node attributes exist,
// and proxy_set_property has nowhere to store.
func TestPropertiesInTheRootContext(t *testing.T) {
	cases := []propCase{
		{"prop:plugin_name", 0, hexs("plugin-a")},
		{"prop:xds/node/id", 0, hexs("node-1")},
		{"prop:xds/cluster_name", 1, ""},
		{"prop:request/path", 1, ""},
		{"prop:connection_id", 1, ""},
		{"set-prop:k=v", 1, ""},
		{"prop:k", 1, ""},
	}
	now := propStart
	cfg := propConfig(&now)
	cfg.Configuration = []byte("ops:" + opsOf(cases))
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	if got, want := opLines(vm), linesOf(cases); !reflect.DeepEqual(got, want) {
		t.Errorf("ops:\n got %q\nwant %q", got, want)
	}
}

func TestPropertyDefaultsAndOverrides(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	defaults := []propCase{
		{"prop:source/address", 0, hexs("127.0.0.1:40000")},
		{"prop:destination/port", 0, i64(10000)},
		{"prop:request/protocol", 0, hexs("HTTP/1.1")},
		{"prop:connection/mtls", 0, "00"},
		{"prop:connection/tls_version", 1, ""},
		{"prop:connection/requested_server_name", 0, ""},
		{"prop:xds/route_name", 1, ""},
		{"prop:xds/cluster_name", 1, ""},
		{"prop:xds/node", 0, "3205656e766f79"},
		{"prop:xds/node/id", 0, ""},
	}
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", opsOf(defaults))})
	overrides := []propCase{
		{"prop:source/address", 0, hexs("/tmp/uds")},
		{"prop:source/port", 1, ""}, // not an IP address
		{"prop:request/protocol", 1, ""},
		{"prop:xds/route_name", 0, ""},
		{"prop:xds/cluster_name", 0, hexs("c")},
	}
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", opsOf(overrides)),
		Connection: &hostsim.Connection{ID: 7, Source: "/tmp/uds"}, Route: &hostsim.Route{Cluster: "c"}})
	want := append(linesOf(defaults), linesOf(overrides)...)
	if got := opLines(vm); !reflect.DeepEqual(got, want) {
		t.Errorf("ops:\n got %q\nwant %q", got, want)
	}
}

func TestPropertyDiagnostics(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "prop:request;prop:nope/x;prop-bad-path")})
	diags := strings.Join(vm.Diagnostics(), "\n")
	for _, w := range []string{
		`proxy_on_request_headers: proxy_get_property: SerializationFailure: property "request" cannot be serialised whole`,
		`proxy_on_request_headers: proxy_get_property: NotFound: property "nope.x" is not set or not modelled by hostsim`,
		`proxy_on_request_headers: proxy_get_property: InvalidMemoryAccess: path is outside memory`,
	} {
		if !strings.Contains(diags, w) {
			t.Errorf("diagnostics lack %q:\n%s", w, diags)
		}
	}
}
