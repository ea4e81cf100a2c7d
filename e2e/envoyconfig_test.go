package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	reqwithoutqueryv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/formatter/req_without_query/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
	"github.com/secretgate/secretgate/plugin/plugintest"
	"github.com/secretgate/secretgate/policies"
)

// TestEnvoyConfigsParseAndValidate loads envoy.yaml and every e2e Envoy
// config, the rejected ones included, into Envoy's Bootstrap proto (v1.40.0)
// with every typed_config resolved, and checks the protoc-gen-validate rules
// Envoy enforces at load.
func TestEnvoyConfigsParseAndValidate(t *testing.T) {
	served, rejected := envoyCfgFiles(t)
	for _, file := range append(served, rejected...) {
		t.Run(file, func(t *testing.T) {
			if _, err := envoyCfgParse(envoyCfgRead(t, file)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestEnvoyConfigParseRefusesMistakes checks that the parse above can fail:
// a misspelt @type, an unknown field and a value its validation rules forbid.
func TestEnvoyConfigParseRefusesMistakes(t *testing.T) {
	data := envoyCfgRead(t, "envoy.yaml")
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"typo in @type", "envoy.extensions.filters.http.router.v3.Router", "envoy.extensions.filters.http.router.v3.Routr",
			`unable to resolve "type.googleapis.com/envoy.extensions.filters.http.router.v3.Routr"`},
		{"unknown field", "stat_prefix: egress", "stat_prefix: egress\n          stat_prefx: typo", `unknown field "stat_prefx"`},
		{"validation rule inside an Any", "stat_prefix: passthrough", "stat_prefix: \"\"", "StatPrefix: value length must be at least 1 runes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := envoyCfgParse(envoyCfgMutate(t, data, tc.old, tc.new))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestEnvoyConfigsPolicy checks what keeps values safe in each config: see
// envoyCfgPolicy.
func TestEnvoyConfigsPolicy(t *testing.T) {
	served, _ := envoyCfgFiles(t)
	for _, file := range served {
		t.Run(file, func(t *testing.T) {
			b, err := envoyCfgParse(envoyCfgRead(t, file))
			if err != nil {
				t.Fatal(err)
			}
			problems, plugins := envoyCfgPolicy(b)
			for _, p := range problems {
				// The e2e Envoy runs in a container: its admin must bind the
				// container's interface for compose to publish it, which the
				// compose checks hold to the host's loopback.
				if strings.HasPrefix(file, "e2e/") && strings.HasPrefix(p, "admin: ") {
					t.Logf("allowed in a container: %s", p)
					continue
				}
				t.Error(p)
			}
			if len(plugins) == 0 {
				t.Error("no secretgate wasm filter")
			}
		})
	}
}

// TestEnvoyConfigPolicyCatchesRegressions mutates envoy.yaml in the ways the
// policy exists to catch and checks that each is reported.
func TestEnvoyConfigPolicyCatchesRegressions(t *testing.T) {
	data := envoyCfgRead(t, "envoy.yaml")
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"admin off loopback", "address: 127.0.0.1, port_value: 9901", "address: 0.0.0.0, port_value: 9901",
			`admin: listens on "0.0.0.0", not on loopback`},
		{"fail open", "failure_policy: FAIL_CLOSED", "failure_policy: FAIL_OPEN",
			"wasm filter: failure_policy FAIL_OPEN: want FAIL_CLOSED"},
		{"legacy fail_open", "failure_policy: FAIL_CLOSED", "fail_open: true",
			"wasm filter: fail_open: want fail closed"},
		{"a filter between the plugin and the router",
			"http_filters: [*dynamic_forward_proxy_filter, *secretgate_wasm, *router]",
			"http_filters: [*secretgate_wasm, *dynamic_forward_proxy_filter, *router]",
			"http_filters: [envoy.filters.http.dynamic_forward_proxy] between the wasm filter and the router: they could rewrite the host after the plugin checked it"},
		{"no plugin", "http_filters: [*dynamic_forward_proxy_filter, *secretgate_wasm, *router]",
			"http_filters: [*dynamic_forward_proxy_filter, *router]", "no secretgate wasm filter"},
		{"access log with the query", "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%", "%REQ(:PATH)%",
			`command %REQ(:PATH)% prints request header ":PATH", which can hold an injected value`},
		{"access log with a header", `\"%UPSTREAM_HOST%\"\n"`, `\"%UPSTREAM_HOST%\" %REQ(AUTHORIZATION)%\n"`,
			`command %REQ(AUTHORIZATION)% prints request header "AUTHORIZATION", which can hold an injected value`},
		{"internal redirects", "route: {cluster: dynamic_forward_proxy, timeout: 0s}",
			"route: {cluster: dynamic_forward_proxy, timeout: 0s, internal_redirect_policy: {}}",
			"internal_redirect_policy: a redirect would be followed with injected headers"},
		{"host rewrite", "route: {cluster: dynamic_forward_proxy, timeout: 0s}",
			"route: {cluster: dynamic_forward_proxy, timeout: 0s, host_rewrite_literal: elsewhere.example}",
			"host_rewrite_literal: the router would send the request to another host than the plugin checked"},
		{"CONNECT upgrade", "stat_prefix: egress\n", "stat_prefix: egress\n          upgrade_configs: [{upgrade_type: CONNECT}]\n",
			"upgrade_configs: CONNECT is allowed: tunnels would pass the plugin uninspected"},
		{"interception of a host no secret allows", "server_names: [api.example.com]", "server_names: [api.example.org]",
			`server name "api.example.org" is no allowed host of any secret`},
		{"route timeout", "route: {cluster: dynamic_forward_proxy, timeout: 0s}", "route: {cluster: dynamic_forward_proxy}",
			"timeout: want 0s: Envoy's default 15 s (or any route timeout) cuts off long completions and event streams"},
		{"x-envoy headers", "suppress_envoy_headers: true", "suppress_envoy_headers: false",
			"router: suppress_envoy_headers is off: x-envoy-* headers would describe this proxy to third-party APIs"},
		{"no SAN check", "auto_san_validation: true", "auto_san_validation: false",
			"cluster dynamic_forward_proxy: the upstream certificate's SAN is not checked against the host"},
		{"no upstream CA", "trusted_ca: {filename: /etc/ssl/certs/ca-certificates.crt}", "{}",
			"cluster dynamic_forward_proxy: no trusted CA for the upstream certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := envoyCfgParse(envoyCfgMutate(t, data, tc.old, tc.new))
			if err != nil {
				t.Fatal(err)
			}
			problems, _ := envoyCfgPolicy(b)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasSuffix(p, tc.want) }) {
				t.Fatalf("problems %q: none ends with %q", problems, tc.want)
			}
		})
	}
}

// envoyCfgPlugin is one secretgate wasm filter found in a config.
type envoyCfgPlugin struct {
	path    string
	config  *wasmv3.PluginConfig
	session *policies.Session
}

// envoyCfgPolicy returns what in b could let a real value reach the wrong
// host, a log or the sandbox, and the secretgate plugins it holds:
//   - the admin interface (which dumps the plugin configuration) off loopback;
//   - an HTTP connection manager without exactly one enabled wasm filter, or
//     with any filter but the router after it (a filter there could rewrite
//     the host after the plugin checked it); the wasm filter failing open or
//     reloading, or carrying a configuration policies refuses;
//   - routes the plugin cannot vouch for: RDS, internal redirects, host
//     rewrites, host headers added, per-filter overrides (which could also
//     disable the plugin), clusters picked from a header, CONNECT allowed;
//   - a routed cluster without upstream TLS that checks a trusted chain, SNI
//     and SAN against the requested host;
//   - an access log that could print the query, a request header other than
//     the method, scheme or authority, or Envoy's default format;
//   - on a TLS-inspecting listener: a chain running the plugin without SNI
//     names, or for a name that is no allowed host of the plugin's secrets, or
//     without a certificate to terminate TLS.
//
// It also reports two settings that break the product rather than leak: a
// route timeout (Envoy's default 15 s cuts model API responses short), and a
// router that sends x-envoy-* headers to third-party APIs.
func envoyCfgPolicy(b *bootstrapv3.Bootstrap) (problems []string, plugins []envoyCfgPlugin) {
	report := func(path, format string, args ...any) {
		problems = append(problems, path+": "+fmt.Sprintf(format, args...))
	}
	if sa := b.GetAdmin().GetAddress().GetSocketAddress(); sa != nil {
		if a, err := netip.ParseAddr(sa.GetAddress()); err != nil || !a.IsLoopback() {
			report("admin", "listens on %q, not on loopback", sa.GetAddress())
		}
	} else if b.GetAdmin().GetAddress() != nil {
		report("admin", "listens on a pipe or internal address: want a loopback socket address")
	}

	routed := map[string]string{} // cluster name -> where it is routed from
	for i, l := range b.GetStaticResources().GetListeners() {
		lpath := fmt.Sprintf("listener %s", l.GetName())
		if l.GetName() == "" {
			lpath = fmt.Sprintf("listeners[%d]", i)
		}
		inspectsTLS := false
		for _, lf := range l.GetListenerFilters() {
			if _, ok := envoyCfgAny(lf.GetTypedConfig()).(*tlsinspectorv3.TlsInspector); ok {
				inspectsTLS = true
			}
		}
		chains := l.GetFilterChains()
		if l.GetDefaultFilterChain() != nil {
			chains = append(slices.Clip(chains), l.GetDefaultFilterChain())
		}
		for j, fc := range chains {
			cpath := fmt.Sprintf("%s chain %s", lpath, fc.GetName())
			if fc.GetName() == "" {
				cpath = fmt.Sprintf("%s filter_chains[%d]", lpath, j)
			}
			for _, f := range fc.GetFilters() {
				hcm, ok := envoyCfgAny(f.GetTypedConfig()).(*hcmv3.HttpConnectionManager)
				if !ok {
					continue
				}
				plugin, found := envoyCfgCheckHCM(cpath, hcm, routed, report)
				if found {
					plugins = append(plugins, plugin)
				}
				if inspectsTLS {
					envoyCfgCheckInterception(cpath, fc, plugin.session, report)
				}
			}
		}
	}
	for _, c := range b.GetStaticResources().GetClusters() {
		if _, ok := routed[c.GetName()]; ok {
			envoyCfgCheckUpstreamTLS(c, report)
			delete(routed, c.GetName())
		}
	}
	for name, from := range routed {
		report(from, "routes to cluster %q, which is no static cluster", name)
	}

	_ = envoyCfgWalk(b, func(path string, m proto.Message, _ bool) error {
		if al, ok := m.(*accesslogv3.AccessLog); ok {
			envoyCfgCheckAccessLog(path, al, report)
		}
		return nil
	})
	return problems, plugins
}

// envoyCfgAny returns the message a holds; envoyCfgParse has resolved every
// Any, so nil here means a was nil.
func envoyCfgAny(a *anypb.Any) proto.Message {
	if a == nil {
		return nil
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil
	}
	return m
}

func envoyCfgCheckHCM(path string, hcm *hcmv3.HttpConnectionManager, routed map[string]string, report func(string, string, ...any)) (envoyCfgPlugin, bool) {
	var plugin envoyCfgPlugin
	found := 0
	wasmAt := -1
	filters := hcm.GetHttpFilters()
	for i, f := range filters {
		w, ok := envoyCfgAny(f.GetTypedConfig()).(*wasmfilterv3.Wasm)
		if !ok {
			continue
		}
		found++
		wasmAt = i
		fpath := path + " wasm filter"
		if f.GetDisabled() || f.GetIsOptional() {
			report(fpath, "disabled or optional: want it on every request")
		}
		plugin = envoyCfgCheckWasm(fpath, w.GetConfig(), report)
	}
	switch {
	case found == 0:
		report(path, "no secretgate wasm filter")
		return plugin, false
	case found > 1:
		report(path, "%d wasm filters: want one", found)
	}
	var after []string
	for _, f := range filters[wasmAt+1:] {
		after = append(after, f.GetName())
	}
	if len(after) == 0 {
		report(path, "no router after the wasm filter")
	} else if r, ok := envoyCfgAny(filters[len(filters)-1].GetTypedConfig()).(*routerv3.Router); !ok {
		report(path, "the last HTTP filter is not the router")
	} else if !r.GetSuppressEnvoyHeaders() {
		report(path, "router: suppress_envoy_headers is off: x-envoy-* headers would describe this proxy to third-party APIs")
	} else if len(after) > 1 {
		report(path, "http_filters: [%s] between the wasm filter and the router: they could rewrite the host after the plugin checked it",
			strings.Join(after[:len(after)-1], ", "))
	}
	for _, u := range hcm.GetUpgradeConfigs() {
		if strings.EqualFold(u.GetUpgradeType(), "CONNECT") && (u.GetEnabled() == nil || u.GetEnabled().GetValue()) {
			report(path, "upgrade_configs: CONNECT is allowed: tunnels would pass the plugin uninspected")
		}
	}
	rc := hcm.GetRouteConfig()
	if rc == nil {
		report(path, "routes come from RDS or scoped routes: want them inline, where this check can see them")
		return plugin, found > 0
	}
	envoyCfgCheckRoutes(path+" route_config "+rc.GetName(), rc, routed, report)
	return plugin, found > 0
}

func envoyCfgCheckWasm(path string, pc *wasmv3.PluginConfig, report func(string, string, ...any)) envoyCfgPlugin {
	plugin := envoyCfgPlugin{path: path, config: pc}
	if pc.GetFailOpen() {
		report(path, "fail_open: want fail closed")
	}
	if p := pc.GetFailurePolicy(); p != wasmv3.FailurePolicy_UNSPECIFIED && p != wasmv3.FailurePolicy_FAIL_CLOSED {
		report(path, "failure_policy %s: want FAIL_CLOSED", p)
	}
	raw, ok := envoyCfgBytes(pc.GetConfiguration())
	if !ok {
		report(path, "configuration: want a google.protobuf.StringValue holding the plugin's JSON")
		return plugin
	}
	s, err := policies.ParseConfig(raw)
	if err != nil {
		report(path, "configuration: %v", err)
		return plugin
	}
	plugin.session = s
	return plugin
}

// envoyCfgBytes returns what Envoy hands the module for a configuration Any:
// the value of a StringValue or BytesValue as is, a Struct as JSON.
func envoyCfgBytes(a *anypb.Any) ([]byte, bool) {
	switch m := envoyCfgAny(a).(type) {
	case nil:
		return nil, a == nil
	case *wrapperspb.StringValue:
		return []byte(m.GetValue()), true
	case *wrapperspb.BytesValue:
		return m.GetValue(), true
	case *structpb.Struct:
		js, err := m.MarshalJSON()
		return js, err == nil
	}
	return nil, false
}

func envoyCfgCheckRoutes(path string, rc *routev3.RouteConfiguration, routed map[string]string, report func(string, string, ...any)) {
	checkHeaders := func(path string, adds []*corev3.HeaderValueOption) {
		for _, h := range adds {
			if name := strings.ToLower(h.GetHeader().GetKey()); name == "host" || name == ":authority" {
				report(path, "request_headers_to_add sets %s after the plugin checked it", name)
			}
		}
	}
	if len(rc.GetTypedPerFilterConfig()) > 0 {
		report(path, "typed_per_filter_config: per-route overrides could rewrite the host or disable the plugin")
	}
	checkHeaders(path, rc.GetRequestHeadersToAdd())
	for _, vh := range rc.GetVirtualHosts() {
		vpath := path + " virtual_host " + vh.GetName()
		if len(vh.GetTypedPerFilterConfig()) > 0 {
			report(vpath, "typed_per_filter_config: per-route overrides could rewrite the host or disable the plugin")
		}
		checkHeaders(vpath, vh.GetRequestHeadersToAdd())
		for i, r := range vh.GetRoutes() {
			rpath := fmt.Sprintf("%s routes[%d]", vpath, i)
			if len(r.GetTypedPerFilterConfig()) > 0 {
				report(rpath, "typed_per_filter_config: per-route overrides could rewrite the host or disable the plugin")
			}
			checkHeaders(rpath, r.GetRequestHeadersToAdd())
			a := r.GetRoute()
			if a == nil {
				continue // a redirect or a direct response sends nothing upstream
			}
			if a.GetInternalRedirectPolicy() != nil {
				report(rpath, "internal_redirect_policy: a redirect would be followed with injected headers")
			}
			//lint:ignore SA1019 the deprecated field still makes Envoy follow redirects.
			if a.GetInternalRedirectAction() != routev3.RouteAction_PASS_THROUGH_INTERNAL_REDIRECT {
				report(rpath, "internal_redirect_action: a redirect would be followed with injected headers")
			}
			switch a.GetHostRewriteSpecifier().(type) {
			case nil:
			case *routev3.RouteAction_HostRewriteLiteral:
				report(rpath, "host_rewrite_literal: the router would send the request to another host than the plugin checked")
			default:
				report(rpath, "host rewrite: the router would send the request to another host than the plugin checked")
			}
			for _, u := range a.GetUpgradeConfigs() {
				if strings.EqualFold(u.GetUpgradeType(), "CONNECT") && (u.GetEnabled() == nil || u.GetEnabled().GetValue()) {
					report(rpath, "upgrade_configs: CONNECT is allowed: tunnels would pass the plugin uninspected")
				}
			}
			if t := a.GetTimeout(); t == nil || t.AsDuration() != 0 {
				report(rpath, "timeout: want 0s: Envoy's default 15 s (or any route timeout) cuts off long completions and event streams")
			}
			switch c := a.GetClusterSpecifier().(type) {
			case *routev3.RouteAction_Cluster:
				routed[c.Cluster] = rpath
			case *routev3.RouteAction_WeightedClusters:
				for _, wc := range c.WeightedClusters.GetClusters() {
					routed[wc.GetName()] = rpath
				}
			default:
				report(rpath, "the cluster is not named in the route: want cluster or weighted_clusters, which this check can follow")
			}
		}
	}
}

func envoyCfgCheckUpstreamTLS(c *clusterv3.Cluster, report func(string, string, ...any)) {
	path := "cluster " + c.GetName()
	tls, ok := envoyCfgAny(c.GetTransportSocket().GetTypedConfig()).(*tlsv3.UpstreamTlsContext)
	if !ok {
		report(path, "no upstream TLS: injected values would cross the network in clear")
		return
	}
	vc := tls.GetCommonTlsContext().GetValidationContext()
	if vc.GetTrustedCa() == nil && vc.GetSystemRootCerts() == nil {
		report(path, "no trusted CA for the upstream certificate")
	}
	if vc.GetTrustChainVerification() != tlsv3.CertificateValidationContext_VERIFY_TRUST_CHAIN {
		report(path, "trust_chain_verification: want VERIFY_TRUST_CHAIN")
	}
	var opts *upstreamhttpv3.HttpProtocolOptions
	if a, ok := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]; ok {
		opts, _ = envoyCfgAny(a).(*upstreamhttpv3.HttpProtocolOptions)
	}
	uo := opts.GetUpstreamHttpProtocolOptions()
	if !uo.GetAutoSanValidation() {
		report(path, "the upstream certificate's SAN is not checked against the host")
	}
	if !uo.GetAutoSni() {
		report(path, "the upstream SNI is not the host")
	}
}

