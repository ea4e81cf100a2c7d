//go:build e2e

// The e2e suite: requests through a real Envoy (e2e/docker-compose.yaml) to
// the recording upstream. Run it with `make e2e`, which builds and starts the
// stack; `go test -tags e2e ./e2e/...` alone skips when Docker or the stack
// is missing. Addresses come from SECRETGATE_E2E_* variables (see
// composeAddr); SECRETGATE_E2E_REQUIRE=1 turns the skips into failures.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// composeSecret is one fixture of the plugin configuration in e2e/envoy.yaml.
type composeSecret struct{ name, placeholder, value string }

var (
	composeOpenAI    = composeSecret{"OPENAI_API_KEY", "sgp_openai_000000000000000000001", "sk-test-OPENAI-aaaa1111"}
	composeOpenAIOrg = composeSecret{"OPENAI_ORG", "sgp_openaiorg_0000000000000000002", "org-test-FFFF6666"}
	composeAnthropic = composeSecret{"ANTHROPIC_API_KEY", "sgp_anthropic_0000000000000000003", "sk-ant-test-bbbb2222"} // deny
	composeGitHub    = composeSecret{"GITHUB_TOKEN", "sgp_github_000000000000000000004", "ghp_testCCCC3333"}           // deny
	composeGemini    = composeSecret{"GEMINI_API_KEY", "sgp_gemini_000000000000000000005", "AIza+test/DDDD=4444"}
	composeJira      = composeSecret{"JIRA_TOKEN", "sgp_jira_00000000000000000000006", "jira-test-EEEE5555"}
	composeSecrets   = []composeSecret{composeOpenAI, composeOpenAIOrg, composeAnthropic, composeGitHub, composeGemini, composeJira}
)

// composeAddr reads an address from the environment, with the compose
// file's published port as the default.
func composeAddr(env, def string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

var (
	composeEnvoyHTTPAddr  = composeAddr("SECRETGATE_E2E_ENVOY_HTTP", "127.0.0.1:10000")
	composeEnvoyTLSAddr   = composeAddr("SECRETGATE_E2E_ENVOY_TLS", "127.0.0.1:10443")
	composeEnvoyAdminAddr = composeAddr("SECRETGATE_E2E_ENVOY_ADMIN", "127.0.0.1:9901")
	composeRecordsAddr    = composeAddr("SECRETGATE_E2E_RECORDS", "127.0.0.1:18081")
)

// composeCertsDir holds e2e/gencerts' output; the tests need its client CAs.
func composeCertsDir() string {
	if v := os.Getenv("SECRETGATE_E2E_CERTS"); v != "" {
		return v
	}
	return filepath.Join(filepath.Dir(composeDir()), "build", "e2e", "certs")
}

// composeStack skips the test, or fails it under SECRETGATE_E2E_REQUIRE=1,
// unless docker is installed and Envoy's admin interface says ready.
func composeStack(t *testing.T) {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("SECRETGATE_E2E_REQUIRE") == "1" {
		skip = t.Fatalf
	}
	if _, err := exec.LookPath("docker"); err != nil {
		skip("e2e: docker not found; the e2e suite runs against a docker compose stack: install Docker and run `make e2e`")
		return
	}
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + composeEnvoyAdminAddr + "/ready")
	if err != nil {
		skip("e2e: the stack is not up (Envoy admin %s: %v); run `make e2e`", composeEnvoyAdminAddr, err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		skip("e2e: Envoy at %s is not ready (%s); run `make e2e`", composeEnvoyAdminAddr, resp.Status)
	}
}

// composeRecord is the upstream's JSON record of one request (e2e/upstream).
type composeRecord struct {
	Listener      string      `json:"listener"`
	TLSServerName string      `json:"tls_server_name"`
	Method        string      `json:"method"`
	Target        string      `json:"target"`
	Proto         string      `json:"proto"`
	Headers       [][2]string `json:"headers"`
	Body          string      `json:"body"`
}

// values returns every value of the header lines named name, in order.
func (r composeRecord) values(name string) []string {
	var out []string
	for _, h := range r.Headers {
		if strings.EqualFold(h[0], name) {
			out = append(out, h[1])
		}
	}
	return out
}

// composeID tags one request so the upstream's records can be found.
func composeID(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()) + "-" + hex.EncodeToString(b[:])
}

// composeRecords returns what reached the upstream with this id.
func composeRecords(t *testing.T, id string) []composeRecord {
	t.Helper()
	resp, err := http.Get("http://" + composeRecordsAddr + "/records?id=" + url.QueryEscape(id))
	if err != nil {
		t.Fatalf("records: %v", err)
	}
	defer resp.Body.Close()
	var recs []composeRecord
	if err := json.NewDecoder(resp.Body).Decode(&recs); err != nil {
		t.Fatalf("records: %v", err)
	}
	return recs
}

