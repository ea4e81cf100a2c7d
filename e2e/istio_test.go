package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"gopkg.in/yaml.v3"
	extensions "istio.io/api/extensions/v1alpha1"
	networking "istio.io/api/networking/v1"
	telemetry "istio.io/api/telemetry/v1"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
	"github.com/secretgate/secretgate/plugin/plugintest"
	"github.com/secretgate/secretgate/policies"
)

// istioManifestGlob names the Istio manifests, relative to this package.
const istioManifestGlob = "istio/*.yaml"

// istioObject is one Kubernetes object from a manifest, its spec decoded into
// the istio.io/api message that client-go's typed object wraps as Spec.
type istioObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels,omitempty"`
		Annotations map[string]string `json:"annotations,omitempty"`
	} `json:"metadata"`
	Spec json.RawMessage `json:"spec"`

	// rawSpec is the spec as written, for fields whose proto zero value
	// cannot tell "written" from "left out".
	rawSpec map[string]any
	spec    proto.Message
}

// istioNewSpec returns the empty spec message for an apiVersion and kind, or
// nil for one these manifests should not hold.
func istioNewSpec(apiVersion, kind string) proto.Message {
	switch apiVersion + " " + kind {
	case "extensions.istio.io/v1alpha1 WasmPlugin":
		return &extensions.WasmPlugin{}
	case "networking.istio.io/v1 ServiceEntry":
		return &networking.ServiceEntry{}
	case "networking.istio.io/v1 Gateway":
		return &networking.Gateway{}
	case "networking.istio.io/v1 VirtualService":
		return &networking.VirtualService{}
	case "networking.istio.io/v1 DestinationRule":
		return &networking.DestinationRule{}
	case "telemetry.istio.io/v1 Telemetry":
		return &telemetry.Telemetry{}
	}
	return nil
}

// istioDecode decodes every YAML document of a manifest strictly: an unknown
// field, in the envelope or the spec, is an error, and so is a field spelled by
// its proto name, which protojson accepts but the Kubernetes API server does
// not. istio.io/api's own UnmarshalJSON allows unknown fields, so the spec goes
// through protojson directly.
func istioDecode(data []byte) ([]istioObject, error) {
	var objs []istioObject
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %v", i, err)
		}
		obj, err := istioDecodeObject(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %v", i, err)
		}
		objs = append(objs, obj)
	}
}

func istioDecodeObject(doc map[string]any) (istioObject, error) {
	var obj istioObject
	j, err := json.Marshal(doc)
	if err != nil {
		return obj, err
	}
	jd := json.NewDecoder(bytes.NewReader(j))
	jd.DisallowUnknownFields()
	if err := jd.Decode(&obj); err != nil {
		return obj, err
	}
	switch {
	case obj.Metadata.Name == "":
		return obj, errors.New("metadata.name: required")
	case obj.Metadata.Namespace == "":
		return obj, errors.New("metadata.namespace: required")
	case len(obj.Spec) == 0:
		return obj, errors.New("spec: required")
	}
	obj.spec = istioNewSpec(obj.APIVersion, obj.Kind)
	if obj.spec == nil {
		return obj, fmt.Errorf("unexpected object %s %s", obj.APIVersion, obj.Kind)
	}
	if err := (protojson.UnmarshalOptions{}).Unmarshal(obj.Spec, obj.spec); err != nil {
		return obj, fmt.Errorf("%s %s: spec: %v", obj.Kind, obj.Metadata.Name, err)
	}
	obj.rawSpec, _ = doc["spec"].(map[string]any)
	if err := istioCheckJSONNames(obj.spec.ProtoReflect().Descriptor(), obj.rawSpec, "spec"); err != nil {
		return obj, fmt.Errorf("%s %s: %v", obj.Kind, obj.Metadata.Name, err)
	}
	return obj, nil
}

