package policies

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// Header is one header line; Name and Value alias the caller's buffer.
type Header struct{ Name, Value []byte }

// Verdict is what happens to a request.
type Verdict uint8

const (
	// Unchanged: forward the request as it came.
	Unchanged Verdict = iota
	// Rewritten: forward Decision.Headers instead of the request's headers.
	Rewritten
	// Denied: answer 403 with Decision.DenyBody; nothing goes upstream.
	Denied
)

func (v Verdict) String() string {
	switch v {
	case Rewritten:
		return "rewritten"
	case Denied:
		return "denied"
	}
	return "unchanged"
}

// Reasons why a request's destination cannot be trusted, in Decision.Reason.
const (
	ReasonMissingAuthority   = "missing_authority"   // no :authority line
	ReasonRepeatedAuthority  = "repeated_authority"  // more than one :authority or host line
	ReasonMalformedAuthority = "malformed_authority" // :authority or host fails CanonicalAuthority
	ReasonHostMismatch       = "host_mismatch"       // host names another destination than :authority
)

// Decision is valid until the next Decide call on the same Rewriter.
type Decision struct {
	Verdict Verdict
	// Headers, when Rewritten, is the complete header list to write back:
	// the input's lines in order, changed values replaced. Nil otherwise.
	Headers []Header
	// Host is the canonical authority, and Reason is empty; or, when the
	// destination cannot be trusted, Host is "" and Reason says why. Both are
	// set only when a placeholder was found (Injected or Violations non-empty).
	Host   string
	Reason string
	// Injected names the secrets injected, each once, ordered by name.
	Injected []string
	// Violations names the secrets found but not allowed for Host, each
	// once, ordered by name. Their placeholders are left as sent.
	Violations []string
	// DenyBody, when Denied, is the JSON body of the local reply. It holds
	// secret names and Host only: never a value, never a request header.
	DenyBody []byte
}

// headerKind says how Decide treats a header line, by name.
type headerKind uint8

const (
	kindPlain         headerKind = iota // scan the whole value
	kindSkip                            // never scanned nor rewritten
	kindPath                            // scan the query string, percent-aware
	kindAuthorization                   // Basic: raw, or decoded if raw holds none
	kindAuthority                       // the destination, never rewritten
	kindHost                            // must agree with :authority, never rewritten
	kindMethod                          // CONNECT leaves the request alone
)

// specialNames holds, by length, the one name of that length that is not a
// plain line: the six have distinct lengths, so a line needs at most one
// compare.
var specialNames = func() (t [20]struct {
	name string
	kind headerKind
}) {
	for _, n := range []struct {
		name string
		kind headerKind
	}{
		{":path", kindPath}, {":method", kindMethod}, {":authority", kindAuthority},
		{"host", kindHost}, {"authorization", kindAuthorization}, {"proxy-authorization", kindSkip},
	} {
		t[len(n.name)] = n
	}
	return t
}()

// classify says how Decide treats a header line, by its name in any case.
func classify(name []byte) headerKind {
	if len(name) < len(specialNames) {
		if n := &specialNames[len(name)]; n.name != "" && equalFoldASCII(name, n.name) {
			return n.kind
		}
	}
	if len(name) > 0 && name[0] == ':' {
		return kindSkip // :scheme, :protocol and any other pseudo-header
	}
	return kindPlain
}

// equalFoldASCII reports whether b equals lower, ignoring ASCII case.
// lower must be lowercase.
func equalFoldASCII(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		if toLower[b[i]] != lower[i] {
			return false
		}
	}
	return true
}

var toLower = func() (t [256]byte) {
	for c := range t {
		t[c] = byte(c)
		if 'A' <= c && c <= 'Z' {
			t[c] += 'a' - 'A'
		}
	}
	return t
}()

// Rewriter decides requests for one Session, reusing its buffers: one
// request at a time.
type Rewriter struct {
	s     *Session
	index *placeholderIndex
	rank  []int32 // secret index -> its position in name order

	// Per-secret judgement for the current request, valid where
	// seen[i] == gen, so a request costs nothing for secrets it never names.
	seen    []uint32
	allowed []bool
	gen     uint32

	kinds      []headerKind // per header line
	found      []int32      // secrets found in this request
	matches    []match
	rawMatches []match // a percent-encoded query's raw matches, while merging
	spans      []span

	// The destination's lines: the last index of each, and their counts.
	authority, authorities int
	host, hosts            int

	last      destination
	dest      Authority // valid when destOK
	destOK    bool
	decoded   []byte  // a percent-decoded query or decoded Basic credentials
	decodedAt []int32 // raw offset of each percent-decoded byte, then the end
	cred      []byte  // rewritten Basic credentials before encoding
	out       []byte  // rewritten values, back to back
	headers   []Header
	injected  []string
	violated  []string
	body      []byte
	d         Decision
}