// composeOneRecord checks that exactly one request with this id reached the
// upstream, and that the reply the client got is that record.
func composeOneRecord(t *testing.T, id string, reply []byte) composeRecord {
	t.Helper()
	recs := composeRecords(t, id)
	if len(recs) != 1 {
		t.Fatalf("upstream got %d requests for this test, want 1", len(recs))
	}
	var got composeRecord
	if err := json.Unmarshal(reply, &got); err != nil {
		t.Fatalf("reply is not the upstream's record: %v (%d bytes)", err, len(reply))
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(recs[0])
	if !bytes.Equal(a, b) {
		t.Fatal("reply differs from the upstream's record")
	}
	return recs[0]
}

// composeNothingReached checks that no request with this id reached the upstream.
func composeNothingReached(t *testing.T, id string) {
	t.Helper()
	if recs := composeRecords(t, id); len(recs) != 0 {
		t.Errorf("upstream got %d requests for this test, want none", len(recs))
	}
}

// composeForms lists the encodings in which a value could leak: as is,
// percent-encoded (query injection), and base64 inside Basic credentials.
func composeForms(v string) []string {
	return []string{v, composePercentEncode(v),
		base64.StdEncoding.EncodeToString([]byte("x-access-token:" + v)),
		base64.StdEncoding.EncodeToString([]byte(v + ":"))}
}

// composeNoValue fails if data holds any secret's value in any form. It
// names the secret, never the value.
func composeNoValue(t *testing.T, where string, data []byte) {
	t.Helper()
	for _, s := range composeSecrets {
		for _, f := range composeForms(s.value) {
			if bytes.Contains(data, []byte(f)) {
				t.Errorf("%s holds the value of %s", where, s.name)
				break
			}
		}
	}
}

// composePercentEncode is the plugin's query encoding: unreserved bytes
// kept, every other byte %XX.
func composePercentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// composeProxyClient sends plain-HTTP requests through the forward proxy,
// as a sandbox with HTTP_PROXY set does (absolute-form targets).
func composeProxyClient() *http.Client {
	proxy := &url.URL{Scheme: "http", Host: composeEnvoyHTTPAddr}
	return &http.Client{
		Timeout:       20 * time.Second,
		Transport:     &http.Transport{Proxy: http.ProxyURL(proxy), DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// composePool reads a CA written by e2e/gencerts.
func composePool(t *testing.T, name string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(composeCertsDir(), "client", name))
	if err != nil {
		t.Fatalf("%v (make e2e writes it with e2e/gencerts)", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("%s: no certificate", name)
	}
	return pool
}

// composeTLSClient reaches any https:// URL through the interception
// listener, as a sandbox that resolves the hosts to Envoy does.
func composeTLSClient(t *testing.T, roots *x509.CertPool, h2 bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, composeEnvoyTLSAddr)
			},
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: h2,
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// composeDo sends req and returns the response with its whole body.
func composeDo(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func composeRequest(t *testing.T, method, rawURL, id string, header ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-e2e-id", id)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return req
}

// composeRaw is one HTTP/1.1 connection on which the test writes bytes the
// Go client would never send (two Host lines, a Host beside an
// absolute-form target) and reads the replies.
type composeRaw struct {
	conn net.Conn
	br   *bufio.Reader
}

func composeDialRaw(t *testing.T) *composeRaw {
	t.Helper()
	conn, err := net.DialTimeout("tcp", composeEnvoyHTTPAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	return &composeRaw{conn: conn, br: bufio.NewReader(conn)}
}

// roundTrip writes head (request line and header lines, without the blank
// line) and reads one response.
func (c *composeRaw) roundTrip(t *testing.T, method string, head ...string) (*http.Response, []byte) {
	t.Helper()
	if _, err := io.WriteString(c.conn, strings.Join(head, "\r\n")+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// composeH2Response is what one HTTP/2 stream got back.
type composeH2Response struct {
	status string
	header map[string][]string
	body   []byte
}

// composeH2 sends one request as raw HTTP/2 frames on conn, header fields
// exactly as given (a host field beside :authority, which Go's client never
// sends), and reads the response of stream 1.
func composeH2(t *testing.T, conn net.Conn, fields [][2]string) composeH2Response {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range fields {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			t.Fatal(err)
		}
	}
	err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true})
	if err != nil {
		t.Fatal(err)
	}
	resp := composeH2Response{header: map[string][]string{}}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading HTTP/2 frames: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					t.Fatal(err)
				}
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v", f.ErrCode)
		case *http2.RSTStreamFrame:
			t.Fatalf("stream reset: %v", f.ErrCode)
		case *http2.MetaHeadersFrame:
			if f.StreamID != 1 {
				continue
			}
			for _, hf := range f.Fields {
				if hf.Name == ":status" {
					resp.status = hf.Value
				} else {
					resp.header[hf.Name] = append(resp.header[hf.Name], hf.Value)
				}
			}
			if f.StreamEnded() {
				return resp
			}
		case *http2.DataFrame:
			if f.StreamID != 1 {
				continue
			}
			resp.body = append(resp.body, f.Data()...)
			if n := uint32(len(f.Data())); n > 0 {
				_ = fr.WriteWindowUpdate(0, n)
				_ = fr.WriteWindowUpdate(1, n)
			}
			if f.StreamEnded() {
				return resp
			}
		}
	}
}

// composeDenyBody is the plugin's 403 body for a request it refuses.
func composeDenyBody(secret, host string) string {
	return `{"error":"secret_not_allowed","secrets":["` + secret + `"],"host":"` + host + `"}`
}

func composeCheckDenied(t *testing.T, status int, contentType string, body []byte, secret, host string) {
	t.Helper()
	if status != http.StatusForbidden {
		t.Errorf("status %d, want 403", status)
	}
	if contentType != "application/json" {
		t.Errorf("content-type %q, want application/json", contentType)
	}
	if want := composeDenyBody(secret, host); string(body) != want {
		t.Errorf("body %q, want %q", body, want)
	}
}

func composeWant(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") || len(got) != len(want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// ---- mode a: the explicit HTTP forward proxy (:10000) ----

func TestE2EForwardProxyInjectsOnlyForAllowedHost(t *testing.T) {
	composeStack(t)
	c := composeProxyClient()

	id := composeID(t)
	resp, body := composeDo(t, c, composeRequest(t, "GET", "http://"+composeHostOpenAI+"/v1/models", id,
		"Authorization", "Bearer "+composeOpenAI.placeholder))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	rec := composeOneRecord(t, id, body)
	if rec.Listener != "https" || rec.TLSServerName != composeHostOpenAI {
		t.Errorf("reached the upstream on %s with SNI %q, want https with SNI %s", rec.Listener, rec.TLSServerName, composeHostOpenAI)
	}
	if rec.Method != "GET" || rec.Target != "/v1/models" {
		t.Errorf("request %s %s, want GET /v1/models", rec.Method, rec.Target)
	}
	composeWant(t, "host lines", rec.values("host"), []string{composeHostOpenAI})
	composeWant(t, "authorization", rec.values("authorization"), []string{"Bearer " + composeOpenAI.value})

	// The twins: the same request to hosts the secret does not allow
	// (passthrough) keeps the placeholder byte for byte.
	for _, host := range []string{composeHostEvil, composeHostAttacker, composeHostAnthropic} {
		id := composeID(t)
		resp, body := composeDo(t, c, composeRequest(t, "GET", "http://"+host+"/v1/models", id,
			"Authorization", "Bearer "+composeOpenAI.placeholder))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, want 200", host, resp.StatusCode)
		}
		rec := composeOneRecord(t, id, body)
		if rec.TLSServerName != host {
			t.Errorf("%s: reached the upstream with SNI %q", host, rec.TLSServerName)
		}
		composeWant(t, host+" authorization", rec.values("authorization"), []string{"Bearer " + composeOpenAI.placeholder})
		composeNoValue(t, host+" reply", body)
	}
}

func TestE2EForwardProxyDenyAnswers403AndSendsNothing(t *testing.T) {
	composeStack(t)
	c := composeProxyClient()
	for _, host := range []string{composeHostEvil, composeHostAttacker} {
		id := composeID(t)
		resp, body := composeDo(t, c, composeRequest(t, "GET", "http://"+host+"/user", id,
			"Authorization", "Bearer "+composeGitHub.placeholder))
		composeCheckDenied(t, resp.StatusCode, resp.Header.Get("Content-Type"), body, composeGitHub.name, host)
		composeNoValue(t, host+" reply", body)
		composeNothingReached(t, id)
	}
	// The twin: the same request to an allowed host is injected.
	id := composeID(t)
	resp, body := composeDo(t, c, composeRequest(t, "GET", "http://"+composeHostGitHubAPI+"/user", id,
		"Authorization", "Bearer "+composeGitHub.placeholder))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	rec := composeOneRecord(t, id, body)
	composeWant(t, "authorization", rec.values("authorization"), []string{"Bearer " + composeGitHub.value})
}

// TestE2EDenyRepliesInEnvoysGrpcAndHeadForms: Envoy shapes the plugin's 403
// for the client (Utility::prepareLocalReply): a gRPC request gets a
// trailers-only 200 whose grpc-status is 7 (PERMISSION_DENIED) and whose
// grpc-message is the body; a HEAD request gets the headers only. hostsim and
// the dev proxy model the same forms.
func TestE2EDenyRepliesInEnvoysGrpcAndHeadForms(t *testing.T) {
	composeStack(t)
	c := composeProxyClient()
	deny := composeDenyBody(composeGitHub.name, composeHostEvil)

	id := composeID(t)
	resp, body := composeDo(t, c, composeRequest(t, "POST", "http://"+composeHostEvil+"/helloworld.Greeter/SayHello", id,
		"Authorization", "Bearer "+composeGitHub.placeholder, "Content-Type", "application/grpc"))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/grpc" ||
		resp.Header.Get("Grpc-Status") != "7" || resp.Header.Get("Grpc-Message") != deny || len(body) != 0 {
		t.Errorf("gRPC deny = %d %v %q; want 200, application/grpc, grpc-status 7, grpc-message %q, no body", resp.StatusCode, resp.Header, body, deny)
	}
	composeNothingReached(t, id)

	id = composeID(t)
	resp, body = composeDo(t, c, composeRequest(t, "HEAD", "http://"+composeHostEvil+"/user", id,
		"Authorization", "Bearer "+composeGitHub.placeholder))
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") != "application/json" ||
		resp.Header.Get("Content-Length") != fmt.Sprint(len(deny)) || len(body) != 0 {
		t.Errorf("HEAD deny = %d %v %q; want 403, application/json, content-length %d, no body", resp.StatusCode, resp.Header, body, len(deny))
	}
	composeNothingReached(t, id)
}

func TestE2EForwardProxyBasicCredentials(t *testing.T) {
	composeStack(t)
	c := composeProxyClient()
	basic := func(userinfo string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(userinfo)) }

	for _, tc := range []struct{ host, sent, want string }{
		{composeHostGitHub, basic("x-access-token:" + composeGitHub.placeholder), basic("x-access-token:" + composeGitHub.value)},
		{composeHostGitHubAPI, basic(composeGitHub.placeholder + ":"), basic(composeGitHub.value + ":")},
		{composeHostGitHub, "Basic !!!not-base64!!!", "Basic !!!not-base64!!!"},
	} {
		id := composeID(t)
		resp, body := composeDo(t, c, composeRequest(t, "GET", "http://"+tc.host+"/info/refs", id, "Authorization", tc.sent))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, want 200", tc.host, resp.StatusCode)
		}
		rec := composeOneRecord(t, id, body)
		composeWant(t, tc.host+" authorization", rec.values("authorization"), []string{tc.want})
	}
	// The twin: GITHUB_TOKEN is on deny, so Basic credentials holding its
	// placeholder are refused at another host, nothing decoded upstream.
	id := composeID(t)
	resp, body := composeDo(t, c, composeRequest(t, "GET", "http://"+composeHostEvil+"/info/refs", id,
		"Authorization", basic("x-access-token:"+composeGitHub.placeholder)))
	composeCheckDenied(t, resp.StatusCode, resp.Header.Get("Content-Type"), body, composeGitHub.name, composeHostEvil)
	composeNothingReached(t, id)
}

