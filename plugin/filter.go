package main

import (
	"fmt"
	"strings"

	"github.com/secretgate/secretgate/policies"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// Local reply details, as Envoy shows them in access logs (%RESPONSE_CODE_DETAILS%).
const (
	detailsDenied   = "secretgate_secret_not_allowed"
	detailsInternal = "secretgate_internal_error"
)

var jsonContentType = encodePairs(nil, []policies.Header{{Name: []byte("content-type"), Value: []byte("application/json")}})

type vmContext struct {
	types.DefaultVMContext
	host hostCalls
}

func (v *vmContext) NewPluginContext(uint32) types.PluginContext {
	p := &pluginContext{host: v.host}
	p.filter.pluginContext = p
	return p
}

// pluginContext holds one plugin configuration: a session and the buffers its
// streams reuse. Envoy runs a VM on one thread and calls one callback at a
// time, so the buffers are never shared by two requests at once.
type pluginContext struct {
	types.DefaultPluginContext
	host      hostCalls
	session   *policies.Session
	rewriter  *policies.Rewriter
	injected  map[string]uint32 // secret name -> counter id
	violation map[string]uint32

	filter  httpFilter
	headers []policies.Header
	pairs   []byte
	msg     []byte
}

// httpFilter is the stream side of a plugin. The filter keeps no state
// between a stream's callbacks, so one value serves every stream of the
// plugin and a new stream allocates nothing.
type httpFilter struct {
	types.DefaultHttpContext
	*pluginContext
}

func (p *pluginContext) OnPluginStart(size int) types.OnPluginStartStatus {
	data, err := p.host.pluginConfiguration(size)
	if err != nil {
		p.logf(logCritical, "secretgate: reading the plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	session, err := policies.ParseConfig(data)
	if err != nil {
		// Returning failure makes Envoy reject this configuration: no
		// request is ever filtered by a half-understood session.
		p.logf(logCritical, "secretgate: invalid plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	injected := make(map[string]uint32, len(session.Secrets))
	violation := make(map[string]uint32, len(session.Secrets))
	for _, s := range session.Secrets {
		for _, c := range []struct {
			ids  map[string]uint32
			name string
		}{{injected, "secretgate.injected." + s.Name}, {violation, "secretgate.violation." + s.Name}} {
			if c.ids[s.Name], err = p.host.defineCounter(c.name); err != nil {
				p.logf(logCritical, "secretgate: defining metric %s: %v", c.name, err)
				return types.OnPluginStartStatusFailed
			}
		}
	}
	p.session, p.rewriter = session, policies.NewRewriter(session)
	p.injected, p.violation = injected, violation
	p.logConfigured()
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext { return &p.filter }

func (f *httpFilter) OnHttpRequestHeaders(int, bool) types.Action {
	return f.pluginContext.requestHeaders()
}

func (p *pluginContext) requestHeaders() types.Action {
	if p.rewriter == nil {
		// Envoy never routes streams to an unconfigured plugin; fail closed anyway.
		return p.failInternal("no configuration for this stream")
	}
	buf, err := p.host.requestHeaderPairs()
	if err != nil {
		return p.failInternal("reading request headers")
	}
	p.headers, err = decodePairs(p.headers[:0], buf)
	if err != nil {
		return p.failInternal("decoding request headers")
	}
	d := p.rewriter.Decide(p.headers)
	action, outcome := types.ActionContinue, "placeholder forwarded unchanged"
	switch d.Verdict {
	case policies.Denied:
		if err := p.host.sendLocalReply(403, detailsDenied, d.DenyBody, jsonContentType); err != nil {
			action, outcome = p.failInternal("sending the deny reply: "+err.Error()), "request answered with 500"
		} else {
			action, outcome = types.ActionPause, "request denied with 403"
		}
	case policies.Rewritten:
		if err := p.writeRewritten(buf, d); err != nil {
			action, outcome = p.failInternal("writing request headers: "+err.Error()), "request answered with 500"
		}
	}
	// Violations are reported with what really happened to the request.
	for _, name := range d.Violations {
		p.countViolation(name, d, outcome)
	}
	return action
}

// writeRewritten writes the decision's headers back in one call, then counts
// and logs the injections.
func (p *pluginContext) writeRewritten(buf []byte, d *policies.Decision) error {
	p.pairs = encodeRewritten(p.pairs[:0], buf, p.headers, d.Headers)
	if len(d.Headers) > maxPairs || len(p.pairs) > maxPairsBytes {
		return errPairsLimit
	}
	if err := p.host.setRequestHeaderPairs(p.pairs); err != nil {
		return err
	}
	for _, name := range d.Injected {
		_ = p.host.incrementMetric(p.injected[name], 1)
	}
	if p.host.logLevel() <= logDebug {
		p.msg = append(p.msg[:0], "secretgate: injected "...)
		p.msg = appendList(p.msg, d.Injected)
		p.msg = append(p.msg, " for host "...)
		p.msg = appendHost(p.msg, d)
		p.host.log(logDebug, p.msg)
	}
	return nil
}

func (p *pluginContext) countViolation(name string, d *policies.Decision, outcome string) {
	_ = p.host.incrementMetric(p.violation[name], 1)
	p.msg = append(p.msg[:0], "secretgate: secret "...)
	p.msg = append(p.msg, name...)
	p.msg = append(p.msg, " is not allowed for host "...)
	p.msg = appendHost(p.msg, d)
	p.msg = append(p.msg, "; "...)
	p.msg = append(p.msg, outcome...)
	p.host.log(logWarn, p.msg)
}

// failInternal answers 500 and stops the stream: when the filter cannot tell
// what it would send, it sends nothing (fail closed).
func (p *pluginContext) failInternal(what string) types.Action {
	p.logf(logError, "secretgate: %s; answering 500", what)
	_ = p.host.sendLocalReply(500, detailsInternal, []byte(`{"error":"secretgate_internal_error"}`), jsonContentType)
	return types.ActionPause
}

func (p *pluginContext) logConfigured() {
	var b strings.Builder
	b.WriteString("secretgate: session ")
	b.WriteString(p.session.ID)
	b.WriteString(" configured; on_disallowed=")
	b.WriteString(p.session.OnDisallowed.String())
	b.WriteString("; secrets:")
	for i, s := range p.session.Secrets {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(" ")
		b.WriteString(s.Name)
		b.WriteString(" -> ")
		for j, h := range s.Hosts {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(h.String())
		}
		if s.OnDisallowed != p.session.OnDisallowed {
			b.WriteString(" (on_disallowed=")
			b.WriteString(s.OnDisallowed.String())
			b.WriteString(")")
		}
	}
	p.host.log(logInfo, []byte(b.String()))
}

func (p *pluginContext) logf(level logLevel, format string, args ...any) {
	p.host.log(level, []byte(fmt.Sprintf(format, args...)))
}

func appendList(dst []byte, names []string) []byte {
	for i, n := range names {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, n...)
	}
	return dst
}

// appendHost names the destination for a log line: the canonical host, or
// why there is none to trust.
func appendHost(dst []byte, d *policies.Decision) []byte {
	if d.Host == "" {
		dst = append(dst, "(none: "...)
		dst = append(dst, d.Reason...)
		return append(dst, ')')
	}
	return append(dst, d.Host...)
}