// istioCheckJSONNames rejects keys that name a field by its proto name
// (fail_strategy) rather than its JSON name (failStrategy), walking nested
// messages; well-known types such as pluginConfig's Struct are left alone.
func istioCheckJSONNames(md protoreflect.MessageDescriptor, v map[string]any, path string) error {
	if strings.HasPrefix(string(md.FullName()), "google.protobuf.") {
		return nil
	}
	for key, val := range v {
		fd := md.Fields().ByJSONName(key)
		if fd == nil {
			return fmt.Errorf("%s.%s: not a JSON field name", path, key)
		}
		if fd.Message() == nil {
			continue
		}
		p := path + "." + key
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() == nil {
				continue
			}
			m, _ := val.(map[string]any)
			for k, e := range m {
				sub, _ := e.(map[string]any)
				if err := istioCheckJSONNames(fd.MapValue().Message(), sub, p+"."+k); err != nil {
					return err
				}
			}
		case fd.IsList():
			l, _ := val.([]any)
			for i, e := range l {
				sub, _ := e.(map[string]any)
				if err := istioCheckJSONNames(fd.Message(), sub, fmt.Sprintf("%s[%d]", p, i)); err != nil {
					return err
				}
			}
		default:
			sub, _ := val.(map[string]any)
			if err := istioCheckJSONNames(fd.Message(), sub, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// istioManifests decodes every manifest and returns the objects by kind.
func istioManifests(t *testing.T) map[string][]istioObject {
	t.Helper()
	files, err := filepath.Glob(istioManifestGlob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests match %s: %v", istioManifestGlob, err)
	}
	byKind := map[string][]istioObject{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := istioDecode(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, o := range objs {
			byKind[o.Kind] = append(byKind[o.Kind], o)
		}
	}
	return byKind
}

// istioWasmPlugin returns the one WasmPlugin of the manifests.
func istioWasmPlugin(t *testing.T, byKind map[string][]istioObject) (istioObject, *extensions.WasmPlugin) {
	t.Helper()
	if n := len(byKind["WasmPlugin"]); n != 1 {
		t.Fatalf("want exactly one WasmPlugin, have %d", n)
	}
	o := byKind["WasmPlugin"][0]
	return o, o.spec.(*extensions.WasmPlugin)
}

// istioPluginConfig is the configuration the plugin receives: Istio hands the
// plugin the JSON of pluginConfig (a google.protobuf.Struct) as a StringValue.
func istioPluginConfig(t *testing.T, wp *extensions.WasmPlugin) []byte {
	t.Helper()
	if len(wp.GetPluginConfig().GetFields()) == 0 {
		t.Fatal("WasmPlugin has no pluginConfig")
	}
	cfg, err := protojson.Marshal(wp.GetPluginConfig())
	if err != nil {
		t.Fatalf("pluginConfig to JSON: %v", err)
	}
	return cfg
}

func TestIstioManifestsDecode(t *testing.T) {
	byKind := istioManifests(t)
	want := map[string]int{"WasmPlugin": 1, "ServiceEntry": 1, "Gateway": 1, "VirtualService": 2, "DestinationRule": 3, "Telemetry": 1}
	for kind, n := range want {
		if got := len(byKind[kind]); got != n {
			t.Errorf("%s: %d objects, want %d", kind, got, n)
		}
	}
}

func TestIstioWasmPlugin(t *testing.T) {
	byKind := istioManifests(t)
	obj, wp := istioWasmPlugin(t, byKind)

	// FAIL_CLOSE and UNSPECIFIED_PHASE are the enums' zero values: check what
	// is written too, so that deleting the line fails here.
	if got := obj.rawSpec["failStrategy"]; got != "FAIL_CLOSE" || wp.GetFailStrategy() != extensions.FailStrategy_FAIL_CLOSE {
		t.Errorf("failStrategy = %v, want FAIL_CLOSE written out", got)
	}
	if wp.GetPhase() != extensions.PluginPhase_STATS {
		t.Errorf("phase = %v, want STATS", wp.GetPhase())
	}
	if wp.GetType() != extensions.PluginType_HTTP {
		t.Errorf("type = %v, want HTTP", wp.GetType())
	}
	if wp.GetPluginName() != "secretgate" {
		t.Errorf("pluginName = %q, want secretgate", wp.GetPluginName())
	}
	if !strings.HasPrefix(wp.GetUrl(), "oci://") {
		t.Errorf("url = %q, want an oci:// image", wp.GetUrl())
	}
	if wp.GetImagePullPolicy() != extensions.PullPolicy_IfNotPresent {
		t.Errorf("imagePullPolicy = %v, want IfNotPresent", wp.GetImagePullPolicy())
	}
	if len(wp.GetMatch()) != 1 || wp.GetMatch()[0].GetMode().String() != "CLIENT" || len(wp.GetMatch()[0].GetPorts()) != 0 {
		t.Errorf("match = %v, want one selector for CLIENT traffic on every port", wp.GetMatch())
	}

	// The plugin runs on the egress gateway only, from the gateway's own
	// namespace: istiod serves a root-namespace plugin's configuration to any
	// proxy that asks for it by name, and its selector matches sandbox pods too.
	if len(wp.GetTargetRefs()) != 0 || wp.GetTargetRef() != nil {
		t.Error("targetRefs set; the classic egress gateway is chosen by selector")
	}
	if obj.Metadata.Namespace == "istio-system" {
		t.Error("WasmPlugin in the root namespace: every proxy in the mesh could fetch its configuration")
	}
	if n := len(byKind["Gateway"]); n != 1 {
		t.Fatalf("want one Gateway, have %d", n)
	}
	gw := byKind["Gateway"][0]
	if gw.Metadata.Namespace != obj.Metadata.Namespace {
		t.Errorf("WasmPlugin in %s, Gateway in %s: want both beside the egress gateway", obj.Metadata.Namespace, gw.Metadata.Namespace)
	}
	gwSelector := gw.spec.(*networking.Gateway).GetSelector()
	if labels := wp.GetSelector().GetMatchLabels(); len(labels) == 0 || !maps.Equal(labels, gwSelector) {
		t.Errorf("WasmPlugin selector %v, Gateway selector %v: want the same workload", labels, gwSelector)
	}

	cfg := istioPluginConfig(t, wp)
	if _, err := policies.ParseConfig(cfg); err != nil {
		t.Errorf("pluginConfig does not parse as a secretgate configuration: %v", err)
	}
}

// TestIstioPluginConfigInHostsim loads the WasmPlugin's pluginConfig, as Istio
// passes it, into the built module in hostsim and sends the requests the
// gateway sees: each secret is injected for its allowed host and not for the
// other host routed through the gateway (the README's verify step).
func TestIstioPluginConfigInHostsim(t *testing.T) {
	_, wp := istioWasmPlugin(t, istioManifests(t))
	m := hostsimtest.Compile(t, plugintest.Wasm(t))
	// Istio sets root_id from pluginName and names the plugin
	// <namespace>.<name> (from 1.30 with "~istio-translated-wasmplugin"
	// appended to the name); the module reads neither.
	config := hostsim.PluginConfig{Name: "istio-egress.secretgate", RootID: "secretgate", Configuration: istioPluginConfig(t, wp)}
	const (
		openAIPlaceholder = "sgp_demo_openai_0000000000000001"
		openAIValue       = "sk-demo-NOT-A-REAL-KEY-0001"
		customPlaceholder = "sgp_demo_custom_0000000000000002"
		customValue       = "custom-demo-NOT-A-REAL-KEY-0002"
	)
	request := func(authority, name, value string) hostsim.Request {
		return hostsim.Request{Headers: hostsim.Headers{
			{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
			{Name: ":path", Value: "/v1/models"}, {Name: ":authority", Value: authority},
			{Name: name, Value: value},
		}}
	}
	for _, tc := range []struct {
		name     string
		req      hostsim.Request
		header   string // the upstream header to compare, when forwarded
		want     string
		injected bool   // want is a secret value (never printed)
		warning  string // the one warning logged, if any
		status   int    // a local reply's status, when not forwarded
		body     string // and its exact body
	}{
		{name: "openai allowed", req: request("api.openai.com", "authorization", "Bearer "+openAIPlaceholder),
			header: "authorization", want: "Bearer " + openAIValue, injected: true},
		{name: "openai to the other host passes through", req: request("api.example.com", "authorization", "Bearer "+openAIPlaceholder),
			header: "authorization", want: "Bearer " + openAIPlaceholder,
			warning: "secretgate: secret OPENAI_API_KEY is not allowed for host api.example.com; placeholder forwarded unchanged"},
		{name: "custom allowed", req: request("api.example.com", "x-api-key", customPlaceholder),
			header: "x-api-key", want: customValue, injected: true},
		{name: "custom to the other host denied", req: request("api.openai.com", "x-api-key", customPlaceholder),
			status: 403, body: `{"error":"secret_not_allowed","secrets":["CUSTOM_API_KEY"],"host":"api.openai.com"}`,
			warning: "secretgate: secret CUSTOM_API_KEY is not allowed for host api.openai.com; request denied with 403"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vm := hostsimtest.NewVM(t, m, config)
			out, err := vm.Do(context.Background(), tc.req)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if d := vm.Diagnostics(); len(d) > 0 {
				t.Errorf("the module misused the host: %q", d)
			}
			if tc.status != 0 {
				if out.LocalReply == nil || out.Upstream != nil {
					t.Fatalf("want a local %d and nothing upstream; upstream sent: %v", tc.status, out.Upstream != nil)
				}
				if out.LocalReply.Status != tc.status || string(out.LocalReply.Body) != tc.body {
					t.Errorf("local reply %d %q, want %d %q", out.LocalReply.Status, out.LocalReply.Body, tc.status, tc.body)
				}
			} else {
				if out.Upstream == nil {
					t.Fatalf("request not forwarded (local reply: %v)", out.LocalReply != nil)
				}
				got := out.Upstream.Values(tc.header)
				switch {
				case len(got) != 1:
					t.Errorf("upstream has %d %s headers, want 1", len(got), tc.header)
				case got[0] != tc.want && tc.injected:
					t.Errorf("upstream %s is not the injected value (%d bytes, want %d)", tc.header, len(got[0]), len(tc.want))
				case got[0] != tc.want:
					t.Errorf("upstream %s = %q, want %q", tc.header, got[0], tc.want)
				}
			}
			var warnings []string
			for _, l := range vm.Logs() {
				if l.Level >= hostsim.LogWarn {
					warnings = append(warnings, l.Message)
				}
			}
			if want := slices.DeleteFunc([]string{tc.warning}, func(s string) bool { return s == "" }); !slices.Equal(warnings, want) {
				t.Errorf("warnings %q, want %q", warnings, want)
			}
			// Where nothing is injected, no value appears anywhere.
			if !tc.injected {
				istioAssertNoValue(t, vm, out, openAIValue, customValue)
			}
		})
	}
}

// TestIstioPluginConfigStringsQuoted checks every value in the sample's
// pluginConfig is a quoted string. kubectl reads YAML 1.1, where an unquoted
// placeholder of digits, or yes or off, becomes a number or a boolean that
// secretgate rejects; users copy the sample's habit.
func TestIstioPluginConfigStringsQuoted(t *testing.T) {
	data, err := os.ReadFile("istio/wasmplugin.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	cfg := istioYAMLLookup(istioYAMLLookup(doc.Content[0], "spec"), "pluginConfig")
	if cfg == nil || cfg.Kind != yaml.MappingNode {
		t.Fatal("wasmplugin.yaml: no spec.pluginConfig mapping")
	}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], path+"."+n.Content[i].Value)
			}
		case yaml.SequenceNode:
			for i, e := range n.Content {
				walk(e, fmt.Sprintf("%s[%d]", path, i))
			}
		case yaml.ScalarNode:
			if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
				t.Errorf("line %d: %s is not quoted", n.Line, path)
			}
		}
	}
	walk(cfg, "pluginConfig")
}