func TestE2EForwardProxyQueryString(t *testing.T) {
	composeStack(t)
	c := composeProxyClient()
	ph := composeGemini.placeholder
	for _, tc := range []struct{ host, path, want string }{
		{composeHostGemini, "/v1beta/models?key=" + ph + "&pageSize=5", "/v1beta/models?key=AIza%2Btest%2FDDDD%3D4444&pageSize=5"},
		{composeHostGemini, "/v1beta/models?key=" + strings.ReplaceAll(ph, "_", "%5F") + "&pageSize=5",
			"/v1beta/models?key=AIza%2Btest%2FDDDD%3D4444&pageSize=5"},
		{composeHostGemini, "/v1beta/models?pageSize=5&key=" + ph + "&alt=" + ph,
			"/v1beta/models?pageSize=5&key=AIza%2Btest%2FDDDD%3D4444&alt=AIza%2Btest%2FDDDD%3D4444"},
		// The twin: not allowed, passthrough: the target is byte-identical.
		{composeHostEvil, "/v1beta/models?key=" + ph + "&pageSize=5", "/v1beta/models?key=" + ph + "&pageSize=5"},
	} {
		id := composeID(t)
		req := composeRequest(t, "GET", "http://"+tc.host+"/", id)
		req.URL.Opaque = "//" + tc.host + tc.path // sent exactly, not re-encoded
		resp, body := composeDo(t, c, req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s%s: status %d, want 200", tc.host, tc.path, resp.StatusCode)
		}
		rec := composeOneRecord(t, id, body)
		if rec.Target != tc.want {
			t.Errorf("%s: upstream target %q, want %q", tc.host, rec.Target, tc.want)
		}
		if tc.host != composeHostGemini {
			composeNoValue(t, tc.host+" reply", body)
		}
	}
}

