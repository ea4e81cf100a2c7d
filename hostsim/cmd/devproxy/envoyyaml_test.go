package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// shippedEnvoyYAML is the repository's envoy.yaml, wherever the test runs from.
func shippedEnvoyYAML() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "envoy.yaml")
}

// case-08: query strings can carry injected values, so no access log in the
// shipped envoy.yaml may print the request path with its query.
func TestShippedEnvoyAccessLogsLeaveOutQueries(t *testing.T) {
	data, err := os.ReadFile(shippedEnvoyYAML())
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var formats []string
	var walk func(v any, inAccessLog bool)
	walk = func(v any, inAccessLog bool) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				walk(child, inAccessLog || k == "access_log")
			}
		case []any:
			for _, child := range v {
				walk(child, inAccessLog)
			}
		case string:
			if inAccessLog && strings.Contains(v, "%") {
				formats = append(formats, v)
			}
		}
	}
	walk(doc, false)
	if len(formats) == 0 {
		t.Fatal("no access log format found: Envoy's default format prints the query")
	}
	for _, f := range formats {
		// Every command that can print the path must be the query-less one.
		rest := strings.ReplaceAll(f, "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%", "")
		for _, leak := range []string{"PATH", "%REQ(:path", "%REQUEST_HEADER(:PATH", "X-ENVOY-ORIGINAL-PATH"} {
			if strings.Contains(strings.ToUpper(rest), strings.ToUpper(leak)) {
				t.Errorf("access log format %q can print the query through %s", f, leak)
			}
		}
	}
}
