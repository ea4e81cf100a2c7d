package main

import (
	"strings"
	"testing"

	"github.com/secretgate/secretgate/policies"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

func TestConfigureRejectsBadConfiguration(t *testing.T) {
	host := &fakeHost{config: []byte(`{"session": "s", "secrets": {"CUSTOM": {"placeholder": "sgp_custom_0000000000000001", "value": "custom-test-value-1"}}}`)}
	if _, ok := nativeVM(t, host); ok {
		t.Fatal("configure accepted a secret with no hosts")
	}
	want := "secretgate: invalid plugin configuration: secrets.CUSTOM.hosts: required: no default hosts for this name"
	if len(host.logs) != 1 || host.logs[0].level != logCritical || host.logs[0].msg != want {
		t.Fatalf("logs = %v, want one critical %q", host.logs, want)
	}
	if len(host.metrics) != 0 {
		t.Errorf("metrics defined for a rejected configuration: %v", host.metrics)
	}
}

func TestConfigureLogsSessionNamesAndHosts(t *testing.T) {
	host := &fakeHost{config: fixtureConfig("deny", "")}
	if _, ok := nativeVM(t, host); !ok {
		t.Fatalf("configure failed: %v", host.logs)
	}
	want := "secretgate: session scenarios configured; on_disallowed=deny; secrets: " +
		"ANTHROPIC_API_KEY -> api.anthropic.com; GEMINI_API_KEY -> generativelanguage.googleapis.com; " +
		"GITHUB_TOKEN -> github.com, api.github.com; JIRA_TOKEN -> *.atlassian.net; " +
		"OPENAI_API_KEY -> api.openai.com; OPENAI_ORG -> api.openai.com"
	if len(host.logs) != 1 || host.logs[0].level != logInfo || host.logs[0].msg != want {
		t.Fatalf("logs = %v\nwant %q", host.logs, want)
	}
	var names []string
	for _, m := range host.metrics {
		names = append(names, m.name)
	}
	if got := strings.Join(names, " "); got != "secretgate.injected.ANTHROPIC_API_KEY secretgate.violation.ANTHROPIC_API_KEY "+
		"secretgate.injected.GEMINI_API_KEY secretgate.violation.GEMINI_API_KEY secretgate.injected.GITHUB_TOKEN secretgate.violation.GITHUB_TOKEN "+
		"secretgate.injected.JIRA_TOKEN secretgate.violation.JIRA_TOKEN secretgate.injected.OPENAI_API_KEY secretgate.violation.OPENAI_API_KEY "+
		"secretgate.injected.OPENAI_ORG secretgate.violation.OPENAI_ORG" {
		t.Errorf("metrics defined: %s", got)
	}
}

// When the filter cannot read or write the headers it answers 500 and
// nothing goes upstream: never forward what it could not check.
func TestHostFailuresFailClosed(t *testing.T) {
	for _, call := range []string{"requestHeaderPairs", "setRequestHeaderPairs"} {
		t.Run(call, func(t *testing.T) {
			host := &fakeHost{config: fixtureConfig("passthrough", "")}
			d, ok := nativeVM(t, host)
			if !ok {
				t.Fatal("configure failed")
			}
			host.headers = []policies.Header{{Name: []byte(":authority"), Value: []byte("api.openai.com")}, {Name: []byte("authorization"), Value: []byte("Bearer " + phOpenAI)}}
			host.failNext = call
			if a := request(d, 9); a != types.ActionPause {
				t.Fatalf("action = %d, want Pause", a)
			}
			if host.reply == nil || host.reply.status != 500 || string(host.reply.body) != `{"error":"secretgate_internal_error"}` || host.reply.details != detailsInternal {
				t.Fatalf("reply = %+v, want 500 %s", host.reply, detailsInternal)
			}
			if strings.Contains(string(host.headers[1].Value), valOpenAI) {
				t.Error("headers hold the value after a failed write")
			}
		})
	}
}

// A stream of no known plugin, or one the host never created, is answered
// 500 and paused: a request the filter did not see never goes upstream.
func TestUnknownStreamsFailClosed(t *testing.T) {
	for name, create := range map[string]func(d *dispatcher){
		"unknown plugin": func(d *dispatcher) { d.onContextCreate(30, 99) },
		"never created":  func(*dispatcher) {},
	} {
		t.Run(name, func(t *testing.T) {
			host := &fakeHost{config: fixtureConfig("passthrough", "")}
			d, _ := nativeVM(t, host)
			create(d)
			if a := d.onRequestHeaders(30, 0, true); a != types.ActionPause {
				t.Fatalf("action = %d, want Pause", a)
			}
			if host.reply == nil || host.reply.status != 500 || host.reply.details != detailsInternal {
				t.Fatalf("reply = %+v, want 500", host.reply)
			}
			if !d.onDone(30) {
				t.Fatal("onDone must allow deletion")
			}
		})
	}
}

// Several plugins in one VM (a shared vm_id): each stream is judged by the
// configuration of the plugin that created it.
func TestStreamsUseTheirOwnPlugin(t *testing.T) {
	host := &fakeHost{}
	d := newDispatcher(&vmContext{host: host})
	d.onContextCreate(1, 0)
	d.onVMStart(0)
	for id, mode := range map[uint32]string{2: "passthrough", 3: "deny"} {
		host.config = fixtureConfig(mode, "")
		d.onContextCreate(id, 0)
		if !d.onConfigure(id, len(host.config)) {
			t.Fatalf("configure %d failed", id)
		}
	}
	evil := []policies.Header{{Name: []byte(":authority"), Value: []byte("evil.example")}, {Name: []byte("authorization"), Value: []byte("Bearer " + phOpenAI)}}
	for stream, want := range map[uint32]types.Action{10: types.ActionContinue, 11: types.ActionPause} {
		host.headers, host.reply = evil, nil
		d.onContextCreate(stream, stream-8) // 10 under plugin 2, 11 under plugin 3
		if got := d.onRequestHeaders(stream, 2, true); got != want {
			t.Errorf("stream %d: action %d, want %d", stream, got, want)
		}
		d.onDelete(stream)
	}
	d.onDelete(3)
	if _, ok := d.plugin(3); ok {
		t.Error("plugin 3 outlived its delete")
	}
	if _, ok := d.plugin(2); !ok {
		t.Error("deleting plugin 3 removed plugin 2")
	}
}