// envoyCfgCheckInterception checks a filter chain that runs the plugin on a
// TLS-inspecting listener.
func envoyCfgCheckInterception(path string, fc *listenerv3.FilterChain, s *policies.Session, report func(string, string, ...any)) {
	names := fc.GetFilterChainMatch().GetServerNames()
	if len(names) == 0 {
		report(path, "runs the plugin for every server name: want one chain per allowed host, the rest passed through")
	}
	tls, ok := envoyCfgAny(fc.GetTransportSocket().GetTypedConfig()).(*tlsv3.DownstreamTlsContext)
	if !ok || len(tls.GetCommonTlsContext().GetTlsCertificates())+len(tls.GetCommonTlsContext().GetTlsCertificateSdsSecretConfigs()) == 0 {
		report(path, "does not terminate TLS with a certificate")
	}
	if s == nil {
		return // the plugin configuration was reported already
	}
	for _, name := range names {
		if !envoyCfgAllowed(s, name) {
			report(path, "server name %q is no allowed host of any secret", name)
		}
	}
}

// envoyCfgAllowed reports whether some secret of s allows serverName: a
// wildcard name must be a wildcard rule, any other name must match a rule.
func envoyCfgAllowed(s *policies.Session, serverName string) bool {
	a, ok := policies.CanonicalAuthority(nil, []byte(serverName))
	for _, sec := range s.Secrets {
		for _, rule := range sec.Hosts {
			if rule.String() == serverName || ok && rule.Matches(a) {
				return true
			}
		}
	}
	return false
}

