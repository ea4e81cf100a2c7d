package main

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// outcome is what one request produced, whoever ran it.
type outcome struct {
	forwarded []hdr // nil when nothing went upstream
	status    int   // local reply status, 0 when none
	body      string
	reply     []hdr
	logs      []string
	metrics   map[string]int64 // counters by name, as the plugin defined them
}

// runner configures a filter with config and sends one request through it.
type runner func(t *testing.T, config []byte, request []hdr) outcome

func runScenarios(t *testing.T, run runner, native bool) {
	for _, mode := range []string{"passthrough", "deny"} {
		for _, s := range scenarios() {
			if s.nativeOnly && !native {
				continue
			}
			t.Run(mode+"/"+s.name, func(t *testing.T) {
				got := run(t, fixtureConfig(mode, s.openai), s.request)
				checkScenario(t, mode, s, got)
			})
		}
	}
}

func checkScenario(t *testing.T, mode string, s scenario, got outcome) {
	t.Helper()
	denied := mode == "deny" && len(s.violations) > 0
	if denied {
		if got.forwarded != nil {
			t.Errorf("denied request went upstream: %q", got.forwarded)
		}
		if got.status != 403 || got.body != s.denyBody() {
			t.Errorf("local reply = %d %s, want 403 %s", got.status, got.body, s.denyBody())
		}
		if want := []hdr{{"content-type", "application/json"}}; !reflect.DeepEqual(got.reply, want) {
			t.Errorf("local reply headers = %q, want %q", got.reply, want)
		}
	} else {
		want := s.forwarded
		if want == nil {
			want = s.request
		}
		if got.status != 0 {
			t.Fatalf("unexpected local reply %d %s", got.status, got.body)
		}
		if !reflect.DeepEqual(got.forwarded, want) {
			t.Errorf("forwarded\n got %q\nwant %q", got.forwarded, want)
		}
	}

	// Counters move exactly for the secrets involved.
	for _, name := range secretNames {
		wantInjected, wantViolations := int64(0), int64(0)
		if slices.Contains(s.injected, name) && !denied {
			wantInjected = 1
		}
		if slices.Contains(s.violations, name) {
			wantViolations = 1
		}
		if v := got.metrics["secretgate.injected."+name]; v != wantInjected {
			t.Errorf("secretgate.injected.%s = %d, want %d", name, v, wantInjected)
		}
		if v := got.metrics["secretgate.violation."+name]; v != wantViolations {
			t.Errorf("secretgate.violation.%s = %d, want %d", name, v, wantViolations)
		}
	}

	// The injection at debug level, then one warning per violation, naming
	// the secret and the host.
	var wantLogs []string
	if len(s.injected) > 0 && !denied {
		wantLogs = append(wantLogs, fmt.Sprintf("secretgate: injected %s for host %s", strings.Join(s.injected, ", "), s.destination()))
	}
	for _, name := range s.violations {
		outcome := "placeholder forwarded unchanged"
		if denied {
			outcome = "request denied with 403"
		}
		wantLogs = append(wantLogs, fmt.Sprintf("secretgate: secret %s is not allowed for host %s; %s", name, s.destination(), outcome))
	}
	if !reflect.DeepEqual(requestLogs(got.logs), wantLogs) {
		t.Errorf("logs\n got %q\nwant %q", requestLogs(got.logs), wantLogs)
	}

	// Outside an allowed upstream, no real value appears anywhere.
	for _, v := range testValues {
		if strings.Contains(got.body, v) || anyContains(got.logs, v) || strings.Contains(fmt.Sprint(got.reply), v) {
			t.Errorf("real value of a fixture leaked into a reply or log")
		}
		if !slices.ContainsFunc(s.injected, func(n string) bool { return valueOf[n] == v }) || denied {
			if strings.Contains(fmt.Sprint(got.forwarded), v) {
				t.Errorf("value %q forwarded though its secret was not injected", v)
			}
		}
	}
}

var secretNames = []string{"ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GITHUB_TOKEN", "JIRA_TOKEN", "OPENAI_API_KEY", "OPENAI_ORG"}

var valueOf = map[string]string{
	"OPENAI_API_KEY": valOpenAI, "OPENAI_ORG": valOpenAIOrg, "ANTHROPIC_API_KEY": valAnthropic,
	"GITHUB_TOKEN": valGitHub, "GEMINI_API_KEY": valGemini, "JIRA_TOKEN": valJira,
}

// requestLogs drops the configure line, which every run starts with.
func requestLogs(logs []string) []string {
	var out []string
	for _, l := range logs {
		if !strings.Contains(l, " configured; ") {
			out = append(out, l)
		}
	}
	return out
}

func anyContains(ss []string, sub string) bool {
	return slices.ContainsFunc(ss, func(s string) bool { return strings.Contains(s, sub) })
}
