package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// echoUpstream answers every request itself with the request as it would
// have gone upstream: the first line, then each header sorted by name. It
// exists for demos, to show a swap without a real API, so it deliberately
// returns injected values to the client.
type echoUpstream struct{}

func (echoUpstream) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
		_, _ = io.Copy(io.Discard, req.Body)
	}
	var b bytes.Buffer
	target := req.URL.Opaque
	if target == "" {
		target = req.URL.RequestURI()
	}
	fmt.Fprintf(&b, "%s %s\nhost: %s\n", req.Method, target, req.Host)
	names := make([]string, 0, len(req.Header))
	for name := range req.Header {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range req.Header[name] {
			if v != "" {
				fmt.Fprintf(&b, "%s: %s\n", strings.ToLower(name), v)
			}
		}
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
