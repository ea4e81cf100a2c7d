package main

import (
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/secretgate/secretgate/hostsim"
)

// errTrailersStopped aborts the upstream request body when the filter does
// not let the request trailers through.
var errTrailersStopped = errors.New("devproxy: the filter stopped the request at its trailers")

// requestTrailers is the body of a chunked request on its way upstream. When
// the client's body ends, it runs the trailers that came with it through the
// filter (proxy_on_request_trailers, as Envoy's decodeTrailers) and leaves
// the filter's trailers in out, the upstream request's Trailer map, which
// net/http writes after the last chunk. Reads happen on the transport's
// goroutine; the VM is reached through p.call as everywhere else.
type requestTrailers struct {
	io.ReadCloser
	p      *devProxy
	r      *http.Request // r.Trailer is complete once its body reached EOF
	stream *hostsim.Stream
	out    http.Header

	mu      sync.Mutex
	ran     bool
	stopped *trailersOutcome // the filter did not continue
}

type trailersOutcome struct {
	res hostsim.Result
	err error
}

func (b *requestTrailers) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	if err != io.EOF {
		return n, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// Declared trailers that never came leave nil values: no callback, as
	// Envoy's codec ends the body without a trailer map.
	fields := appendHeaders(nil, b.r.Trailer)
	if b.ran || len(fields) == 0 {
		return n, err
	}
	b.ran = true
	var res hostsim.Result
	var ferr error
	if !b.p.call(func(*hostsim.VM) {
		res, ferr = b.stream.RequestTrailers(fields)
	}) {
		ferr = errors.New("shutting down")
	}
	if ferr != nil || !res.Continue || res.LocalReply != nil || res.Reset {
		b.stopped = &trailersOutcome{res, ferr}
		return n, errTrailersStopped
	}
	copyHeaders(b.out, res.Trailers)
	return n, err
}

// outcome returns what the filter did with trailers it did not let through,
// or nil.
func (b *requestTrailers) outcome() *trailersOutcome {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stopped
}
