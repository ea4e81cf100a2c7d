package hostsim

import (
	"encoding/binary"
	"strings"
)

// Header is one header field. Names in maps hostsim builds are lowercase, as
// Envoy's LowerCaseString keys are.
type Header struct {
	Name, Value string
}

// Headers is an ordered header list; duplicates are kept.
type Headers []Header

// Get returns the first value of name (compared case-insensitively) and whether it exists.
func (h Headers) Get(name string) (string, bool) {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

// Values returns every value of name (compared case-insensitively), in order.
func (h Headers) Values(name string) []string {
	var vs []string
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			vs = append(vs, f.Value)
		}
	}
	return vs
}

// headerMap models Envoy's HeaderMapImpl (source/common/http/header_map_impl.cc):
//   - keys are lowercased on every operation;
//   - pseudo-headers (":x") are kept before all other headers (HeaderList::insert);
//   - "inline" headers hold a single entry: adding one that exists appends the
//     value with "," (insertByKey/appendToHeader), and removing it removes that entry;
//   - in request maps "host" is an alias of ":authority" (the HostLegacy static lookup);
//   - setCopy (proxy_replace_header_map_value) is remove(key) then addCopy, so the
//     replaced header moves to the end of its section.
type headerMap struct {
	entries []Header
	inline  map[string]bool
	request bool
}

func newHeaderMap(t MapType) headerMap {
	switch t {
	case MapRequestHeaders:
		return headerMap{inline: inlineRequestHeaders, request: true}
	case MapResponseHeaders:
		return headerMap{inline: inlineResponseHeaders}
	case MapResponseTrailers:
		return headerMap{inline: inlineResponseTrailers}
	}
	return headerMap{}
}

// Envoy's default O(1) ("inline") headers: INLINE_REQ_HEADERS, INLINE_REQ_RESP_HEADERS,
// INLINE_RESP_HEADERS and INLINE_RESP_HEADERS_TRAILERS in envoy/http/header_map.h.
// Extensions can register more (RegisterCustomInlineHeader); hostsim does not model those.
var (
	inlineReqRespHeaders = []string{"connection", "content-type", "x-envoy-decorator-operation",
		"keep-alive", "proxy-connection", "proxy-status", "x-request-id", "transfer-encoding",
		"upgrade", "via", "content-length", "x-envoy-attempt-count"}
	inlineRequestHeaders = nameSet(inlineReqRespHeaders, "x-client-trace-id",
		"x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node",
		"x-envoy-external-address", "x-envoy-force-trace", "x-envoy-hedge-on-per-try-timeout",
		"x-envoy-internal", "x-envoy-ip-tags", "x-envoy-retry-on", "x-envoy-retry-grpc-on",
		"x-envoy-retriable-status-codes", "x-envoy-retriable-header-names",
		"x-envoy-is-timeout-retry", "x-envoy-original-path",
		"x-envoy-original-url", "x-envoy-upstream-alt-stat-name",
		"x-envoy-upstream-rq-timeout-alt-response", "expect", "x-forwarded-client-cert",
		"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "grpc-timeout", ":authority",
		":method", ":path", ":protocol", ":scheme", "te", "user-agent",
		"x-envoy-expected-rq-timeout-ms", "x-envoy-max-retries", "x-envoy-upstream-rq-timeout-ms",
		"x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-upstream-stream-duration-ms",
		"x-forwarded-port")
	inlineResponseHeaders = nameSet(inlineReqRespHeaders, "date", "x-envoy-degraded",
		"x-envoy-immediate-health-check-fail", "x-envoy-ratelimited", "x-envoy-upstream-canary",
		"x-envoy-upstream-healthchecked-cluster", "location", "server",
		"x-envoy-upstream-service-time", ":status", "grpc-status", "grpc-message")
	inlineResponseTrailers = nameSet(nil, "grpc-status", "grpc-message")
)

func nameSet(base []string, names ...string) map[string]bool {
	s := make(map[string]bool, len(base)+len(names))
	for _, n := range base {
		s[n] = true
	}
	for _, n := range names {
		s[n] = true
	}
	return s
}

// key lowercases name and resolves the request-map "host" alias.
func (m *headerMap) key(name string) string {
	k := lower(name)
	if m.request && k == "host" {
		return ":authority"
	}
	return k
}

func (m *headerMap) find(k string) int {
	for i := range m.entries {
		if m.entries[i].Name == k {
			return i
		}
	}
	return -1
}

