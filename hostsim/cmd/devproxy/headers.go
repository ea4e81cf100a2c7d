package main

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/secretgate/secretgate/hostsim"
)

// hopByHop are the connection-level headers a proxy consumes instead of
// forwarding (RFC 9110 §7.6.1), as canonical keys. Proxy-Authorization is
// deliberately absent: the filter must see it, and leave it.
var hopByHop = map[string]bool{
	"Connection":        true,
	"Proxy-Connection":  true,
	"Keep-Alive":        true,
	"Te":                true,
	"Trailer":           true,
	"Transfer-Encoding": true,
	"Upgrade":           true,
}

// requestHeaders builds the header map Envoy's HTTP/1 codec would hand the
// filter chain, or reports false for a request target Envoy answers 400 for.
// net/http has already parsed the request: it folds Host into r.Host (the
// absolute-form authority winning over the Host header, as in Envoy) and
// keeps headers in a map, so the order of lines with different names is lost;
// they come out sorted by name, while lines sharing a name keep their arrival
// order and count.
func requestHeaders(r *http.Request) (hostsim.Headers, bool) {
	h := hostsim.Headers{{Name: ":method", Value: r.Method}}
	if r.Method == http.MethodConnect {
		if !validAuthority(r.RequestURI, true) {
			return nil, false
		}
		// As sent: r.Host has an IPv6 zone's %25 decoded.
		h = append(h, hostsim.Header{Name: ":authority", Value: r.RequestURI})
	} else {
		authority, path, ok := requestTarget(r.Method, r.RequestURI)
		if !ok {
			return nil, false
		}
		if authority == "" {
			authority = r.Host
		}
		h = append(h,
			hostsim.Header{Name: ":scheme", Value: "http"},
			hostsim.Header{Name: ":authority", Value: authority},
			hostsim.Header{Name: ":path", Value: path},
		)
	}
	header := r.Header
	if isH2cUpgrade(header) {
		// Envoy's HTTP/1 codec drops an h2c upgrade's HTTP2-Settings with
		// its Upgrade and Connection (both hop-by-hop here anyway).
		header = header.Clone()
		header.Del("Http2-Settings")
	}
	return appendHeaders(h, header), true
}

// responseHeaders builds the header map of an upstream response.
func responseHeaders(resp *http.Response) hostsim.Headers {
	h := hostsim.Headers{{Name: ":status", Value: strconv.Itoa(resp.StatusCode)}}
	return appendHeaders(h, resp.Header)
}

func appendHeaders(h hostsim.Headers, src http.Header) hostsim.Headers {
	names := make([]string, 0, len(src))
	for name := range src {
		if !hopByHop[http.CanonicalHeaderKey(name)] {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		lower := strings.ToLower(name)
		for _, v := range src[name] {
			h = append(h, hostsim.Header{Name: lower, Value: v})
		}
	}
	return h
}

// requestPath returns :path from a request target as Envoy's HTTP/1 codec
// derives it, and false where the codec answers 400 (http1.invalid_url or
// http1.invalid_scheme) instead: ServerConnectionImpl::handlePath in
// source/common/http/http1/codec_impl.cc, which parses absolute-form with
// http_parser_parse_url (Utility::Url::initialize in
// source/common/http/utility.cc). Origin-form stays as sent, "*" only with
// OPTIONS; absolute-form needs http or https, "//" and a host, and loses its
// scheme and authority. So "http:/v1/models?key=..." is refused, never sent
// on as "/" with its path and query gone. A target with a "#" fragment is
// refused too, as the connection manager does by default
// (http_reject_path_with_fragment). Nothing is decoded or re-encoded.
func requestPath(method, target string) (string, bool) {
	_, path, ok := requestTarget(method, target)
	return path, ok
}

// requestTarget is requestPath that also returns an absolute-form target's
// authority (host[:port], as sent: it becomes :authority); "" for the others.
func requestTarget(method, target string) (authority, path string, ok bool) {
	switch {
	case strings.Contains(target, "#"):
		return "", "", false
	case strings.HasPrefix(target, "/"):
		return "", target, true
	case target == "*":
		return "", target, method == http.MethodOptions
	}
	scheme, rest, ok := strings.Cut(target, "://")
	if !ok || !strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") {
		return "", "", false
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority = rest[:end]
	if !validAuthority(authority, false) {
		return "", "", false
	}
	if _, hostPort, found := strings.Cut(authority, "@"); found {
		authority = hostPort
	}
	switch path := rest[end:]; {
	case path == "":
		return authority, "/", true
	case path[0] == '?':
		return authority, "/" + path, true
	default:
		return authority, path, true
	}
}

// validAuthority reports whether http_parser takes a as the authority of an
// absolute-form target ([userinfo@]host[:port]) or, for CONNECT, as its
// whole target (host:port, nothing else): a host of letters, digits, ".",
// "-" and "_" or a bracketed IPv6 address (with an optional %zone), one "@"
// at most, and a port of digits up to 65535 wherever a colon announces one.
func validAuthority(a string, connect bool) bool {
	if userinfo, hostPort, found := strings.Cut(a, "@"); found {
		if connect || strings.IndexFunc(userinfo, func(c rune) bool { return !isUserinfoChar(c) }) >= 0 {
			return false
		}
		a = hostPort
	}
	var host, port string
	var hasPort, ipv6 bool
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return false
		}
		host, ipv6 = a[1:end], true
		if rest := a[end+1:]; rest != "" {
			if rest[0] != ':' {
				return false
			}
			port, hasPort = rest[1:], true
		}
	} else {
		host, port, hasPort = strings.Cut(a, ":")
	}
	if host == "" || connect && !hasPort || !validHost(host, ipv6) {
		return false
	}
	if !hasPort {
		return true
	}
	_, err := strconv.ParseUint(port, 10, 16)
	return err == nil
}

