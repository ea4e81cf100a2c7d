package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/secretgate/secretgate/hostsim"
)

const (
	wasmFilterType  = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
	stringValueType = "type.googleapis.com/google.protobuf.StringValue"
)

// envoyWasm is the part of envoy.extensions.filters.http.wasm.v3.Wasm the dev
// proxy understands; other fields (runtime, allow_precompiled,
// reload_config.backoff.max_interval, ...) are ignored.
type envoyWasm struct {
	Config struct {
		Name          string       `yaml:"name"`
		RootID        string       `yaml:"root_id"`
		FailOpen      bool         `yaml:"fail_open"`
		FailurePolicy string       `yaml:"failure_policy"`
		ReloadConfig  *reloadCfg   `yaml:"reload_config"`
		Configuration *stringValue `yaml:"configuration"`
		VMConfig      struct {
			VMID string `yaml:"vm_id"`
			Code struct {
				Local struct {
					Filename string `yaml:"filename"`
				} `yaml:"local"`
			} `yaml:"code"`
			Configuration        *stringValue `yaml:"configuration"`
			EnvironmentVariables struct {
				HostEnvKeys []string          `yaml:"host_env_keys"`
				KeyValues   map[string]string `yaml:"key_values"`
			} `yaml:"environment_variables"`
		} `yaml:"vm_config"`
	} `yaml:"config"`
}

// reloadCfg is envoy.extensions.wasm.v3.ReloadConfig.
type reloadCfg struct {
	Backoff *struct {
		BaseInterval string `yaml:"base_interval"`
	} `yaml:"backoff"`
}

// stringValue is a google.protobuf.Any in its YAML form; Envoy hands the
// module the value of a StringValue as is.
type stringValue struct {
	Type  string `yaml:"@type"`
	Value string `yaml:"value"`
}

func (v *stringValue) bytes(field string) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	if v.Type != stringValueType {
		return nil, fmt.Errorf("%s.@type: unsupported %q: want %s", field, v.Type, stringValueType)
	}
	return []byte(v.Value), nil
}

// loadEnvoyConfig reads the first Wasm HTTP filter under
// static_resources.listeners of an Envoy bootstrap file and returns its plugin
// configuration and module filename ("" when code.local.filename is unset).
func loadEnvoyConfig(path string) (hostsim.PluginConfig, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return hostsim.PluginConfig{}, "", err
	}
	cfg, wasm, err := parseEnvoyConfig(data)
	if err != nil {
		return hostsim.PluginConfig{}, "", fmt.Errorf("%s: %w", path, err)
	}
	return cfg, wasm, nil
}

func parseEnvoyConfig(data []byte) (hostsim.PluginConfig, string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return hostsim.PluginConfig{}, "", err
	}
	listeners := mapValue(mapValue(&doc, "static_resources"), "listeners")
	filter := findWasmFilter(listeners)
	if filter == nil {
		return hostsim.PluginConfig{}, "", errors.New("static_resources.listeners: no HTTP filter with typed_config.@type " + wasmFilterType)
	}
	var w envoyWasm
	err := filter.Decode(&w)
	if err != nil {
		return hostsim.PluginConfig{}, "", fmt.Errorf("wasm filter: %w", valueFreeTypeError(err))
	}
	c := w.Config
	cfg := hostsim.PluginConfig{
		Name:     c.Name,
		RootID:   c.RootID,
		VMID:     c.VMConfig.VMID,
		FailOpen: c.FailOpen,
	}
	if cfg.FailurePolicy, err = failurePolicy(c.FailurePolicy); err != nil {
		return hostsim.PluginConfig{}, "", err
	}
	if c.FailOpen && cfg.FailurePolicy != hostsim.FailurePolicyUnspecified {
		// Envoy wasm.cc PluginConfig::PluginConfig throws this.
		return hostsim.PluginConfig{}, "", errors.New("config.failure_policy: only one of fail_open or failure_policy can be set")
	}
	if c.ReloadConfig != nil && c.ReloadConfig.Backoff != nil {
		if cfg.ReloadBackoff, err = baseInterval(c.ReloadConfig.Backoff.BaseInterval); err != nil {
			return hostsim.PluginConfig{}, "", err
		}
	}
	if cfg.Configuration, err = c.Configuration.bytes("config.configuration"); err != nil {
		return hostsim.PluginConfig{}, "", err
	}
	if cfg.VMConfiguration, err = c.VMConfig.Configuration.bytes("config.vm_config.configuration"); err != nil {
		return hostsim.PluginConfig{}, "", err
	}
	env := c.VMConfig.EnvironmentVariables
	if len(env.HostEnvKeys)+len(env.KeyValues) > 0 {
		cfg.Environment = make(map[string]string, len(env.HostEnvKeys)+len(env.KeyValues))
		for _, key := range env.HostEnvKeys {
			if v, ok := os.LookupEnv(key); ok {
				cfg.Environment[key] = v
			}
		}
		for k, v := range env.KeyValues {
			cfg.Environment[k] = v
		}
	}
	return cfg, c.VMConfig.Code.Local.Filename, nil
}