var envoyCfgCommand = regexp.MustCompile(`%([A-Z_0-9]+)(?:\(([^)]*)\))?(?::[0-9]+)?%`)

// envoyCfgCheckAccessLog checks one access log's format commands.
func envoyCfgCheckAccessLog(path string, al *accesslogv3.AccessLog, report func(string, string, ...any)) {
	var f *corev3.SubstitutionFormatString
	var formats []string
	switch l := envoyCfgAny(al.GetTypedConfig()).(type) {
	case *streamv3.StdoutAccessLog:
		f = l.GetLogFormat()
	case *streamv3.StderrAccessLog:
		f = l.GetLogFormat()
	case *filev3.FileAccessLog:
		f = l.GetLogFormat()
		//lint:ignore SA1019 the deprecated forms still work in Envoy.
		if l.GetFormat() != "" {
			formats = append(formats, l.GetFormat())
		}
		formats = append(formats, envoyCfgStrings(l.GetJsonFormat())...)
		formats = append(formats, envoyCfgStrings(l.GetTypedJsonFormat())...)
	default:
		report(path, "access logger %s: this check cannot read its format", al.GetName())
		return
	}
	if s := f.GetTextFormatSource(); s != nil && s.GetInlineString() == "" {
		report(path, "format from a file: this check cannot read it")
	}
	formats = append(formats, f.GetTextFormat(), f.GetTextFormatSource().GetInlineString())
	formats = append(formats, envoyCfgStrings(f.GetJsonFormat())...)
	hasFormatter := false
	for _, fe := range f.GetFormatters() {
		if _, ok := envoyCfgAny(fe.GetTypedConfig()).(*reqwithoutqueryv3.ReqWithoutQuery); ok {
			hasFormatter = true
		}
	}
	if strings.Join(formats, "") == "" {
		report(path, "Envoy's default format prints the path with its query")
		return
	}
	for _, format := range formats {
		for _, m := range envoyCfgCommand.FindAllStringSubmatch(format, -1) {
			envoyCfgCheckCommand(path, m[0], m[1], m[2], hasFormatter, report)
		}
	}
}

