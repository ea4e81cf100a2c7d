package policies

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unsafe"
)

// Authority is a request's destination after canonicalisation. Host points
// into the buffer CanonicalAuthority wrote; Port is 0 when absent.
type Authority struct {
	Host []byte
	Port uint16
}

// CanonicalAuthority canonicalises raw (an :authority or host header value)
// into dst[:0] and returns the canonical authority. ok is false when raw is
// malformed by the README's host rules; then no secret may be injected.
//
// Canonical means: ASCII-lowercased, one trailing dot removed, an optional
// port of 1..65535 in decimal without leading zeros. The host is either
// labels of [a-z0-9-], a dotted-quad IPv4 address (never with a trailing
// dot: "1.2.3.4." is malformed), or a bracketed IPv6 address in net/netip's
// form. Nothing is decoded or IDNA-mapped: any other byte makes raw
// malformed, which fails closed.
//
// It does not allocate when cap(dst) >= len(raw)+MaxCanonicalGrowth, except
// for a bracketed literal that net/netip rejects: its parse error allocates.
func CanonicalAuthority(dst []byte, raw []byte) (a Authority, ok bool) {
	a, f := canonicalAuthority(dst, raw)
	return a, f.kind == faultNone
}

// MaxCanonicalGrowth bounds how much longer than raw CanonicalAuthority's
// output can be. Only an IPv4-mapped IPv6 address written in hex grows, since
// net/netip prints its last 32 bits dotted: "[::ffff:ffff:ffff]" becomes
// "[::ffff:255.255.255.255]". Everything else keeps its length or shrinks.
const MaxCanonicalGrowth = 6

// String renders the canonical form, "host" or "host:port" (IPv6 in brackets).
func (a Authority) String() string {
	if a.Port == 0 {
		return string(a.Host)
	}
	return string(a.Host) + ":" + strconv.Itoa(int(a.Port))
}

// HostRule is one allowed-host entry, canonicalised at load.
type HostRule struct {
	// host is the canonical host; for a wildcard rule, the suffix after "*.".
	host string
	// port 0 means none was written, which allows no port or 443.
	port     uint16
	wildcard bool
}

// ParseHostRule validates and canonicalises one entry: "host", "host:port",
// "*.suffix", "*.suffix:port", IPv4 and bracketed IPv6 literals with or
// without a port. A DNS name of one label needs a port ("my-service:8080"),
// except "localhost".
//
// An entry may be a secret value pasted into the wrong place, and errors
// reach logs, so an error never quotes the entry, not even one byte of it:
// it says why, and where a byte is at fault, its offset in the entry, e.g.
// `byte at offset 3 is not allowed in a host`. Every configuration error
// follows this rule for strings that could be values (see childPath for keys).
func ParseHostRule(entry string) (HostRule, error) {
	fail := func(reason string) (HostRule, error) {
		return HostRule{}, errors.New(reason)
	}
	switch {
	case entry == "":
		return fail("empty entry")
	case entry == "*":
		return fail("a lone wildcard is not allowed")
	case strings.Contains(entry, "://"):
		return fail("a scheme is not allowed; write the host only")
	case strings.Contains(entry, "/"):
		return fail("a path is not allowed; write the host only")
	case strings.Contains(entry, "@"):
		return fail("userinfo is not allowed")
	}
	rest, wildcard := strings.CutPrefix(entry, "*.")
	if strings.Contains(rest, "*") {
		return fail(`a wildcard must be the whole first label, as in "*.example.com"`)
	}
	a, f := canonicalAuthority(nil, []byte(rest))
	if f.kind != faultNone {
		if wildcard {
			f.at += len("*.")
		}
		return fail(f.String())
	}
	singleLabel := a.Host[0] != '[' && bytes.IndexByte(a.Host, '.') < 0
	if wildcard {
		if a.Host[0] == '[' || isDottedQuad(a.Host) {
			return fail("a wildcard cannot cover an ip address")
		}
		if singleLabel {
			return fail(`a wildcard suffix needs at least two labels, as in "*.example.com"`)
		}
	}
	// Many API keys are a valid DNS label (letters, digits, hyphens), so a
	// key swapped with its host would otherwise become an allowed host and
	// be printed in the configure log line. Keys never end in ":port", and
	// a short name that the proxy resolves through its search domains (a
	// Kubernetes service) is reached on a port of its own; "localhost" is the
	// one bare label in real use. Any other name can be written in full.
	if singleLabel && a.Port == 0 && string(a.Host) != "localhost" {
		return fail(`a single-label host needs a port, as in "my-service:8080" (only "localhost" may go without): ` +
			`a value pasted here must not pass for a host`)
	}
	return HostRule{host: string(a.Host), port: a.Port, wildcard: wildcard}, nil
}

