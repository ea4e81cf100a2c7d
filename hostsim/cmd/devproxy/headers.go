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
// filter chain. net/http has already parsed the request: it folds Host into
// r.Host (the absolute-form authority winning over the Host header, as in
// Envoy) and keeps headers in a map, so the order of lines with different
// names is lost; they come out sorted by name, while lines sharing a name keep
// their arrival order and count.
func requestHeaders(r *http.Request) hostsim.Headers {
	h := hostsim.Headers{{Name: ":method", Value: r.Method}}
	if r.Method == http.MethodConnect {
		h = append(h, hostsim.Header{Name: ":authority", Value: r.Host})
	} else {
		h = append(h,
			hostsim.Header{Name: ":scheme", Value: "http"},
			hostsim.Header{Name: ":authority", Value: r.Host},
			hostsim.Header{Name: ":path", Value: requestPath(r.RequestURI)},
		)
	}
	return appendHeaders(h, r.Header)
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

// requestPath returns :path from a request target exactly as sent:
// origin-form and asterisk-form unchanged, absolute-form without its scheme
// and authority. Nothing is decoded or re-encoded.
func requestPath(target string) string {
	if strings.HasPrefix(target, "/") || target == "*" {
		return target
	}
	_, rest, _ := strings.Cut(target, "://")
	i := strings.IndexAny(rest, "/?")
	if i < 0 {
		return "/"
	}
	if rest[i] == '?' {
		return "/" + rest[i:]
	}
	return rest[i:]
}

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