// TestE2EForwardProxyWildcardHost: JIRA_TOKEN allows *.atlassian.net.
func TestE2EForwardProxyWildcardHost(t *testing.T) {
	composeStack(t)
	c := composeProxyClient()
	for _, tc := range []struct{ host, want string }{
		{composeHostJira, composeJira.value},
		{composeHostAttacker, composeJira.placeholder},
	} {
		id := composeID(t)
		resp, body := composeDo(t, c, composeRequest(t, "GET", "http://"+tc.host+"/rest/api/2/myself", id,
			"Authorization", "Bearer "+composeJira.placeholder))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, want 200", tc.host, resp.StatusCode)
		}
		rec := composeOneRecord(t, id, body)
		composeWant(t, tc.host+" authorization", rec.values("authorization"), []string{"Bearer " + tc.want})
	}
}

// TestE2ERepeatedHeadersKeepOrderAndCount is case-06 through Envoy's codec:
// every occurrence injected, line order and count kept.
func TestE2ERepeatedHeadersKeepOrderAndCount(t *testing.T) {
	composeStack(t)
	id := composeID(t)
	raw := composeDialRaw(t)
	ph, org := composeOpenAI.placeholder, composeOpenAIOrg.placeholder
	resp, body := raw.roundTrip(t, "GET",
		"GET http://"+composeHostOpenAI+"/v1/models HTTP/1.1",
		"Host: "+composeHostOpenAI,
		"x-e2e-id: "+id,
		"Authorization: Bearer "+ph,
		"X-Api-Key: "+ph,
		"X-Api-Key: "+ph,
		"X-Custom: a="+ph+"; b="+org+"; c="+ph,
		"Connection: close")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	rec := composeOneRecord(t, id, body)
	var got []string
	for _, h := range rec.Headers {
		switch h[0] {
		case "authorization", "x-api-key", "x-custom":
			got = append(got, h[0]+": "+h[1])
		}
	}
	v, o := composeOpenAI.value, composeOpenAIOrg.value
	composeWant(t, "header lines", got, []string{
		"authorization: Bearer " + v,
		"x-api-key: " + v,
		"x-api-key: " + v,
		"x-custom: a=" + v + "; b=" + o + "; c=" + v,
	})
}