// String renders the canonical entry.
func (r HostRule) String() string {
	s := r.host
	if r.wildcard {
		s = "*." + s
	}
	if r.port != 0 {
		s += ":" + strconv.Itoa(int(r.port))
	}
	return s
}

// Matches reports whether the canonical authority a is allowed by r.
// A rule without a port allows no port or 443; a rule with one allows only
// that port. "*.suffix" allows exactly one more label, never the suffix itself.
// It does not allocate.
func (r HostRule) Matches(a Authority) bool {
	if r.host == "" {
		return false
	}
	if r.port == 0 {
		if a.Port != 0 && a.Port != 443 {
			return false
		}
	} else if a.Port != r.port {
		return false
	}
	if !r.wildcard {
		return string(a.Host) == r.host
	}
	n := len(a.Host) - len(r.host) // start of the suffix in a.Host
	if n < 2 || a.Host[n-1] != '.' || string(a.Host[n:]) != r.host {
		return false
	}
	return bytes.IndexByte(a.Host[:n-1], '.') < 0
}

// defaultHosts is the seed's table. Each name's hosts keep the seed's order,
// which DefaultHosts returns; nothing ranges over the map.
var defaultHosts = map[string][]string{
	"OPENAI_API_KEY":         {"api.openai.com"},
	"ANTHROPIC_API_KEY":      {"api.anthropic.com"},
	"GEMINI_API_KEY":         {"generativelanguage.googleapis.com"},
	"GOOGLE_API_KEY":         {"generativelanguage.googleapis.com"},
	"TAVILY_API_KEY":         {"api.tavily.com"},
	"MISTRAL_API_KEY":        {"api.mistral.ai"},
	"COHERE_API_KEY":         {"api.cohere.com"},
	"GROQ_API_KEY":           {"api.groq.com"},
	"TOGETHER_API_KEY":       {"api.together.xyz"},
	"REPLICATE_API_TOKEN":    {"api.replicate.com"},
	"HUGGINGFACE_API_KEY":    {"api-inference.huggingface.co", "huggingface.co"},
	"HF_TOKEN":               {"huggingface.co", "api-inference.huggingface.co"},
	"HUGGING_FACE_HUB_TOKEN": {"huggingface.co", "api-inference.huggingface.co"},
	"PERPLEXITY_API_KEY":     {"api.perplexity.ai"},
	"FIREWORKS_API_KEY":      {"api.fireworks.ai"},
	"DEEPSEEK_API_KEY":       {"api.deepseek.com"},
	"KAGGLE_KEY":             {"www.kaggle.com"},
	"KAGGLE_USERNAME":        {"www.kaggle.com"},
	"KAGGLE_API_KEY":         {"www.kaggle.com"},
	"E2B_API_KEY":            {"api.e2b.app"},
	"MODAL_TOKEN_ID":         {"api.modal.com"},
	"MODAL_TOKEN_SECRET":     {"api.modal.com"},
	"DAYTONA_API_KEY":        {"app.daytona.io"},
}

// DefaultHosts returns the seed's default allowed hosts for a secret name.
// The slice is the caller's to keep.
func DefaultHosts(name string) ([]string, bool) {
	h, ok := defaultHosts[name]
	if !ok {
		return nil, false
	}
	return append([]string(nil), h...), true
}

// faultKind says why an authority or entry is malformed.
type faultKind uint8

const (
	faultNone faultKind = iota
	faultByte
	faultEmptyHost
	faultEmptyLabel
	faultLongLabel
	faultHyphen
	faultLongHost
	faultNumeric
	faultIPv4Dot
	faultEmptyPort
	faultPort
	faultIPv6
	faultIPv6Brackets
)

// hostFault is a small value so the request path can reject an authority
// without allocating; only entry errors render it.
type hostFault struct {
	kind faultKind
	at   int // offset of the offending byte, for faultByte; never the byte itself
}

func (f hostFault) String() string {
	switch f.kind {
	case faultByte:
		return fmt.Sprintf("byte at offset %d is not allowed in a host", f.at)
	case faultEmptyHost:
		return "empty host"
	case faultEmptyLabel:
		return "empty label"
	case faultLongLabel:
		return "label longer than 63 bytes"
	case faultHyphen:
		return "label starts or ends with a hyphen"
	case faultLongHost:
		return "host longer than 253 bytes"
	case faultNumeric:
		return "a numeric host must be a dotted-quad ipv4 address without leading zeros"
	case faultIPv4Dot:
		return "trailing dot after an ipv4 address"
	case faultEmptyPort:
		return "empty port"
	case faultPort:
		return "port must be 1..65535 in decimal without leading zeros"
	case faultIPv6:
		return "invalid bracketed ipv6 address"
	case faultIPv6Brackets:
		return `an ipv6 address needs brackets, as in "[2001:db8::1]" or "[2001:db8::1]:8443"`
	}
	return "ok"
}