func envoyCfgCheckCommand(path, command, name, arg string, hasFormatter bool, report func(string, string, ...any)) {
	switch name {
	case "REQ", "REQUEST_HEADER", "TRAILER", "REQUEST_TRAILER":
		// The plugin may write a value into any request header but these.
		for _, h := range strings.Split(arg, "?") {
			switch strings.ToUpper(h) {
			case ":METHOD", ":SCHEME", ":AUTHORITY", "HOST":
			default:
				report(path, "command %s prints request header %q, which can hold an injected value", command, h)
			}
		}
	case "REQ_WITHOUT_QUERY":
		if !hasFormatter {
			report(path, "command %s needs the envoy.formatter.req_without_query formatter", command)
		}
		for _, h := range strings.Split(arg, "?") {
			switch strings.ToUpper(h) {
			case ":PATH", "X-ENVOY-ORIGINAL-PATH":
			default:
				report(path, "command %s prints request header %q, which can hold an injected value", command, h)
			}
		}
	case "PATH", "QUERY_PARAM", "CEL", "REQUEST_HEADERS":
		report(path, "command %s can print the query or request headers, which can hold injected values", command)
	}
}

// envoyCfgStrings returns every string value in s.
func envoyCfgStrings(s *structpb.Struct) []string {
	var out []string
	var walk func(v *structpb.Value)
	walk = func(v *structpb.Value) {
		switch k := v.GetKind().(type) {
		case *structpb.Value_StringValue:
			out = append(out, k.StringValue)
		case *structpb.Value_StructValue:
			for _, f := range k.StructValue.GetFields() {
				walk(f)
			}
		case *structpb.Value_ListValue:
			for _, e := range k.ListValue.GetValues() {
				walk(e)
			}
		}
	}
	for _, v := range s.GetFields() {
		walk(v)
	}
	return out
}