// TestE2EAbsoluteFormTargetWinsOverHost: Envoy's HTTP/1 codec replaces the
// Host header with the absolute-form target's authority (RFC 9112 3.2.2),
// so the host the plugin judges is the host the request goes to.
func TestE2EAbsoluteFormTargetWinsOverHost(t *testing.T) {
	composeStack(t)
	for _, tc := range []struct{ target, hostLine, wantHost, wantAuth string }{
		{composeHostOpenAI, composeHostEvil, composeHostOpenAI, "Bearer " + composeOpenAI.value},
		{composeHostEvil, composeHostOpenAI, composeHostEvil, "Bearer " + composeOpenAI.placeholder},
	} {
		id := composeID(t)
		raw := composeDialRaw(t)
		resp, body := raw.roundTrip(t, "GET",
			"GET http://"+tc.target+"/v1/models HTTP/1.1",
			"Host: "+tc.hostLine,
			"x-e2e-id: "+id,
			"Authorization: Bearer "+composeOpenAI.placeholder,
			"Connection: close")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("target %s, Host %s: status %d, want 200", tc.target, tc.hostLine, resp.StatusCode)
		}
		rec := composeOneRecord(t, id, body)
		if rec.TLSServerName != tc.wantHost {
			t.Errorf("target %s, Host %s: went to %q, want %s", tc.target, tc.hostLine, rec.TLSServerName, tc.wantHost)
		}
		composeWant(t, "host lines", rec.values("host"), []string{tc.wantHost})
		composeWant(t, "authorization", rec.values("authorization"), []string{tc.wantAuth})
		if tc.wantHost != composeHostOpenAI {
			composeNoValue(t, "reply from "+tc.wantHost, body)
		}
	}
}

// TestE2ETwoHostLinesFailClosed: Envoy folds two Host lines into one
// :authority, "api.openai.com,evil.example" (',' passes its authority
// check). The dynamic forward proxy filter, which runs before the plugin,
// cannot resolve that name and answers 503 (dns_resolution_failure):
// nothing is sent anywhere. The plugin would allow no secret for it either.
func TestE2ETwoHostLinesFailClosed(t *testing.T) {
	composeStack(t)
	for _, hosts := range [][2]string{{composeHostOpenAI, composeHostEvil}, {composeHostEvil, composeHostOpenAI}} {
		id := composeID(t)
		raw := composeDialRaw(t)
		resp, body := raw.roundTrip(t, "GET",
			"GET /v1/models HTTP/1.1",
			"Host: "+hosts[0],
			"Host: "+hosts[1],
			"x-e2e-id: "+id,
			"Authorization: Bearer "+composeOpenAI.placeholder,
			"Connection: close")
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("Host %s then %s: status %d, want 503", hosts[0], hosts[1], resp.StatusCode)
		}
		composeNoValue(t, "reply", body)
		composeNothingReached(t, id)
	}
}

