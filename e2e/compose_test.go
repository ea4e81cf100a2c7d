package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"

	"github.com/secretgate/secretgate/policies"
)

// composeEnvoyTag is the one Envoy release the suite runs and the README claims.
const composeEnvoyTag = "v1.40.0"

// Hosts the e2e tests send requests to; the upstream must answer for each.
const (
	composeHostOpenAI    = "api.openai.com"
	composeHostAnthropic = "api.anthropic.com"
	composeHostGitHub    = "github.com"
	composeHostGitHubAPI = "api.github.com"
	composeHostGemini    = "generativelanguage.googleapis.com"
	composeHostJira      = "acme.atlassian.net"
	composeHostEvil      = "evil.example"
	composeHostAttacker  = "attacker.test"
)

var composeTestHosts = []string{composeHostOpenAI, composeHostAnthropic, composeHostGitHub, composeHostGitHubAPI,
	composeHostGemini, composeHostJira, composeHostEvil, composeHostAttacker}

// composeDir is this package's directory, wherever the test runs from.
func composeDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// composeLoad parses e2e/docker-compose.yaml as `docker compose` does: from
// its own directory, with the environment interpolated, the model validated
// and every profile's services included.
func composeLoad(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"docker-compose.yaml"},
		cli.WithWorkingDirectory(composeDir()),
		cli.WithOsEnv,
		cli.WithInterpolation(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
		cli.WithProfiles([]string{"*"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Services) != 3 || len(p.DisabledServices) != 0 {
		t.Fatalf("services %v, disabled %v: want envoy, envoy-badconfig, upstream all loaded", p.ServiceNames(), p.DisabledServiceNames())
	}
	return p
}

func composeService(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("no service %s", name)
	}
	return s
}

func TestComposeEnvoyImagePinned(t *testing.T) {
	p := composeLoad(t)
	var envoys []string
	for _, s := range p.Services {
		repo, tag, _ := strings.Cut(s.Image, ":")
		if repo != "envoyproxy/envoy" {
			continue
		}
		envoys = append(envoys, s.Name)
		if tag != composeEnvoyTag {
			t.Errorf("%s: image %s, want envoyproxy/envoy:%s", s.Name, s.Image, composeEnvoyTag)
		}
		major, minor, ok := composeVersion(tag)
		if !ok || major != 1 || minor < 33 {
			t.Errorf("%s: tag %s is not an exact release v1.33.0 or later", s.Name, tag)
		}
	}
	sort.Strings(envoys)
	if strings.Join(envoys, ",") != "envoy,envoy-badconfig" {
		t.Errorf("services running envoyproxy/envoy: %v, want envoy and envoy-badconfig", envoys)
	}
}

func TestComposeVersionParsing(t *testing.T) {
	for tag, want := range map[string]bool{"v1.40.0": true, "v1.33.2": true, "v1.32.9": false, "latest": false,
		"v1.40": false, "v1.40.0-dev": false, "v2.0.0": true, "dev-1.40.0": false} {
		major, minor, ok := composeVersion(tag)
		if got := ok && (major > 1 || minor >= 33); got != want {
			t.Errorf("%s: accepted %v, want %v", tag, got, want)
		}
	}
}

// composeVersion reads an exact release tag vMAJOR.MINOR.PATCH.
func composeVersion(tag string) (major, minor int, ok bool) {
	parts := strings.Split(strings.TrimPrefix(tag, "v"), ".")
	if !strings.HasPrefix(tag, "v") || len(parts) != 3 {
		return 0, 0, false
	}
	var n [3]int
	for i, s := range parts {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || strconv.Itoa(v) != s {
			return 0, 0, false
		}
		n[i] = v
	}
	return n[0], n[1], true
}

