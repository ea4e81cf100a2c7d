package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/secretgate/secretgate/hostsim"
)

const testEnvoyYAML = `
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 9901}}
static_resources:
  listeners:
  - name: forward_proxy
    address: {socket_address: {address: 0.0.0.0, port_value: 10000}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: egress
          http_filters:
          - name: envoy.filters.http.lua
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: secretgate
                root_id: secretgate_root
                fail_open: true
                vm_config:
                  vm_id: secretgate_vm
                  runtime: envoy.wasm.runtime.v8
                  code: {local: {filename: build/secretgate.wasm}}
                  configuration:
                    "@type": type.googleapis.com/google.protobuf.StringValue
                    value: vm-level
                  environment_variables:
                    host_env_keys: [DEVPROXY_TEST_FROM_HOST, DEVPROXY_TEST_UNSET]
                    key_values: {MODE: demo}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: |
                    {"session": "demo"}
          - name: second.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config: {name: second}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters: []
`

func TestParseEnvoyConfig(t *testing.T) {
	t.Setenv("DEVPROXY_TEST_FROM_HOST", "from-host")
	os.Unsetenv("DEVPROXY_TEST_UNSET")
	cfg, wasm, err := parseEnvoyConfig([]byte(testEnvoyYAML))
	if err != nil {
		t.Fatal(err)
	}
	want := hostsim.PluginConfig{
		Name:            "secretgate",
		RootID:          "secretgate_root",
		VMID:            "secretgate_vm",
		VMConfiguration: []byte("vm-level"),
		Configuration:   []byte("{\"session\": \"demo\"}\n"),
		Environment:     map[string]string{"DEVPROXY_TEST_FROM_HOST": "from-host", "MODE": "demo"},
		FailOpen:        true,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config =\n%+v\nwant\n%+v", cfg, want)
	}
	if wasm != "build/secretgate.wasm" {
		t.Errorf("wasm = %q", wasm)
	}
}