// TestEnvoyConfigsPluginLoadsInHostsim starts each config's plugin, with its
// configuration and vm_config, in hostsim with the module built from this
// checkout, then sends each secret's placeholder to one of its allowed hosts
// (the value must arrive, exactly) and to a host no secret allows (the
// placeholder must arrive unchanged, or the request be denied, as the secret
// says; the value must be nowhere).
func TestEnvoyConfigsPluginLoadsInHostsim(t *testing.T) {
	module := hostsimtest.Compile(t, plugintest.Wasm(t))
	served, _ := envoyCfgFiles(t)
	for _, file := range served {
		t.Run(file, func(t *testing.T) {
			b, err := envoyCfgParse(envoyCfgRead(t, file))
			if err != nil {
				t.Fatal(err)
			}
			_, plugins := envoyCfgPolicy(b)
			seen := map[string]bool{}
			for _, p := range plugins {
				key := string(envoyCfgMarshal(t, p.config))
				if seen[key] {
					continue // the same plugin, shared through a YAML alias
				}
				seen[key] = true
				if p.session == nil {
					t.Fatalf("%s: the plugin configuration does not parse", p.path)
				}
				t.Run(p.path, func(t *testing.T) {
					envoyCfgExercisePlugin(t, module, p)
				})
			}
			if len(seen) == 0 {
				t.Fatal("no secretgate wasm filter")
			}
		})
	}
}