func TestComposePortsOnLoopbackOnly(t *testing.T) {
	p := composeLoad(t)
	published := map[string]string{}
	for _, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %d published on %q, want 127.0.0.1", s.Name, port.Target, port.HostIP)
			}
			published[port.Published] = s.Name + ":" + strconv.Itoa(int(port.Target))
		}
	}
	// The tests' defaults (composeEnvoy*Addr, composeRecordsAddr) reach these.
	want := map[string]string{"10000": "envoy:10000", "10443": "envoy:10443", "9901": "envoy:9901", "18081": "upstream:8081"}
	if len(published) != len(want) {
		t.Errorf("published ports %v, want %v", published, want)
	}
	for host, target := range want {
		if published[host] != target {
			t.Errorf("host port %s goes to %q, want %s", host, published[host], target)
		}
	}
}

func TestComposeUpstreamAnswersForEveryTestHost(t *testing.T) {
	p := composeLoad(t)
	up := composeService(t, p, "upstream")
	net, ok := up.Networks["default"]
	if !ok || net == nil {
		t.Fatal("upstream is not on the default network with aliases")
	}
	aliases := map[string]bool{}
	for _, a := range net.Aliases {
		aliases[a] = true
	}
	for _, h := range composeTestHosts {
		if !aliases[h] {
			t.Errorf("upstream has no network alias %s", h)
		}
	}
	if up.Build == nil {
		t.Fatal("upstream is not built from e2e/upstream")
	}
	if rel, _ := filepath.Rel(composeDir(), up.Build.Context); rel != "upstream" {
		t.Errorf("upstream build context %s, want e2e/upstream", up.Build.Context)
	}
}

// TestComposeMountsResolve follows every file a container reads through the
// service's bind mounts back to the host: each must be in the repository or
// be what `make e2e` builds (build/secretgate.wasm and the output of
// e2e/gencerts, generated here into a temporary build tree).
func TestComposeMountsResolve(t *testing.T) {
	p := composeLoad(t)
	root := filepath.Dir(composeDir())
	built := t.TempDir()
	gen := exec.Command("go", "run", "./gencerts", "-out", filepath.Join(built, "build", "e2e", "certs"))
	gen.Dir = composeDir()
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("go run ./gencerts: %v\n%s", err, out)
	}
	// hostFile says where a host path is found: in the repository, or in
	// the temporary build tree for paths under build/.
	hostFile := func(hostPath string) (string, bool) {
		rel, err := filepath.Rel(root, hostPath)
		if err != nil || strings.HasPrefix(rel, "..") {
			return "", false
		}
		rel = filepath.ToSlash(rel)
		if rel == "build/secretgate.wasm" {
			return hostPath, true // `make build`, run by make e2e
		}
		if strings.HasPrefix(rel, "build/") {
			return filepath.Join(built, filepath.FromSlash(rel)), true
		}
		return hostPath, true
	}
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				t.Errorf("%s: volume %s is %s, want a bind mount", s.Name, v.Target, v.Type)
				continue
			}
			if !v.ReadOnly {
				t.Errorf("%s: %s is mounted writable", s.Name, v.Target)
			}
			f, ok := hostFile(v.Source)
			if !ok {
				t.Errorf("%s: mounts %s from outside the repository", s.Name, v.Source)
				continue
			}
			if _, err := os.Stat(f); err != nil && f != filepath.Join(root, "build", "secretgate.wasm") {
				t.Errorf("%s: mount source %s: %v", s.Name, v.Source, err)
			}
		}
	}
	// inContainer maps a container path of service s to the host file.
	inContainer := func(s types.ServiceConfig, path string) string {
		best := ""
		var src string
		for _, v := range s.Volumes {
			if (path == v.Target || strings.HasPrefix(path, v.Target+"/")) && len(v.Target) > len(best) {
				best, src = v.Target, v.Source+strings.TrimPrefix(path, v.Target)
			}
		}
		if best == "" {
			return ""
		}
		f, _ := hostFile(src)
		return f
	}
	for _, name := range []string{"envoy", "envoy-badconfig"} {
		s := composeService(t, p, name)
		cfg := inContainer(s, "/etc/envoy/envoy.yaml")
		if cfg == "" {
			t.Fatalf("%s: /etc/envoy/envoy.yaml is not mounted", name)
		}
		data, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		files := composeEnvoyFilenames(t, data)
		if len(files) == 0 {
			t.Fatalf("%s: no filename in %s", name, cfg)
		}
		for _, f := range files {
			host := inContainer(s, f)
			switch {
			case host == "":
				t.Errorf("%s: %s reads %s, which no volume provides", name, cfg, f)
			case host == filepath.Join(root, "build", "secretgate.wasm"):
			default:
				if _, err := os.Stat(host); err != nil {
					t.Errorf("%s: %s reads %s: %v", name, cfg, f, err)
				}
			}
		}
	}
	up := composeService(t, p, "upstream")
	cmd := strings.Join(up.Command, " ")
	for _, f := range []string{"/certs/server.crt", "/certs/server.key"} {
		if !strings.Contains(cmd, f) {
			t.Errorf("upstream command %q does not name %s", cmd, f)
		}
		if _, err := os.Stat(inContainer(up, f)); err != nil {
			t.Errorf("upstream reads %s: %v", f, err)
		}
	}
	// The upstream's certificate must verify, for every alias, against the
	// CA Envoy trusts upstream.
	envoy := composeService(t, p, "envoy")
	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(inContainer(envoy, "/etc/secretgate/upstream-ca.crt"))
	if err != nil || !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("envoy's upstream CA: %v", err)
	}
	leaf := composeLeaf(t, inContainer(up, "/certs/server.crt"))
	for _, h := range up.Networks["default"].Aliases {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: h}); err != nil {
			t.Errorf("upstream certificate for alias %s: %v", h, err)
		}
	}
}