// span is one header line holding matches[first:last].
type span struct {
	header      int32
	kind        headerKind // kindPlain, kindPath or kindAuthorization
	first, last int32
	token       int32 // kindAuthorization: offset of the Basic token in the value
	rewritten   bool  // the new value is out[out:outEnd]
	out, outEnd int32
}

// NewRewriter builds the placeholder index for s once. It panics if s breaks
// ParseConfig's guarantees: a placeholder shorter than 16 bytes, holding a
// byte outside [A-Za-z0-9_.~-], or beginning with another placeholder.
func NewRewriter(s *Session) *Rewriter {
	index, err := newPlaceholderIndex(s.Secrets)
	if err != nil {
		panic(fmt.Sprintf("policies: NewRewriter: %v", err))
	}
	n := len(s.Secrets)
	r := &Rewriter{
		s:       s,
		index:   index,
		rank:    make([]int32, n),
		seen:    make([]uint32, n),
		allowed: make([]bool, n),
	}
	byName := make([]int32, n)
	for i := range byName {
		byName[i] = int32(i)
	}
	slices.SortStableFunc(byName, func(a, b int32) int {
		return strings.Compare(s.Secrets[a].Name, s.Secrets[b].Name)
	})
	for pos, i := range byName {
		r.rank[i] = int32(pos)
	}
	return r
}

// Decide finds the placeholders in headers and says what to do with them.
// The returned Decision and everything it holds are valid until the next call.
func (r *Rewriter) Decide(headers []Header) *Decision {
	r.gen++
	if r.gen == 0 { // wrapped: forget stamps from 2^32 requests ago
		clear(r.seen)
		r.gen = 1
	}
	r.found = r.found[:0]
	r.matches = r.matches[:0]
	r.spans = r.spans[:0]
	d := &r.d
	*d = Decision{}

	if !r.classifyAll(headers) {
		return d // CONNECT: a tunnel; its headers go to the proxy, its bytes are not ours
	}
	for i := r.nextToScan(headers, 0); i < len(headers); i = r.nextToScan(headers, i+1) {
		r.scanHeader(int32(i), r.kinds[i], headers[i].Value)
	}
	if len(r.matches) == 0 {
		return d
	}

	r.resolveDestination(headers)
	for _, m := range r.matches {
		r.judge(m.secret)
	}
	// Few secrets per request: insertion sort by name, without allocating.
	for a := 1; a < len(r.found); a++ {
		for b := a; b > 0 && r.rank[r.found[b]] < r.rank[r.found[b-1]]; b-- {
			r.found[b], r.found[b-1] = r.found[b-1], r.found[b]
		}
	}
	deny := false
	r.injected, r.violated = r.injected[:0], r.violated[:0]
	for _, i := range r.found {
		sec := &r.s.Secrets[i]
		if r.allowed[i] {
			r.injected = append(r.injected, sec.Name)
			continue
		}
		r.violated = append(r.violated, sec.Name)
		deny = deny || sec.OnDisallowed == Deny
	}
	if len(r.violated) > 0 {
		d.Violations = r.violated
	}
	if deny {
		d.Verdict = Denied
		d.DenyBody = r.denyBody()
		return d
	}
	if len(r.injected) > 0 {
		d.Verdict = Rewritten
		d.Injected = r.injected
		d.Headers = r.rewrite(headers)
	}
	return d
}

// classifyAll sets r.kinds and finds the destination's lines; it reports
// false for a CONNECT request.
func (r *Rewriter) classifyAll(headers []Header) bool {
	r.authority, r.authorities, r.host, r.hosts = -1, 0, -1, 0
	r.kinds = slices.Grow(r.kinds[:0], len(headers))[:len(headers)]
	for i := range headers {
		kind := classify(headers[i].Name)
		switch kind {
		case kindMethod:
			if string(headers[i].Value) == "CONNECT" {
				return false
			}
		case kindAuthority:
			r.authority, r.authorities = i, r.authorities+1
		case kindHost:
			r.host, r.hosts = i, r.hosts+1
		case kindAuthorization:
			if basicToken(headers[i].Value) < 0 {
				kind = kindPlain // no Basic credentials to decode
			}
		case kindPath:
			if bytes.IndexByte(headers[i].Value, '?') < 0 {
				kind = kindSkip // no query
			}
		}
		r.kinds[i] = kind
	}
	return true
}

