//go:build wasip1

package main

// Ops and callbacks for bodies and trailers: proxy_on_response_body runs the ops
// that "resp-body-ops" set (none: it makes no host call); the trailers callbacks
// run the ops in the trailer map's own x-ops header. Map ops in a response body
// callback act on the response trailers (map type 3).

import (
	"strings"
	"unsafe"
)

var respBodyOps string

//go:wasmexport proxy_on_response_body
func onResponseBody(id, size, eos uint32) uint32 {
	if respBodyOps == "" {
		return 0
	}
	logf(2, "response_body size="+itoa(size), "eos="+itoa(eos))
	return runOpList(3, respBodyOps)
}

//go:wasmexport proxy_on_request_trailers
func onRequestTrailers(id, n uint32) uint32 {
	logf(2, "request_trailers n="+itoa(n))
	return runOps(1, "x-ops")
}

//go:wasmexport proxy_on_response_trailers
func onResponseTrailers(id, n uint32) uint32 {
	logf(2, "response_trailers n="+itoa(n))
	return runOps(3, "x-ops")
}

// bodyOp runs one op of this file; arguments are separated by '|'.
func bodyOp(name, arg string) {
	args := strings.Split(arg, "|")
	for len(args) < 3 {
		args = append(args, "")
	}
	switch name {
	case "resp-body-ops":
		respBodyOps = strings.ReplaceAll(arg, ",", ";")
	case "body-get":
		// body-get:type|start|length
		var p, n uint32
		st := proxyGetBufferBytes(u32(args[0]), u32(args[1]), u32(args[2]), unsafe.Pointer(&p), unsafe.Pointer(&n))
		logf(2, "op=body-get status="+itoa(st), "bytes="+string(take(p, n)))
	case "body-set":
		// body-set:type|start|length|data
		data := ""
		if len(args) > 3 {
			data = args[3]
		}
		st := proxySetBufferBytes(u32(args[0]), u32(args[1]), u32(args[2]), ptr(data), uint32(len(data)))
		logf(2, "op=body-set status="+itoa(st))
	}
}
