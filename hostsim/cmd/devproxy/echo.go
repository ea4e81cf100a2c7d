package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// echoUpstream answers every request itself with the request as it would
// have gone upstream: the first line, then each header sorted by name (empty
// values included, and the content-length or transfer-encoding line net/http
// would write), then any trailers after an empty line. The body is left out.
// It exists for demos, to show a swap without a real API, so it deliberately
// returns injected values to the client.
type echoUpstream struct{}

func (echoUpstream) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
		// Reading to the end runs the request trailers through the filter.
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	target := req.URL.Opaque
	if target == "" {
		target = req.URL.RequestURI()
	}
	fmt.Fprintf(&b, "%s %s\nhost: %s\n", req.Method, target, req.Host)
	header := req.Header.Clone()
	if ua := header["User-Agent"]; len(ua) == 1 && ua[0] == "" {
		// net/http sends no User-Agent line for an empty value.
		delete(header, "User-Agent")
	}
	// The framing line net/http's transport writes from ContentLength.
	switch {
	case req.ContentLength > 0:
		header.Set("Content-Length", strconv.FormatInt(req.ContentLength, 10))
	case req.ContentLength < 0 && req.Body != nil:
		header.Set("Transfer-Encoding", "chunked")
	case req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch:
		header.Set("Content-Length", "0")
	}
	writeFields(&b, header)
	if len(req.Trailer) > 0 {
		b.WriteString("\n")
		writeFields(&b, req.Trailer)
	}
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"text/plain; charset=utf-8"}},
		Body:          io.NopCloser(&b),
		ContentLength: int64(b.Len()),
		Request:       req,
	}, nil
}

func (echoUpstream) CloseIdleConnections() {}

// connectRefused is what -echo answers a CONNECT the filter lets through
// with, instead of tunnelling: the 403 with an empty body the shipped
// envoy.yaml's connect_matcher route answers every CONNECT with. Echoing the
// request is no answer here: a 2xx to CONNECT opens a tunnel and carries no
// body (RFC 9110 section 9.3.6), and the client would take the echo for the
// upstream's first bytes.
func connectRefused() *http.Response {
	return &http.Response{
		Status:     "403 Forbidden",
		StatusCode: http.StatusForbidden,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{"Content-Length": {"0"}},
		Body:       http.NoBody,
	}
}

// writeFields writes one "name: value" line per value, sorted by name.
func writeFields(b *bytes.Buffer, h http.Header) {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range h[name] {
			fmt.Fprintf(b, "%s: %s\n", strings.ToLower(name), v)
		}
	}
}
