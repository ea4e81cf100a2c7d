//go:build wasip1

package main

// Ops and callbacks for HTTP calls, gRPC calls, foreign functions and shared
// queues. A call remembers the stream that made it, as SDKs do; its response
// callback switches to that stream and runs the ops in the stream's
// x-callback-ops request header.

import (
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
	"unsafe"
)

//go:wasmimport env proxy_http_call
func proxyHTTPCall(upstream unsafe.Pointer, upstreamSize uint32, headers unsafe.Pointer, headersSize uint32,
	body unsafe.Pointer, bodySize uint32, trailers unsafe.Pointer, trailersSize uint32, timeout uint32, token unsafe.Pointer) uint32

//go:wasmimport env proxy_grpc_call
func proxyGrpcCall(service unsafe.Pointer, serviceSize uint32, name unsafe.Pointer, nameSize uint32,
	method unsafe.Pointer, methodSize uint32, metadata unsafe.Pointer, metadataSize uint32,
	request unsafe.Pointer, requestSize uint32, timeout uint32, token unsafe.Pointer) uint32

//go:wasmimport env proxy_grpc_stream
func proxyGrpcStream(service unsafe.Pointer, serviceSize uint32, name unsafe.Pointer, nameSize uint32,
	method unsafe.Pointer, methodSize uint32, metadata unsafe.Pointer, metadataSize uint32, token unsafe.Pointer) uint32

//go:wasmimport env proxy_grpc_cancel
func proxyGrpcCancel(token uint32) uint32

//go:wasmimport env proxy_grpc_close
func proxyGrpcClose(token uint32) uint32

//go:wasmimport env proxy_grpc_send
func proxyGrpcSend(token uint32, message unsafe.Pointer, size uint32, endStream uint32) uint32

//go:wasmimport env proxy_call_foreign_function
func proxyCallForeignFunction(name unsafe.Pointer, nameSize uint32, args unsafe.Pointer, argsSize uint32,
	results, resultsSize unsafe.Pointer) uint32

//go:wasmimport env proxy_register_shared_queue
func proxyRegisterSharedQueue(name unsafe.Pointer, size uint32, token unsafe.Pointer) uint32

//go:wasmimport env proxy_resolve_shared_queue
func proxyResolveSharedQueue(vmID unsafe.Pointer, vmIDSize uint32, name unsafe.Pointer, size uint32, token unsafe.Pointer) uint32

//go:wasmimport env proxy_enqueue_shared_queue
func proxyEnqueueSharedQueue(token uint32, data unsafe.Pointer, size uint32) uint32

//go:wasmimport env proxy_dequeue_shared_queue
func proxyDequeueSharedQueue(token uint32, data, size unsafe.Pointer) uint32

// streamID is the stream whose callback is running (set by proxy_on_request_headers).
var streamID uint32

// callers maps an HTTP call's token to the stream that made it.
var callers = map[uint32]uint32{}

// opArgs splits an op's '|'-separated arguments; a missing one is "".
func opArgs(arg string) func(i int) string {
	args := strings.Split(arg, "|")
	return func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
}