func TestParseEnvoyConfigMinimal(t *testing.T) {
	cfg, wasm, err := parseEnvoyConfig([]byte(`
static_resources:
  listeners:
  - filter_chains:
    - filters:
      - typed_config:
          http_filters:
          - typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config: {root_id: r}
`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, hostsim.PluginConfig{RootID: "r"}) || wasm != "" {
		t.Errorf("config = %+v, wasm = %q", cfg, wasm)
	}
}

func TestParseEnvoyConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"no wasm filter": {
			yaml: strings.ReplaceAll(testEnvoyYAML, "filters.http.wasm.v3.Wasm", "filters.http.other.v3.Other"),
			want: "static_resources.listeners: no HTTP filter with typed_config.@type type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
		},
		"wasm filter outside listeners": {
			yaml: "stats_sinks:\n- typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm}\n",
			want: "static_resources.listeners: no HTTP filter with typed_config.@type type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
		},
		"configuration not a StringValue": {
			yaml: strings.Replace(testEnvoyYAML, "google.protobuf.StringValue\n                  value: |", "google.protobuf.Struct\n                  value: |", 1),
			want: `config.configuration.@type: unsupported "type.googleapis.com/google.protobuf.Struct": want type.googleapis.com/google.protobuf.StringValue`,
		},
		"vm configuration not a StringValue": {
			yaml: strings.Replace(testEnvoyYAML, "google.protobuf.StringValue\n                    value: vm-level", "google.protobuf.BytesValue\n                    value: vm-level", 1),
			want: `config.vm_config.configuration.@type: unsupported "type.googleapis.com/google.protobuf.BytesValue": want type.googleapis.com/google.protobuf.StringValue`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.yaml == testEnvoyYAML {
				t.Fatal("the test YAML did not change")
			}
			_, _, err := parseEnvoyConfig([]byte(tc.yaml))
			if err == nil || err.Error() != tc.want {
				t.Errorf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestLoadEnvoyConfigNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "envoy.yaml")
	if err := os.WriteFile(path, []byte("static_resources: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := loadEnvoyConfig(path)
	want := path + ": static_resources.listeners: no HTTP filter with typed_config.@type " + wasmFilterType
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

// wasmFilterYAML is a bootstrap whose Wasm filter config is the given flow map.
func wasmFilterYAML(config string) string {
	return `
static_resources:
  listeners:
  - filter_chains:
    - filters:
      - typed_config:
          http_filters:
          - typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config: ` + config + "\n"
}

func TestParseEnvoyConfigFailurePolicy(t *testing.T) {
	for config, want := range map[string]hostsim.PluginConfig{
		`{failure_policy: FAIL_CLOSED}`:                  {FailurePolicy: hostsim.FailurePolicyClosed},
		`{failure_policy: FAIL_OPEN}`:                    {FailurePolicy: hostsim.FailurePolicyOpen},
		`{failure_policy: 1}`:                            {FailurePolicy: hostsim.FailurePolicyReload},
		`{failure_policy: UNSPECIFIED}`:                  {},
		`{fail_open: true}`:                              {FailOpen: true},
		`{fail_open: true, failure_policy: UNSPECIFIED}`: {FailOpen: true},
		`{failure_policy: FAIL_RELOAD, reload_config: {backoff: {base_interval: 0.25s, max_interval: 10s}}}`: {
			FailurePolicy: hostsim.FailurePolicyReload, ReloadBackoff: 250 * time.Millisecond},
		`{failure_policy: FAIL_RELOAD, reload_config: {}}`: {FailurePolicy: hostsim.FailurePolicyReload},
	} {
		cfg, _, err := parseEnvoyConfig([]byte(wasmFilterYAML(config)))
		if err != nil {
			t.Errorf("%s: %v", config, err)
			continue
		}
		if !reflect.DeepEqual(cfg, want) {
			t.Errorf("%s: config = %+v, want %+v", config, cfg, want)
		}
	}
}

func TestParseEnvoyConfigFailurePolicyErrors(t *testing.T) {
	for config, want := range map[string]string{
		`{fail_open: true, failure_policy: FAIL_CLOSED}`:       "config.failure_policy: only one of fail_open or failure_policy can be set",
		`{fail_open: true, failure_policy: FAIL_OPEN}`:         "config.failure_policy: only one of fail_open or failure_policy can be set",
		`{failure_policy: FAIL_SOMETIMES}`:                     `config.failure_policy: unknown "FAIL_SOMETIMES": want FAIL_CLOSED, FAIL_OPEN or FAIL_RELOAD`,
		`{reload_config: {backoff: {max_interval: 10s}}}`:      "config.reload_config.backoff.base_interval: required",
		`{reload_config: {backoff: {base_interval: 1m}}}`:      `config.reload_config.backoff.base_interval: "1m" is not a duration in seconds such as "1.5s"`,
		`{reload_config: {backoff: {base_interval: 1ms}}}`:     `config.reload_config.backoff.base_interval: "1ms" is not a duration in seconds such as "1.5s"`,
		`{reload_config: {backoff: {base_interval: 0.0005s}}}`: `config.reload_config.backoff.base_interval: "0.0005s": must be at least 1ms`,
	} {
		_, _, err := parseEnvoyConfig([]byte(wasmFilterYAML(config)))
		if err == nil || err.Error() != want {
			t.Errorf("%s: err = %v\nwant %s", config, err, want)
		}
	}
}

// A configuration written as a bare string instead of the StringValue
// mapping, or key_values as a string, got yaml.v3's error, which quotes the
// scalar's first 7 bytes: the start of a real value. The error still names
// the line and the types.
func TestParseEnvoyConfigTypeErrorsQuoteNoValue(t *testing.T) {
	const value = "sk-fake-NOT-A-REAL-VALUE-0007"
	for config, want := range map[string]string{
		`{configuration: "` + value + `"}`:                                    "wasm filter: line 10: a !!str value cannot be decoded as a google.protobuf.Any (a mapping with @type and value)",
		`{vm_config: {configuration: ` + value + `}}`:                         "wasm filter: line 10: a !!str value cannot be decoded as a google.protobuf.Any (a mapping with @type and value)",
		`{vm_config: {environment_variables: {key_values: "` + value + `"}}}`: "wasm filter: line 10: a !!str value cannot be decoded as map[string]string",
		// A scalar holding a backtick and " into " does not end the quote early.
		"{vm_config: {environment_variables: {key_values: {K: [a]}}}, configuration: \"x` into y\"}": "wasm filter: line 10: a !!seq value cannot be decoded as string; line 10: a !!str value cannot be decoded as a google.protobuf.Any (a mapping with @type and value)",
	} {
		_, _, err := parseEnvoyConfig([]byte(wasmFilterYAML(config)))
		if err == nil || err.Error() != want {
			t.Errorf("%s: err = %v\nwant %s", config, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), value[:4]) || strings.Contains(err.Error(), "into y")) {
			t.Errorf("the error quotes the value: %v", err)
		}
	}
}