// TestE2EConnectRefused: CONNECT would tunnel around the plugin. With no
// upgrade_configs Envoy answers 403 with an empty body (upgrade_failed), and
// nothing reaches the upstream: neither the CONNECT nor a request written
// after it on the same connection, which a refused tunnel must not smuggle.
func TestE2EConnectRefused(t *testing.T) {
	composeStack(t)
	id := composeID(t)
	raw := composeDialRaw(t)
	resp, body := raw.roundTrip(t, "CONNECT",
		"CONNECT "+composeHostOpenAI+":443 HTTP/1.1",
		"Host: "+composeHostOpenAI+":443",
		"x-e2e-id: "+id,
		"Authorization: Bearer "+composeOpenAI.placeholder)
	if resp.StatusCode != http.StatusForbidden || len(body) != 0 {
		t.Errorf("status %d with %d body bytes, want 403 and an empty body", resp.StatusCode, len(body))
	}
	smuggled := composeID(t)
	_, _ = io.WriteString(raw.conn, "GET http://"+composeHostOpenAI+"/v1/models HTTP/1.1\r\nHost: "+composeHostOpenAI+
		"\r\nx-e2e-id: "+smuggled+"\r\nAuthorization: Bearer "+composeOpenAI.placeholder+"\r\n\r\n")
	// Whatever Envoy does with those bytes (it closes the connection), give
	// it time to do it before looking at the upstream.
	_ = raw.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, _ = io.Copy(io.Discard, raw.br)
	composeNothingReached(t, id)
	composeNothingReached(t, smuggled)
}

// TestE2EWebSocketUpgradeRefused: an upgrade would carry bytes the plugin
// never sees. With no upgrade_configs Envoy answers 403 with an empty body
// before any filter runs, to an allowed host too, and nothing reaches the
// upstream.
func TestE2EWebSocketUpgradeRefused(t *testing.T) {
	composeStack(t)
	id := composeID(t)
	raw := composeDialRaw(t)
	resp, body := raw.roundTrip(t, http.MethodGet,
		"GET http://"+composeHostOpenAI+"/v1/realtime HTTP/1.1",
		"Host: "+composeHostOpenAI,
		"Upgrade: websocket",
		"Connection: Upgrade",
		"Sec-WebSocket-Version: 13",
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
		"x-e2e-id: "+id,
		"Authorization: Bearer "+composeOpenAI.placeholder)
	if resp.StatusCode != http.StatusForbidden || len(body) != 0 {
		t.Errorf("status %d with %d body bytes, want 403 and an empty body", resp.StatusCode, len(body))
	}
	composeNothingReached(t, id)
}

// TestE2EDenyThenNextRequestOnSameConnection: after the plugin's 403 the
// connection stays usable (the filter returned Pause after its local reply).
func TestE2EDenyThenNextRequestOnSameConnection(t *testing.T) {
	composeStack(t)
	raw := composeDialRaw(t)
	denied := composeID(t)
	resp, body := raw.roundTrip(t, "GET",
		"GET http://"+composeHostEvil+"/user HTTP/1.1",
		"Host: "+composeHostEvil,
		"x-e2e-id: "+denied,
		"Authorization: Bearer "+composeGitHub.placeholder)
	composeCheckDenied(t, resp.StatusCode, resp.Header.Get("Content-Type"), body, composeGitHub.name, composeHostEvil)
	if resp.Close {
		t.Fatal("Envoy closed the connection after the 403")
	}
	next := composeID(t)
	resp, body = raw.roundTrip(t, "GET",
		"GET http://"+composeHostGitHubAPI+"/user HTTP/1.1",
		"Host: "+composeHostGitHubAPI,
		"x-e2e-id: "+next,
		"Authorization: Bearer "+composeGitHub.placeholder,
		"Connection: close")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("second request: status %d, want 200", resp.StatusCode)
	}
	rec := composeOneRecord(t, next, body)
	composeWant(t, "authorization", rec.values("authorization"), []string{"Bearer " + composeGitHub.value})
	composeNothingReached(t, denied)
}