// calloutOp runs one op of this file; arguments are separated by '|'.
func calloutOp(name, arg string) {
	argAt := opArgs(arg)
	switch name {
	case "http-call":
		// http-call:cluster|timeout_ms|method|path|authority|body|trailer_name=value
		var pairs [][2]string
		for i, k := range []string{":method", ":path", ":authority"} {
			if v := argAt(2 + i); v != "" {
				pairs = append(pairs, [2]string{k, v})
			}
		}
		pairs = append(pairs, [2]string{"X-Caller", "guest"})
		var trailers [][2]string
		if k, v, found := strings.Cut(argAt(6), "="); found {
			trailers = append(trailers, [2]string{k, v})
		}
		h, tr := marshal(pairs), marshal(trailers)
		if len(trailers) == 0 {
			tr = nil
		}
		cluster, body := argAt(0), argAt(5)
		timeout, _ := strconv.ParseUint(argAt(1), 10, 32)
		token := uint32(0xdead)
		st := proxyHTTPCall(ptr(cluster), uint32(len(cluster)), bptr(h), uint32(len(h)), ptr(body), uint32(len(body)),
			bptr(tr), uint32(len(tr)), uint32(timeout), unsafe.Pointer(&token))
		if st == 0 {
			callers[token] = streamID
		}
		logf(2, "op=http-call status="+itoa(st), "token="+itoa(token))
	case "call-maps-write":
		// The HTTP-call response is read-only.
		k, v := "x-k", "v"
		var n uint32
		add := proxyAddHeaderMapValue(6, ptr(k), uint32(len(k)), ptr(v), uint32(len(v)))
		size := proxyGetHeaderMapSize(6, unsafe.Pointer(&n))
		set := proxySetBufferBytes(4, 0, 0, ptr(v), uint32(len(v)))
		logf(2, "op=call-maps-write add="+itoa(add), "size="+itoa(size), "set_body="+itoa(set))
	case "call-body":
		st, b := buffer(4)
		logf(2, "op=call-body status="+itoa(st), "body="+string(b))
	case "grpc-call", "grpc-stream":
		service := argAt(0)
		if b, err := hex.DecodeString(strings.TrimPrefix(service, "hex=")); err == nil && strings.HasPrefix(service, "hex=") {
			service = string(b)
		}
		svc, method, req := "svc.Service", "Method", "request"
		token := uint32(0xdead)
		var st uint32
		if name == "grpc-call" {
			st = proxyGrpcCall(ptr(service), uint32(len(service)), ptr(svc), uint32(len(svc)), ptr(method), uint32(len(method)),
				nil, 0, ptr(req), uint32(len(req)), 1000, unsafe.Pointer(&token))
		} else {
			st = proxyGrpcStream(ptr(service), uint32(len(service)), ptr(svc), uint32(len(svc)), ptr(method), uint32(len(method)),
				nil, 0, unsafe.Pointer(&token))
		}
		logf(2, "op="+name+" status="+itoa(st), "token="+itoa(token))
	case "grpc-cancel", "grpc-close", "grpc-send":
		token, _ := strconv.ParseUint(arg, 10, 32)
		var st uint32
		switch name {
		case "grpc-cancel":
			st = proxyGrpcCancel(uint32(token))
		case "grpc-close":
			st = proxyGrpcClose(uint32(token))
		default:
			msg := "message"
			st = proxyGrpcSend(uint32(token), ptr(msg), uint32(len(msg)), 1)
		}
		logf(2, "op="+name+" status="+itoa(st))
	case "foreign":
		// foreign:name|hex arguments
		st, out := foreign(argAt(0), argAt(1))
		logf(2, "op=foreign status="+itoa(st), "result="+hex.EncodeToString(out))
	case "zlib-roundtrip":
		st, packed := foreign("compress", hex.EncodeToString([]byte(arg)))
		st2, unpacked := foreign("uncompress", hex.EncodeToString(packed))
		logf(2, "op=zlib-roundtrip compress="+itoa(st), "uncompress="+itoa(st2), "result="+string(unpacked))
	case "foreign-no-results":
		fn, args := "compress", []byte("abc")
		size := uint32(0xdead)
		st := proxyCallForeignFunction(ptr(fn), uint32(len(fn)), bptr(args), uint32(len(args)), nil, unsafe.Pointer(&size))
		logf(2, "op=foreign-no-results status="+itoa(st), "size_nonzero="+strconv.FormatBool(size != 0 && size != 0xdead))
	case "queue-register":
		token := uint32(0xdead)
		st := proxyRegisterSharedQueue(ptr(arg), uint32(len(arg)), unsafe.Pointer(&token))
		logf(2, "op=queue-register status="+itoa(st), "token="+itoa(token))
	case "queue-resolve":
		// queue-resolve:vm_id|name
		vmID, qname := argAt(0), argAt(1)
		token := uint32(0xdead)
		st := proxyResolveSharedQueue(ptr(vmID), uint32(len(vmID)), ptr(qname), uint32(len(qname)), unsafe.Pointer(&token))
		logf(2, "op=queue-resolve status="+itoa(st), "token="+itoa(token))
	case "queue-enqueue":
		// queue-enqueue:token|data
		token, _ := strconv.ParseUint(argAt(0), 10, 32)
		data := argAt(1)
		st := proxyEnqueueSharedQueue(uint32(token), ptr(data), uint32(len(data)))
		logf(2, "op=queue-enqueue status="+itoa(st))
	case "queue-dequeue":
		token, _ := strconv.ParseUint(arg, 10, 32)
		st, data := dequeue(uint32(token))
		logf(2, "op=queue-dequeue status="+itoa(st), "data="+data)
	}
}

func foreign(name, hexArgs string) (uint32, []byte) {
	args, _ := hex.DecodeString(hexArgs)
	var p, n uint32
	st := proxyCallForeignFunction(ptr(name), uint32(len(name)), bptr(args), uint32(len(args)), unsafe.Pointer(&p), unsafe.Pointer(&n))
	return st, take(p, n)
}

func dequeue(token uint32) (uint32, string) {
	var p, n uint32
	st := proxyDequeueSharedQueue(token, unsafe.Pointer(&p), unsafe.Pointer(&n))
	return st, string(take(p, n))
}

//go:wasmexport proxy_on_http_call_response
func onHTTPCallResponse(id, token, headers, bodySize, trailers uint32) {
	logf(2, "http_call_response id="+itoa(id), "token="+itoa(token), "headers="+itoa(headers),
		"body="+itoa(bodySize), "trailers="+itoa(trailers))
	st, b := buffer(4)
	logf(2, "call headers="+pairsText(6), "body_status="+itoa(st), "body="+string(b), "trailers="+pairsText(7))
	caller, found := callers[token]
	delete(callers, token)
	if !found {
		return
	}
	logf(2, "op=effective status="+itoa(proxySetEffectiveContext(caller)))
	runOps(0, "x-callback-ops")
}

//go:wasmexport proxy_on_queue_ready
func onQueueReady(id, token uint32) {
	logf(2, "queue_ready id="+itoa(id), "token="+itoa(token))
	for {
		st, data := dequeue(token)
		logf(2, "dequeue status="+itoa(st), "data="+data)
		if st != 0 {
			return
		}
	}
}

// pairsText is map t as "name=value,name=value".
func pairsText(t uint32) string {
	var p, n uint32
	if st := proxyGetHeaderMapPairs(t, unsafe.Pointer(&p), unsafe.Pointer(&n)); st != 0 {
		return "status" + itoa(st)
	}
	b := take(p, n)
	if len(b) < 4 {
		return ""
	}
	count := binary.LittleEndian.Uint32(b)
	sizes, data := b[4:], b[4+8*count:]
	var out []string
	for i := range count {
		ks, vs := binary.LittleEndian.Uint32(sizes[8*i:]), binary.LittleEndian.Uint32(sizes[8*i+4:])
		out = append(out, string(data[:ks])+"="+string(data[ks+1:ks+1+vs]))
		data = data[ks+1+vs+1:]
	}
	return strings.Join(out, ",")
}