// validHost is http_parser's host grammar (http_parse_host_char, built
// without HTTP_PARSER_STRICT).
func validHost(host string, ipv6 bool) bool {
	if !ipv6 {
		return strings.IndexFunc(host, func(c rune) bool { return !isAlnum(c) && !strings.ContainsRune(".-_", c) }) < 0
	}
	addr, zone, hasZone := strings.Cut(host, "%")
	if addr == "" || hasZone && zone == "" {
		return false
	}
	return strings.IndexFunc(addr, func(c rune) bool { return !isHex(c) && c != ':' && c != '.' }) < 0 &&
		strings.IndexFunc(zone, func(c rune) bool { return !isAlnum(c) && !strings.ContainsRune("%._-~", c) }) < 0
}

func isUserinfoChar(c rune) bool { return isAlnum(c) || strings.ContainsRune("-_.!~*'()%;:&=+$,", c) }

func isAlnum(c rune) bool {
	return c < 0x80 && (c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z')
}

func isHex(c rune) bool { return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'f' }

// pseudo returns the value of a pseudo-header.
func pseudo(h hostsim.Headers, name string) (string, bool) {
	for _, f := range h {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}

// copyHeaders adds the regular (non-pseudo) headers of h to dst, except the
// ones net/http writes itself from other fields.
func copyHeaders(dst http.Header, h hostsim.Headers, skip ...string) {
	for _, f := range h {
		if strings.HasPrefix(f.Name, ":") || slices.Contains(skip, f.Name) {
			continue
		}
		key := http.CanonicalHeaderKey(f.Name)
		dst[key] = append(dst[key], f.Value)
	}
}

// isUpgrade reports whether a request asks for a protocol upgrade as Envoy
// sees one: an Upgrade header and "upgrade" among the Connection tokens
// (Http::Utility::isUpgrade). An h2c upgrade does not count: Envoy's HTTP/1
// codec drops its headers and serves the request as HTTP/1.1.
func isUpgrade(h http.Header) bool {
	return h.Get("Upgrade") != "" && connectionHasUpgrade(h) && !isH2cUpgrade(h)
}

// isH2cUpgrade is Http::Utility::isH2UpgradeRequest: an upgrade to h2c alone.
func isH2cUpgrade(h http.Header) bool {
	upgrade := h.Values("Upgrade")
	return len(upgrade) == 1 && strings.EqualFold(strings.TrimSpace(upgrade[0]), "h2c") && connectionHasUpgrade(h)
}

func connectionHasUpgrade(h http.Header) bool {
	for _, line := range h.Values("Connection") {
		for token := range strings.SplitSeq(line, ",") {
			if strings.EqualFold(strings.TrimSpace(token), "upgrade") {
				return true
			}
		}
	}
	return false
}