// istioYAMLLookup returns the value of key in a mapping node, or nil.
func istioYAMLLookup(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// istioAssertNoValue fails if any value appears in what left the filter
// upstream or downstream, in a log line or in a metric name. It never prints
// the value.
func istioAssertNoValue(t *testing.T, vm *hostsim.VM, out hostsim.Outcome, values ...string) {
	t.Helper()
	type place struct{ where, text string }
	var places []place
	if out.Upstream != nil {
		for _, h := range *out.Upstream {
			places = append(places, place{"upstream header " + h.Name, h.Name + ": " + h.Value})
		}
		places = append(places, place{"upstream body", string(out.UpstreamBody)})
	}
	if r := out.LocalReply; r != nil {
		for _, h := range r.Headers {
			places = append(places, place{"reply header " + h.Name, h.Name + ": " + h.Value})
		}
		places = append(places, place{"reply body", string(r.Body)})
	}
	for i, l := range vm.Logs() {
		places = append(places, place{fmt.Sprintf("log line %d", i), l.Message})
	}
	for _, m := range vm.Metrics() {
		places = append(places, place{"metric names", m.Name})
	}
	for _, p := range places {
		for _, v := range values {
			if strings.Contains(p.text, v) {
				t.Errorf("a secret value appears in the %s", p.where)
			}
		}
	}
}

// TestIstioGatewayNoAccessLogOrTracing checks the gateway writes no access
// log and reports no spans: both come after the plugin, and Istio's default
// log format and a span's http.url tag hold the query string, where an
// injected value can sit. The log provider must be named: with none, istiod
// disables only the mesh's default providers and, when there are none, falls
// back to meshConfig.accessLogFile, which stays on.
func TestIstioGatewayNoAccessLogOrTracing(t *testing.T) {
	byKind := istioManifests(t)
	wpObj, wp := istioWasmPlugin(t, byKind)
	if n := len(byKind["Telemetry"]); n != 1 {
		t.Fatalf("want one Telemetry, have %d", n)
	}
	o := byKind["Telemetry"][0]
	tm := o.spec.(*telemetry.Telemetry)
	logs := tm.GetAccessLogging()
	if o.Metadata.Namespace != wpObj.Metadata.Namespace || !maps.Equal(tm.GetSelector().GetMatchLabels(), wp.GetSelector().GetMatchLabels()) {
		t.Errorf("Telemetry %s: want it beside the WasmPlugin with the same selector", o.Metadata.Name)
	}
	var providers []string
	for _, l := range logs {
		for _, p := range l.GetProviders() {
			providers = append(providers, p.GetName())
		}
	}
	if len(logs) != 1 || !logs[0].GetDisabled().GetValue() || logs[0].GetMatch() != nil || !slices.Equal(providers, []string{"envoy"}) {
		t.Errorf("Telemetry %s: want one accessLogging entry disabling provider envoy for all traffic, have providers %q", o.Metadata.Name, providers)
	}
	tr := tm.GetTracing()
	if len(tr) != 1 || !tr[0].GetDisableSpanReporting().GetValue() || tr[0].GetMatch() != nil {
		t.Errorf("Telemetry %s: want one tracing entry disabling span reporting for all traffic", o.Metadata.Name)
	}
}

// istioHostRoute records which of the objects an allowed host needs exist.
type istioHostRoute struct {
	serviceEntry, gatewayServer, sidecarSubset, gatewayRoute, origination bool
}

// TestIstioEgressCoversAllowedHosts checks that every host a secret allows is
// routed through the gateway running the plugin and on to itself over
// verified TLS, and that no route there changes the destination host after
// the plugin checked it, or copies the request elsewhere.
func TestIstioEgressCoversAllowedHosts(t *testing.T) {
	byKind := istioManifests(t)
	_, wp := istioWasmPlugin(t, byKind)
	session, err := policies.ParseConfig(istioPluginConfig(t, wp))
	if err != nil {
		t.Fatalf("pluginConfig: %v", err)
	}
	if n := len(byKind["Gateway"]); n != 1 {
		t.Fatalf("want one Gateway, have %d", n)
	}
	gwObj := byKind["Gateway"][0]
	gwName := gwObj.Metadata.Name
	ns := gwObj.Metadata.Namespace
	gatewayService := "istio-egressgateway." + ns + ".svc.cluster.local"

	routes := map[string]*istioHostRoute{}
	route := func(host string) *istioHostRoute {
		if routes[host] == nil {
			routes[host] = &istioHostRoute{}
		}
		return routes[host]
	}
	for _, o := range byKind["ServiceEntry"] {
		se := o.spec.(*networking.ServiceEntry)
		// Port 80 for the sandbox's plain HTTP, 443 for the gateway's TLS.
		var plain, tls bool
		for _, p := range se.GetPorts() {
			plain = plain || p.GetNumber() == 80 && p.GetProtocol() == "HTTP"
			tls = tls || p.GetNumber() == 443
		}
		for _, h := range se.GetHosts() {
			route(h).serviceEntry = plain && tls && se.GetLocation() == networking.ServiceEntry_MESH_EXTERNAL
		}
	}
	for _, s := range gwObj.spec.(*networking.Gateway).GetServers() {
		for _, h := range s.GetHosts() {
			// "./host" keeps the binding to VirtualServices of this namespace.
			if host, ok := strings.CutPrefix(h, "./"); ok && s.GetTls().GetMode() == networking.ServerTLSSettings_ISTIO_MUTUAL {
				route(host).gatewayServer = true
			}
		}
	}
	subsetSNI := map[string]string{}
	for _, o := range byKind["DestinationRule"] {
		dr := o.spec.(*networking.DestinationRule)
		if dr.GetHost() == gatewayService {
			// Sandbox sidecars in every namespace route through these subsets.
			if e := dr.GetExportTo(); len(e) > 0 && !slices.Contains(e, "*") {
				t.Errorf("DestinationRule %s: exportTo %q hides the gateway's subsets from sandbox sidecars", o.Metadata.Name, e)
			}
			for _, s := range dr.GetSubsets() {
				for _, p := range s.GetTrafficPolicy().GetPortLevelSettings() {
					if p.GetTls().GetMode() == networking.ClientTLSSettings_ISTIO_MUTUAL {
						subsetSNI[s.GetName()] = p.GetTls().GetSni()
					}
				}
			}
			continue
		}
		// Only the gateway originates TLS: a sidecar applying this rule would
		// wrap a sandbox's own HTTPS to the host in a second TLS layer.
		if e := dr.GetExportTo(); !slices.Equal(e, []string{"."}) || o.Metadata.Namespace != ns {
			t.Errorf("DestinationRule %s in %s: exportTo %q, want [\".\"] in the gateway's namespace %s", o.Metadata.Name, o.Metadata.Namespace, e, ns)
			continue
		}
		for _, p := range dr.GetTrafficPolicy().GetPortLevelSettings() {
			tls := p.GetTls()
			if p.GetPort().GetNumber() == 443 && tls.GetMode() == networking.ClientTLSSettings_SIMPLE &&
				tls.GetSni() == dr.GetHost() && slices.Equal(tls.GetSubjectAltNames(), []string{dr.GetHost()}) && !tls.GetInsecureSkipVerify().GetValue() {
				route(dr.GetHost()).origination = true
			}
		}
	}
	for _, o := range byKind["VirtualService"] {
		vs := o.spec.(*networking.VirtualService)
		for _, r := range vs.GetHttp() {
			if r.GetRewrite().GetAuthority() != "" || r.GetMirror() != nil || len(r.GetMirrors()) > 0 || r.GetRedirect() != nil || r.GetDelegate() != nil {
				t.Errorf("VirtualService %s: a route rewrites the authority, mirrors, redirects or delegates", o.Metadata.Name)
			}
			headers := r.GetHeaders().GetRequest()
			for name := range maps.Keys(headers.GetSet()) {
				istioCheckNotHost(t, o.Metadata.Name, name)
			}
			for name := range maps.Keys(headers.GetAdd()) {
				istioCheckNotHost(t, o.Metadata.Name, name)
			}
		}
		if len(vs.GetHosts()) != 1 {
			t.Errorf("VirtualService %s: want one host, have %v", o.Metadata.Name, vs.GetHosts())
			continue
		}
		host := vs.GetHosts()[0]
		for _, r := range vs.GetHttp() {
			if len(r.GetMatch()) != 1 || len(r.GetRoute()) != 1 || len(r.GetMatch()[0].GetGateways()) != 1 {
				t.Errorf("VirtualService %s: want each route to match one gateway and go to one destination", o.Metadata.Name)
				continue
			}
			dst := r.GetRoute()[0].GetDestination()
			switch r.GetMatch()[0].GetGateways()[0] {
			case "mesh":
				if dst.GetHost() == gatewayService && subsetSNI[dst.GetSubset()] == host {
					route(host).sidecarSubset = true
				}
			case gwName:
				if dst.GetHost() == host && dst.GetPort().GetNumber() == 443 {
					route(host).gatewayRoute = true
				}
			}
		}
	}

	checked := 0
	for _, s := range session.Secrets {
		for _, rule := range s.Hosts {
			host := rule.String()
			r := route(host)
			want := istioHostRoute{true, true, true, true, true}
			if *r != want {
				t.Errorf("secrets.%s allows %s: serviceEntry, gatewayServer, sidecarSubset, gatewayRoute, origination = %v, want all", s.Name, host, *r)
			}
			checked++
		}
	}
	if checked != 2 {
		t.Errorf("checked %d allowed hosts, want the sample's 2", checked)
	}
}

func istioCheckNotHost(t *testing.T, vs, header string) {
	t.Helper()
	if h := strings.ToLower(header); h == "host" || h == ":authority" {
		t.Errorf("VirtualService %s sets the %s header", vs, header)
	}
}

// TestIstioImageDockerfile checks the image holds the module that `make build`
// writes as /plugin.wasm in a single layer, and that the build context sends it.
func TestIstioImageDockerfile(t *testing.T) {
	read := func(path string) []string {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var lines []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line != "" && !strings.HasPrefix(line, "#") {
				lines = append(lines, line)
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		return lines
	}
	makefile, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	wasm := regexp.MustCompile(`(?m)^WASM\s*:=\s*(\S+)$`).FindSubmatch(makefile)
	if wasm == nil {
		t.Fatal("Makefile: no WASM := line")
	}
	module := string(wasm[1])

	var got [][]string
	for _, l := range read("image/Dockerfile") {
		got = append(got, strings.Fields(l))
	}
	want := [][]string{{"FROM", "scratch"}, {"COPY", module, "./plugin.wasm"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("Dockerfile instructions %q, want %q", got, want)
	}
	if got, want := read("image/Dockerfile.dockerignore"), []string{"*", "!" + module}; !slices.Equal(got, want) {
		t.Errorf("Dockerfile.dockerignore %q, want %q", got, want)
	}
}

// TestIstioDecodeRejectsMistakes decodes copies of the manifests with one
// mistake each: every one must fail, naming the field.
func TestIstioDecodeRejectsMistakes(t *testing.T) {
	for _, tc := range []struct {
		file, from, to, wantErr string
	}{
		{"istio/wasmplugin.yaml", "failStrategy:", "failStrategey:", "failStrategey"},
		{"istio/wasmplugin.yaml", "failStrategy:", "fail_strategy:", "fail_strategy"},
		{"istio/wasmplugin.yaml", "FAIL_CLOSE", "FAIL_CLOSED", "FAIL_CLOSED"},
		{"istio/wasmplugin.yaml", "phase: STATS", "phase: STAT", "STAT"},
		{"istio/wasmplugin.yaml", "  namespace: istio-egress", "  namespce: istio-egress", "namespce"},
		{"istio/egress.yaml", "subjectAltNames:", "subjectAltName:", "subjectAltName"},
		{"istio/egress.yaml", "resolution: DNS", "resolution: DNZ", "DNZ"},
		{"istio/egress.yaml", "kind: Gateway", "kind: Gateways", "Gateways"},
		{"istio/telemetry.yaml", "disabled: true", "disable: true", "disable"},
	} {
		t.Run(tc.to, func(t *testing.T) {
			data, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := istioDecode(data); err != nil {
				t.Fatalf("the original does not decode: %v", err)
			}
			i := bytes.Index(data, []byte(tc.from))
			if i < 0 {
				t.Fatalf("%s has no %q", tc.file, tc.from)
			}
			mutated := slices.Concat(data[:i], []byte(tc.to), data[i+len(tc.from):])
			_, err = istioDecode(mutated)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want one naming %q", err, tc.wantErr)
			}
		})
	}
}