// TestEnvoyConfigsRejectedPluginFailsInHostsim starts the plugin of each
// rejected config (e2e/**/testdata/envoy*.yaml) in hostsim: the module must
// refuse the configuration, as it makes Envoy refuse to start.
func TestEnvoyConfigsRejectedPluginFailsInHostsim(t *testing.T) {
	_, rejected := envoyCfgFiles(t)
	if len(rejected) == 0 {
		t.Skip("no rejected Envoy config under e2e/**/testdata")
	}
	module := hostsimtest.Compile(t, plugintest.Wasm(t))
	for _, file := range rejected {
		t.Run(file, func(t *testing.T) {
			b, err := envoyCfgParse(envoyCfgRead(t, file))
			if err != nil {
				t.Fatal(err)
			}
			_, plugins := envoyCfgPolicy(b)
			if len(plugins) == 0 {
				t.Fatal("no secretgate wasm filter")
			}
			for _, p := range plugins {
				vm, err := module.NewVM(context.Background(), envoyCfgHostsimConfig(t, p.config))
				if vm != nil {
					t.Cleanup(func() { _ = vm.Close(context.Background()) })
				}
				if err == nil {
					t.Errorf("%s: the module accepted the configuration", p.path)
				}
			}
		})
	}
}

func envoyCfgMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// envoyCfgHostsimConfig maps Envoy's PluginConfig onto hostsim's.
func envoyCfgHostsimConfig(t *testing.T, pc *wasmv3.PluginConfig) hostsim.PluginConfig {
	t.Helper()
	cfg := hostsim.PluginConfig{
		Name:        pc.GetName(),
		RootID:      pc.GetRootId(),
		VMID:        pc.GetVmConfig().GetVmId(),
		FailOpen:    pc.GetFailOpen(),
		Environment: pc.GetVmConfig().GetEnvironmentVariables().GetKeyValues(),
	}
	var ok bool
	if cfg.Configuration, ok = envoyCfgBytes(pc.GetConfiguration()); !ok {
		t.Fatal("configuration: not a StringValue, BytesValue or Struct")
	}
	if cfg.VMConfiguration, ok = envoyCfgBytes(pc.GetVmConfig().GetConfiguration()); !ok {
		t.Fatal("vm_config.configuration: not a StringValue, BytesValue or Struct")
	}
	switch pc.GetFailurePolicy() {
	case wasmv3.FailurePolicy_FAIL_CLOSED:
		cfg.FailurePolicy = hostsim.FailurePolicyClosed
	case wasmv3.FailurePolicy_FAIL_OPEN:
		cfg.FailurePolicy = hostsim.FailurePolicyOpen
	case wasmv3.FailurePolicy_FAIL_RELOAD:
		cfg.FailurePolicy = hostsim.FailurePolicyReload
	}
	return cfg
}