func composeLeaf(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// composeEnvoyFilenames returns every `filename` value in an Envoy config.
func composeEnvoyFilenames(t *testing.T, data []byte) []string {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if s, ok := e.(string); ok && k == "filename" {
					out = append(out, s)
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
	sort.Strings(out)
	return out
}

// TestComposeBadConfigIsValidEnvoyButRejectedByThePlugin pins why the
// bad-config Envoy must refuse to start: its bootstrap is valid, only the
// plugin configuration is not, for exactly this reason.
func TestComposeBadConfigIsValidEnvoyButRejectedByThePlugin(t *testing.T) {
	for file, wantErr := range map[string]string{
		"testdata/envoy-badconfig.yaml": composeBadConfigError,
		"envoy.yaml":                    "",
	} {
		data, err := os.ReadFile(filepath.Join(composeDir(), file))
		if err != nil {
			t.Fatal(err)
		}
		b, err := envoyCfgParse(data)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(b.GetStaticResources().GetListeners()) == 0 {
			t.Fatalf("%s: no listener", file)
		}
		var configs []string
		_ = envoyCfgWalk(b, func(_ string, m proto.Message, _ bool) error {
			if pc, ok := m.(*wasmv3.PluginConfig); ok {
				if c, ok := envoyCfgBytes(pc.GetConfiguration()); ok {
					configs = append(configs, string(c))
				}
			}
			return nil
		})
		if len(configs) == 0 {
			t.Fatalf("%s: no plugin configuration", file)
		}
		for _, c := range configs {
			_, err := policies.ParseConfig([]byte(c))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != wantErr {
				t.Errorf("%s: plugin configuration error %q, want %q", file, got, wantErr)
			}
		}
	}
}

// composeBadConfigError is what the module logs, and Envoy prints, for
// e2e/testdata/envoy-badconfig.yaml.
const composeBadConfigError = "secrets.CUSTOM_API_KEY.hosts: required: no default hosts for this name"

// TestComposeE2EPackageVets compiles and vets the docker-dependent tests,
// which no other test builds.
func TestComposeE2EPackageVets(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go vet")
	}
	cmd := exec.Command("go", "vet", "-tags", "e2e", ".")
	cmd.Dir = composeDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet -tags e2e ./e2e: %v\n%s", err, out)
	}
}