const (
	maxHostLen  = 253
	maxLabelLen = 63
)

func canonicalAuthority(dst, raw []byte) (Authority, hostFault) {
	dst = dst[:0]
	if len(raw) > 0 && raw[0] == '[' {
		return canonicalIPv6(dst, raw)
	}
	var port uint16
	host := raw
	if i := bytes.IndexByte(raw, ':'); i >= 0 {
		p, f := parsePort(raw, i+1)
		if f.kind != faultNone {
			if looksLikeIPv6(raw) {
				f = hostFault{kind: faultIPv6Brackets}
			}
			return Authority{}, f
		}
		host, port = raw[:i], p
	}
	trailingDot := len(host) > 0 && host[len(host)-1] == '.'
	if trailingDot {
		host = host[:len(host)-1]
	}
	if len(host) == 0 {
		return Authority{}, hostFault{kind: faultEmptyHost}
	}
	labelStart, digitsOnly := 0, true
	for i := 0; i <= len(host); i++ {
		if i == len(host) || host[i] == '.' {
			label := host[labelStart:i]
			switch {
			case len(label) == 0:
				return Authority{}, hostFault{kind: faultEmptyLabel}
			case len(label) > maxLabelLen:
				return Authority{}, hostFault{kind: faultLongLabel}
			case label[0] == '-' || label[len(label)-1] == '-':
				return Authority{}, hostFault{kind: faultHyphen}
			}
			if i < len(host) {
				dst = append(dst, '.')
				labelStart, digitsOnly = i+1, true
			}
			continue
		}
		c := host[i]
		switch {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'z', c == '-':
			digitsOnly = false
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
			digitsOnly = false
		default:
			return Authority{}, hostFault{kind: faultByte, at: i}
		}
		dst = append(dst, c)
	}
	if len(dst) > maxHostLen {
		return Authority{}, hostFault{kind: faultLongHost}
	}
	// A numeric last label means an IPv4 address; only the dotted-quad form is
	// accepted, since resolvers read "0x7f.1" or "010.0.0.1" in different ways.
	if digitsOnly {
		if !isDottedQuad(dst) {
			return Authority{}, hostFault{kind: faultNumeric}
		}
		if trailingDot {
			return Authority{}, hostFault{kind: faultIPv4Dot}
		}
	}
	return Authority{Host: dst, Port: port}, hostFault{}
}

func canonicalIPv6(dst, raw []byte) (Authority, hostFault) {
	end := bytes.IndexByte(raw, ']')
	if end < 2 {
		return Authority{}, hostFault{kind: faultIPv6}
	}
	inner := raw[1:end]
	for i, c := range inner {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.') {
			return Authority{}, hostFault{kind: faultByte, at: 1 + i}
		}
	}
	// The string aliases raw only for this call: a parse error, the one
	// thing that could keep it, is dropped. This saves a copy per request.
	addr, err := netip.ParseAddr(unsafe.String(&inner[0], len(inner)))
	if err != nil || !addr.Is6() || addr.Zone() != "" {
		return Authority{}, hostFault{kind: faultIPv6}
	}
	var port uint16
	if rest := raw[end+1:]; len(rest) > 0 {
		if rest[0] != ':' {
			return Authority{}, hostFault{kind: faultByte, at: end + 1}
		}
		p, f := parsePort(raw, end+2)
		if f.kind != faultNone {
			return Authority{}, f
		}
		port = p
	}
	dst = append(dst, '[')
	dst = addr.AppendTo(dst)
	dst = append(dst, ']')
	return Authority{Host: dst, Port: port}, hostFault{}
}

// looksLikeIPv6 reports whether raw, which failed to parse as host:port,
// holds only an IPv6 address's bytes and at least two colons: an address
// written without its brackets.
func looksLikeIPv6(raw []byte) bool {
	colons := 0
	for _, c := range raw {
		switch {
		case c == ':':
			colons++
		case !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.'):
			return false
		}
	}
	return colons >= 2
}

// parsePort reads raw[start:] as a port.
func parsePort(raw []byte, start int) (uint16, hostFault) {
	p := raw[start:]
	if len(p) == 0 {
		return 0, hostFault{kind: faultEmptyPort}
	}
	if p[0] == '0' || len(p) > 5 {
		return 0, hostFault{kind: faultPort}
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, hostFault{kind: faultPort}
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, hostFault{kind: faultPort}
	}
	return uint16(n), hostFault{}
}

// isDottedQuad reports whether b is four decimal octets 0..255 without
// leading zeros.
func isDottedQuad(b []byte) bool {
	octets, n, digits := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || n > 255 {
				return false
			}
			octets++
			n, digits = 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' || digits > 0 && n == 0 || digits == 3 {
			return false
		}
		n = n*10 + int(c-'0')
		digits++
	}
	return octets == 4
}