// TestE2EHTTP2HostBesideAuthorityIsDiscarded: over HTTP/2 (h2c prior
// knowledge on the forward proxy), Envoy drops a host field sent beside
// :authority (runtime guard http2_discard_host_header, on by default): the
// request goes to :authority, which is what the plugin judged.
func TestE2EHTTP2HostBesideAuthorityIsDiscarded(t *testing.T) {
	composeStack(t)
	for _, tc := range []struct{ authority, host, wantAuth string }{
		{composeHostOpenAI, composeHostEvil, "Bearer " + composeOpenAI.value},
		{composeHostEvil, composeHostOpenAI, "Bearer " + composeOpenAI.placeholder},
	} {
		id := composeID(t)
		conn, err := net.DialTimeout("tcp", composeEnvoyHTTPAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		resp := composeH2(t, conn, [][2]string{
			{":method", "GET"}, {":scheme", "http"}, {":authority", tc.authority}, {":path", "/v1/models"},
			{"host", tc.host}, {"x-e2e-id", id}, {"authorization", "Bearer " + composeOpenAI.placeholder},
		})
		conn.Close()
		if resp.status != "200" {
			t.Fatalf(":authority %s, host %s: status %s, want 200", tc.authority, tc.host, resp.status)
		}
		rec := composeOneRecord(t, id, resp.body)
		if rec.TLSServerName != tc.authority {
			t.Errorf(":authority %s, host %s: went to %q", tc.authority, tc.host, rec.TLSServerName)
		}
		composeWant(t, "host lines", rec.values("host"), []string{tc.authority})
		composeWant(t, "authorization", rec.values("authorization"), []string{tc.wantAuth})
		if tc.authority != composeHostOpenAI {
			composeNoValue(t, "reply from "+tc.authority, resp.body)
		}
	}
}

// ---- mode b: TLS interception (:10443) ----

func TestE2EInterceptionInjectsOverHTTP1AndHTTP2(t *testing.T) {
	composeStack(t)
	session := composePool(t, "session-ca.crt")
	for _, h2 := range []bool{false, true} {
		id := composeID(t)
		resp, body := composeDo(t, composeTLSClient(t, session, h2), composeRequest(t, "GET", "https://"+composeHostOpenAI+"/v1/models", id,
			"Authorization", "Bearer "+composeOpenAI.placeholder))
		wantProto := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]
		if resp.StatusCode != http.StatusOK || resp.Proto != wantProto {
			t.Fatalf("%s %d, want %s 200", resp.Proto, resp.StatusCode, wantProto)
		}
		if issuer := resp.TLS.PeerCertificates[0].Issuer.CommonName; !strings.Contains(issuer, "session CA") {
			t.Errorf("Envoy presented a certificate from %q, want the session CA", issuer)
		}
		rec := composeOneRecord(t, id, body)
		if rec.TLSServerName != composeHostOpenAI || rec.Proto != "HTTP/1.1" {
			t.Errorf("re-originated with SNI %q over %s, want %s over HTTP/1.1", rec.TLSServerName, rec.Proto, composeHostOpenAI)
		}
		composeWant(t, "authorization", rec.values("authorization"), []string{"Bearer " + composeOpenAI.value})
	}
}

// TestE2EInterceptionDeny: ANTHROPIC_API_KEY is on deny; its placeholder
// sent to api.openai.com on the intercepted connection is refused.
func TestE2EInterceptionDeny(t *testing.T) {
	composeStack(t)
	c := composeTLSClient(t, composePool(t, "session-ca.crt"), false)
	id := composeID(t)
	resp, body := composeDo(t, c, composeRequest(t, "POST", "https://"+composeHostOpenAI+"/v1/messages", id,
		"X-Api-Key", composeAnthropic.placeholder))
	composeCheckDenied(t, resp.StatusCode, resp.Header.Get("Content-Type"), body, composeAnthropic.name, composeHostOpenAI)
	composeNothingReached(t, id)

	// The twin: at its own host the placeholder is injected.
	id = composeID(t)
	resp, body = composeDo(t, c, composeRequest(t, "POST", "https://"+composeHostAnthropic+"/v1/messages", id,
		"X-Api-Key", composeAnthropic.placeholder))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	rec := composeOneRecord(t, id, body)
	composeWant(t, "x-api-key", rec.values("x-api-key"), []string{composeAnthropic.value})
}

// TestE2EInterceptionOtherHostOnConnectionIsMisdirected: a request for
// another host on a connection intercepted for api.openai.com gets 421 and
// goes nowhere, over HTTP/1.1 and over HTTP/2 (where a host field beside
// :authority is dropped, so :authority decides).
func TestE2EInterceptionOtherHostOnConnectionIsMisdirected(t *testing.T) {
	composeStack(t)
	session := composePool(t, "session-ca.crt")
	id := composeID(t)
	req := composeRequest(t, "GET", "https://"+composeHostOpenAI+"/v1/models", id, "Authorization", "Bearer "+composeOpenAI.placeholder)
	req.Host = composeHostEvil
	resp, body := composeDo(t, composeTLSClient(t, session, false), req)
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("HTTP/1.1 Host %s on the %s connection: status %d, want 421", composeHostEvil, composeHostOpenAI, resp.StatusCode)
	}
	composeNoValue(t, "reply", body)
	composeNothingReached(t, id)

	for _, tc := range []struct{ authority, host, status string }{
		{composeHostEvil, composeHostOpenAI, "421"},
		{composeHostOpenAI, composeHostEvil, "200"},
	} {
		id := composeID(t)
		conn, err := tls.Dial("tcp", composeEnvoyTLSAddr, &tls.Config{RootCAs: session, ServerName: composeHostOpenAI, NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Fatalf("ALPN %q, want h2", p)
		}
		resp := composeH2(t, conn, [][2]string{
			{":method", "GET"}, {":scheme", "https"}, {":authority", tc.authority}, {":path", "/v1/models"},
			{"host", tc.host}, {"x-e2e-id", id}, {"authorization", "Bearer " + composeOpenAI.placeholder},
		})
		conn.Close()
		if resp.status != tc.status {
			t.Fatalf("HTTP/2 :authority %s, host %s: status %s, want %s", tc.authority, tc.host, resp.status, tc.status)
		}
		if tc.status != "200" {
			composeNoValue(t, "reply", resp.body)
			composeNothingReached(t, id)
			continue
		}
		rec := composeOneRecord(t, id, resp.body)
		composeWant(t, "host lines", rec.values("host"), []string{composeHostOpenAI})
		composeWant(t, "authorization", rec.values("authorization"), []string{"Bearer " + composeOpenAI.value})
	}
}