// nextToScan returns the first line at or after from that scanHeader must
// see: a :path or authorization line, or a plain line where one of
// appendMatches' samples hits; len(headers) if none. Most values stop here,
// in one small function without calls: both are what wasm runs fast.
func (r *Rewriter) nextToScan(headers []Header, from int) int {
	grams, stride := &r.index.grams, r.index.stride
	kinds := r.kinds[:len(headers)]
	for i := from; i < len(headers); i++ {
		switch kinds[i] {
		case kindPath, kindAuthorization:
			return i
		case kindPlain:
			// appendMatches' samples, four per step to keep the jumps few.
			v := headers[i].Value
			s := 0
			for ; s+3*stride+gramLen <= len(v); s += 4 * stride {
				if grams.lookup(binary.LittleEndian.Uint64(v[s:]))|
					grams.lookup(binary.LittleEndian.Uint64(v[s+stride:]))|
					grams.lookup(binary.LittleEndian.Uint64(v[s+2*stride:]))|
					grams.lookup(binary.LittleEndian.Uint64(v[s+3*stride:])) != 0 {
					return i
				}
			}
			for ; s+gramLen <= len(v); s += stride {
				if grams.lookup(binary.LittleEndian.Uint64(v[s:])) != 0 {
					return i
				}
			}
		}
	}
	return len(headers)
}

// resolveDestination sets r.dest, r.destOK, Decision.Host and Decision.Reason.
func (r *Rewriter) resolveDestination(headers []Header) {
	r.dest, r.destOK = Authority{}, false
	d := &r.d
	switch {
	case r.authorities == 0:
		d.Reason = ReasonMissingAuthority
		return
	case r.authorities > 1 || r.hosts > 1:
		d.Reason = ReasonRepeatedAuthority
		return
	}
	c := &r.last
	authority, host, hasHost := headers[r.authority].Value, []byte(nil), r.host >= 0
	if hasHost {
		host = headers[r.host].Value
	}
	if !c.valid || c.hasHost != hasHost || !bytes.Equal(c.rawAuthority, authority) || !bytes.Equal(c.rawHost, host) {
		c.resolve(authority, host, hasHost)
	}
	r.dest, r.destOK, d.Reason = c.dest, c.reason == "", c.reason
	if r.destOK {
		d.Host = c.host
	}
}

// destination is the last :authority and host pair resolved: requests on a
// connection repeat it, and comparing bytes costs less than canonicalising.
type destination struct {
	valid                 bool
	rawAuthority, rawHost []byte // as sent
	hasHost               bool
	dest                  Authority // Host points into canonical
	reason                string    // "" when dest can be trusted
	canonical, canonHost  []byte
	// host is dest.String(), kept with its key while the destination stays.
	host     string
	hostKey  []byte
	hostPort uint16
}

func (c *destination) resolve(authority, host []byte, hasHost bool) {
	c.valid, c.hasHost = true, hasHost
	c.rawAuthority = append(c.rawAuthority[:0], authority...)
	c.rawHost = append(c.rawHost[:0], host...)
	c.dest, c.reason = Authority{}, ReasonMalformedAuthority
	c.canonical = fitCap(c.canonical, len(authority)+MaxCanonicalGrowth)
	dest, ok := CanonicalAuthority(c.canonical, authority)
	if !ok {
		return
	}
	if hasHost {
		c.canonHost = fitCap(c.canonHost, len(host)+MaxCanonicalGrowth)
		h, ok := CanonicalAuthority(c.canonHost, host)
		if !ok {
			return
		}
		if h.Port != dest.Port || !bytes.Equal(h.Host, dest.Host) {
			c.reason = ReasonHostMismatch
			return
		}
	}
	c.dest, c.reason = dest, ""
	if c.host == "" || c.hostPort != dest.Port || !bytes.Equal(c.hostKey, dest.Host) {
		c.host = dest.String()
		c.hostKey = append(c.hostKey[:0], dest.Host...)
		c.hostPort = dest.Port
	}
}

// fitCap returns b emptied, with room for n bytes.
func fitCap(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, 0, 2*n)
	}
	return b[:0]
}

// judge records secret i as found and decides once whether the destination
// allows it.
func (r *Rewriter) judge(i int32) {
	if r.seen[i] == r.gen {
		return
	}
	r.seen[i] = r.gen
	r.found = append(r.found, i)
	r.allowed[i] = false
	if !r.destOK {
		return
	}
	for _, rule := range r.s.Secrets[i].Hosts {
		if rule.Matches(r.dest) {
			r.allowed[i] = true
			return
		}
	}
}

// denyBody renders {"error":"secret_not_allowed","secrets":[...],"host":"..."},
// adding "reason" when the destination could not be trusted (host is then "").
func (r *Rewriter) denyBody() []byte {
	b := append(r.body[:0], `{"error":"secret_not_allowed","secrets":[`...)
	for i, name := range r.violated {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, name)
	}
	b = append(b, `],"host":`...)
	b = appendJSONString(b, r.d.Host)
	if r.d.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, r.d.Reason)
	}
	b = append(b, '}')
	r.body = b
	return b
}

// appendJSONString appends s quoted; every byte outside printable ASCII is
// escaped as \u00XX (names and canonical hosts are ASCII by validation).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