// add is Envoy's addCopy.
func (m *headerMap) add(name, value string) {
	k := m.key(name)
	if m.inline[k] {
		if i := m.find(k); i >= 0 {
			if value == "" {
				return
			}
			if m.entries[i].Value != "" {
				m.entries[i].Value += ","
			}
			m.entries[i].Value += value
			return
		}
	}
	h := Header{Name: k, Value: value}
	if !isPseudo(k) {
		m.entries = append(m.entries, h)
		return
	}
	at := 0
	for at < len(m.entries) && isPseudo(m.entries[at].Name) {
		at++
	}
	m.entries = append(m.entries, Header{})
	copy(m.entries[at+1:], m.entries[at:])
	m.entries[at] = h
}

// get returns the first value, as Envoy's getHeaderMapValue does.
func (m *headerMap) get(name string) (string, bool) {
	if i := m.find(m.key(name)); i >= 0 {
		return m.entries[i].Value, true
	}
	return "", false
}

// remove drops every entry of name.
func (m *headerMap) remove(name string) {
	k := m.key(name)
	kept := m.entries[:0]
	for _, h := range m.entries {
		if h.Name != k {
			kept = append(kept, h)
		}
	}
	clear(m.entries[len(kept):])
	m.entries = kept
}

// replace is Envoy's setCopy: remove then add.
func (m *headerMap) replace(name, value string) {
	m.remove(name)
	m.add(name, value)
}

// set is an inline header's setter (setInline, setReferenceInline): the entry
// keeps its place and takes the value, or is added when absent.
func (m *headerMap) set(name, value string) {
	if i := m.find(m.key(name)); i >= 0 {
		m.entries[i].Value = value
		return
	}
	m.add(name, value)
}

// setPairs is Envoy's Context::setHeaderMapPairs
// (source/extensions/common/wasm/context.cc): remove every key present in the
// map, then addCopy each pair in order.
func (m *headerMap) setPairs(pairs []Header) {
	clear(m.entries)
	m.entries = m.entries[:0]
	for _, p := range pairs {
		m.add(p.Name, p.Value)
	}
}

// byteSize is HeaderMapImpl::byteSize, what proxy_get_header_map_size returns.
func (m *headerMap) byteSize() uint32 {
	n := 0
	for _, h := range m.entries {
		n += len(h.Name) + len(h.Value)
	}
	return uint32(n)
}

func (m *headerMap) snapshot() Headers {
	if len(m.entries) == 0 {
		return nil
	}
	return append(Headers(nil), m.entries...)
}

func isPseudo(k string) bool { return len(k) > 0 && k[0] == ':' }

// lower is an ASCII lowercase that does not allocate for already-lowercase names.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// marshalPairs is cpp-host PairsUtil::marshalPairs: u32 count, then u32 name
// length and u32 value length per pair, then each name and value followed by NUL.
func marshalPairs(dst []byte, pairs []Header) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(pairs)))
	for _, p := range pairs {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p.Name)))
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p.Value)))
	}
	for _, p := range pairs {
		dst = append(dst, p.Name...)
		dst = append(dst, 0)
		dst = append(dst, p.Value...)
		dst = append(dst, 0)
	}
	return dst
}

func pairsSize(pairs []Header) int {
	n := 4
	for _, p := range pairs {
		n += 8 + len(p.Name) + len(p.Value) + 2
	}
	return n
}

// unmarshalPairs is cpp-host PairsUtil::toPairs. Like Envoy, any malformed input
// (over the limits, short, missing NUL, trailing bytes) yields no pairs and no error.
func unmarshalPairs(b []byte) []Header {
	if len(b) > pairsMaxBytes || len(b) < 4 {
		return nil
	}
	n := binary.LittleEndian.Uint32(b)
	if n > pairsMaxCount || 4+uint64(n)*8 > uint64(len(b)) {
		return nil
	}
	sizes := b[4 : 4+n*8]
	pos := 4 + int(n)*8
	pairs := make([]Header, n)
	for i := range pairs {
		nameLen := int(binary.LittleEndian.Uint32(sizes[i*8:]))
		valueLen := int(binary.LittleEndian.Uint32(sizes[i*8+4:]))
		name, next, ok := cString(b, pos, nameLen)
		if !ok {
			return nil
		}
		value, next, ok := cString(b, next, valueLen)
		if !ok {
			return nil
		}
		pairs[i] = Header{Name: name, Value: value}
		pos = next
	}
	if pos != len(b) {
		return nil
	}
	return pairs
}

func cString(b []byte, pos, n int) (string, int, bool) {
	if n < 0 || pos+n+1 > len(b) || pos+n+1 < pos || b[pos+n] != 0 {
		return "", 0, false
	}
	return string(b[pos : pos+n]), pos + n + 1, true
}