// TestE2EInterceptionPassesOtherNamesThroughUninspected: a TLS name with no
// interception chain is relayed as TCP: the client talks TLS with the real
// server (its certificate, not the session CA's), and the plugin never sees
// the request, so even a deny secret's placeholder arrives unchanged.
func TestE2EInterceptionPassesOtherNamesThroughUninspected(t *testing.T) {
	composeStack(t)
	c := composeTLSClient(t, composePool(t, "upstream-ca.crt"), false)
	for _, host := range []string{composeHostEvil, composeHostJira} {
		id := composeID(t)
		resp, body := composeDo(t, c, composeRequest(t, "GET", "https://"+host+"/user", id,
			"Authorization", "Bearer "+composeGitHub.placeholder))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, want 200", host, resp.StatusCode)
		}
		if issuer := resp.TLS.PeerCertificates[0].Issuer.CommonName; !strings.Contains(issuer, "upstream CA") {
			t.Errorf("%s: certificate from %q, want the upstream's own", host, issuer)
		}
		rec := composeOneRecord(t, id, body)
		if rec.TLSServerName != host {
			t.Errorf("%s: upstream saw SNI %q", host, rec.TLSServerName)
		}
		composeWant(t, host+" authorization", rec.values("authorization"), []string{"Bearer " + composeGitHub.placeholder})
		composeNoValue(t, host+" reply", body)
	}
}

// ---- failing closed, and what Envoy itself shows ----

// TestE2EBadConfigurationFailsClosed starts Envoy with a plugin
// configuration the module rejects (e2e/testdata/envoy-badconfig.yaml).
// Envoy configures the plugin on a canary VM while it builds the static
// listener; proxy_on_configure returns false, so the wasm filter factory
// throws "Unable to create Wasm HTTP filter secretgate", the server logs it
// as "error initializing config '<path>': ..." and main returns status 1
// before anything listens: nothing can reach an upstream.
func TestE2EBadConfigurationFailsClosed(t *testing.T) {
	composeStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "compose", "-f", filepath.Join(composeDir(), "docker-compose.yaml"),
		"--profile", "badconfig", "run", "--rm", "--no-deps", "-T", "envoy-badconfig")
	out, err := cmd.CombinedOutput()
	// The output is printed on failure: the rejected value must not be.
	value := []byte("custom-test-BADCONFIG-9999")
	if bytes.Contains(out, value) {
		t.Error("Envoy's log holds the rejected configuration's value")
		out = bytes.ReplaceAll(out, value, []byte("<value>"))
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("bad-config Envoy: %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{composeBadConfigError, "Unable to create Wasm HTTP filter secretgate", "error initializing config '"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("Envoy's log lacks %q\n%s", want, out)
		}
	}
	if bytes.Contains(out, []byte("starting main dispatch loop")) {
		t.Error("Envoy started serving")
	}
}

// TestE2EEnvoyLogsAndStatsHoldNoValue: after the requests above (and one
// of its own, so that it also runs alone), neither Envoy's logs, access log
// included, nor its stats hold a value or a query string.
func TestE2EEnvoyLogsAndStatsHoldNoValue(t *testing.T) {
	composeStack(t)
	id := composeID(t)
	req := composeRequest(t, "GET", "http://"+composeHostGemini+"/", id)
	req.URL.Opaque = "//" + composeHostGemini + "/v1beta/models/e2e-log-check?key=" + composeGemini.placeholder + "&pageSize=5"
	if resp, _ := composeDo(t, composeProxyClient(), req); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	// Envoy flushes its access log every few seconds.
	var logs []byte
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Second) {
		out, err := exec.Command("docker", "compose", "-f", filepath.Join(composeDir(), "docker-compose.yaml"),
			"logs", "--no-color", "envoy").CombinedOutput()
		if err != nil {
			t.Fatalf("docker compose logs: %v\n%s", err, out)
		}
		logs = out
		if bytes.Contains(logs, []byte("GET /v1beta/models/e2e-log-check HTTP/1.1")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the access log has no line for GET /v1beta/models/e2e-log-check")
		}
	}
	composeNoValue(t, "Envoy's log", logs)
	if bytes.Contains(logs, []byte("pageSize=5")) {
		t.Error("the access log prints query strings")
	}
	resp, err := http.Get("http://" + composeEnvoyAdminAddr + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	stats, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	composeNoValue(t, "Envoy's /stats", stats)
}