func envoyCfgExercisePlugin(t *testing.T, module *hostsim.Module, p envoyCfgPlugin) {
	cfg := envoyCfgHostsimConfig(t, p.config)
	// The values, read from the JSON the plugin reads (policies.Value never
	// gives them out); failures print them redacted.
	var raw struct {
		Secrets map[string]struct {
			Value string `json:"value"`
		} `json:"secrets"`
	}
	if err := json.Unmarshal(cfg.Configuration, &raw); err != nil {
		t.Fatal(err)
	}
	redact := func(s string) string {
		for name, sec := range raw.Secrets {
			if sec.Value != "" {
				s = strings.ReplaceAll(s, sec.Value, "<value of "+name+">")
			}
		}
		return s
	}
	vm := hostsimtest.NewVM(t, module, cfg) // fails the test if the module refuses the configuration
	if len(p.session.Secrets) == 0 {
		t.Fatal("the session has no secrets")
	}
	const twinHost = "twin.invalid"
	for _, sec := range p.session.Secrets {
		value := raw.Secrets[sec.Name].Value
		if value == "" || len(sec.Hosts) == 0 {
			t.Fatalf("secret %s: no value or no hosts", sec.Name)
		}
		allowed := strings.Replace(sec.Hosts[0].String(), "*", "wild", 1)
		request := func(authority string) hostsim.Headers {
			return hostsim.Headers{
				{Name: ":authority", Value: authority},
				{Name: ":path", Value: "/v1/check"},
				{Name: ":method", Value: "GET"},
				{Name: ":scheme", Value: "https"},
				{Name: "authorization", Value: "Bearer " + sec.Placeholder},
			}
		}
		do := func(authority string) hostsim.Outcome {
			out, err := vm.Do(context.Background(), hostsim.Request{Headers: request(authority)})
			if err != nil {
				t.Fatalf("secret %s to %s: %v", sec.Name, authority, err)
			}
			return out
		}

		want := request(allowed)
		want[4].Value = "Bearer " + value
		got := do(allowed)
		if got.Upstream == nil || !reflect.DeepEqual(*got.Upstream, want) {
			t.Errorf("secret %s to allowed host %s: forwarded %s, want %s",
				sec.Name, allowed, redact(fmt.Sprint(got.Upstream)), redact(fmt.Sprint(want)))
		}

		twin := do(twinHost)
		switch sec.OnDisallowed {
		case policies.Deny:
			body := `{"error":"secret_not_allowed","secrets":["` + sec.Name + `"],"host":"` + twinHost + `"}`
			if twin.Upstream != nil || twin.LocalReply == nil || twin.LocalReply.Status != 403 || string(twin.LocalReply.Body) != body {
				t.Errorf("secret %s to %s: got upstream %s, local reply %s; want 403 %s",
					sec.Name, twinHost, redact(fmt.Sprint(twin.Upstream)), redact(fmt.Sprint(twin.LocalReply)), body)
			}
		default:
			if want := request(twinHost); twin.Upstream == nil || !reflect.DeepEqual(*twin.Upstream, want) {
				t.Errorf("secret %s to %s: forwarded %s, want the placeholder unchanged: %s",
					sec.Name, twinHost, redact(fmt.Sprint(twin.Upstream)), want)
			}
		}
		if s := fmt.Sprint(twin.Upstream, twin.LocalReply); strings.Contains(s, value) {
			t.Errorf("secret %s to %s: the value is in the outcome: %s", sec.Name, twinHost, redact(s))
		}
	}
	for _, l := range vm.Logs() {
		if redact(l.Message) != l.Message {
			t.Errorf("a log line holds a value: %s", redact(l.Message))
		}
	}
	for _, m := range vm.Metrics() {
		if redact(m.Name) != m.Name {
			t.Errorf("a metric name holds a value: %s", redact(m.Name))
		}
	}
	if d := vm.Diagnostics(); len(d) > 0 {
		t.Errorf("the module misused the host: %q", d)
	}
}