// failurePolicy reads envoy.extensions.wasm.v3.FailurePolicy in its YAML
// (proto JSON) form: the value's name or number.
func failurePolicy(v string) (hostsim.FailurePolicy, error) {
	switch v {
	case "", "UNSPECIFIED", "0":
		return hostsim.FailurePolicyUnspecified, nil
	case "FAIL_RELOAD", "1":
		return hostsim.FailurePolicyReload, nil
	case "FAIL_CLOSED", "2":
		return hostsim.FailurePolicyClosed, nil
	case "FAIL_OPEN", "3":
		return hostsim.FailurePolicyOpen, nil
	}
	return 0, fmt.Errorf("config.failure_policy: unknown %q: want FAIL_CLOSED, FAIL_OPEN or FAIL_RELOAD", v)
}

// baseInterval reads BackoffStrategy.base_interval, a google.protobuf.Duration
// in its proto JSON form ("1s", "0.25s"); Envoy requires it and at least 1ms.
func baseInterval(v string) (time.Duration, error) {
	const field = "config.reload_config.backoff.base_interval"
	if v == "" {
		return 0, errors.New(field + ": required")
	}
	secs, ok := strings.CutSuffix(v, "s")
	if !ok || secs == "" || strings.Trim(secs, "0123456789.") != "" {
		return 0, fmt.Errorf("%s: %q is not a duration in seconds such as \"1.5s\"", field, v)
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration in seconds such as \"1.5s\"", field, v)
	}
	if d < time.Millisecond {
		return 0, fmt.Errorf("%s: %q: must be at least 1ms", field, v)
	}
	return d, nil
}

// findWasmFilter returns the first typed_config, in document order, whose
// @type is the Wasm HTTP filter.
func findWasmFilter(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.AliasNode:
		return findWasmFilter(n.Alias)
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			if f := findWasmFilter(c); f != nil {
				return f
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			if key.Value == "typed_config" {
				if t := mapValue(value, "@type"); t != nil && t.Value == wasmFilterType {
					return resolveAlias(value)
				}
			}
			if f := findWasmFilter(value); f != nil {
				return f
			}
		}
	}
	return nil
}

// mapValue returns the value of key in a mapping node (or a document holding
// one), or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	n = resolveAlias(n)
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = resolveAlias(n.Content[0])
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolveAlias(n.Content[i+1])
		}
	}
	return nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// yamlTypeError is one of yaml.v3's type errors, which quote the first bytes
// of the scalar that did not fit ("cannot unmarshal !!str `SECRETV...` into
// main.stringValue").
var yamlTypeError = regexp.MustCompile("(?s)^line ([0-9]+): cannot unmarshal (\\S+).* into ([^`]+)$")

// valueFreeTypeError rewrites yaml.v3's type errors without the scalars they
// quote: the plugin configuration, and any other field, can hold real values.
func valueFreeTypeError(err error) error {
	var typeErr *yaml.TypeError
	if !errors.As(err, &typeErr) {
		return err
	}
	problems := make([]string, len(typeErr.Errors))
	for i, e := range typeErr.Errors {
		m := yamlTypeError.FindStringSubmatch(e)
		if m == nil {
			problems[i] = "a field has the wrong type"
			continue
		}
		into := m[3]
		if into == "main.stringValue" {
			into = "a google.protobuf.Any (a mapping with @type and value)"
		}
		problems[i] = fmt.Sprintf("line %s: a %s value cannot be decoded as %s", m[1], m[2], into)
	}
	return errors.New(strings.Join(problems, "; "))
}
