package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/secretgate/secretgate/policies"
)

// logLevel is the proxy-wasm log level (spec: proxy_log).
type logLevel uint32

const (
	logTrace logLevel = iota
	logDebug
	logInfo
	logWarn
	logError
	logCritical
)

// hostCalls is everything the filter asks of the host. Under wasip1 it is the
// proxy-wasm ABI (abi_wasip1.go); in native tests it is a fake, so the filter
// logic runs unchanged on both.
type hostCalls interface {
	// pluginConfiguration returns the plugin configuration buffer.
	pluginConfiguration(size int) ([]byte, error)
	// requestHeaderPairs returns the request headers in the pairs
	// serialisation. The bytes are valid until the next host call that returns data.
	requestHeaderPairs() ([]byte, error)
	// setRequestHeaderPairs replaces the whole request header map.
	setRequestHeaderPairs(pairs []byte) error
	sendLocalReply(status uint32, details string, body []byte, headerPairs []byte) error
	log(level logLevel, msg []byte)
	logLevel() logLevel
	defineCounter(name string) (uint32, error)
	incrementMetric(id uint32, delta int64) error
}

var errPairs = errors.New("malformed header pairs")

// Limits of proxy-wasm-cpp-host's pairs decoder (include/proxy-wasm/limits.h,
// src/pairs_util.cc): it reads a larger serialisation as an empty map and
// still returns Ok, so Envoy would send the request on with no headers.
const (
	maxPairs      = 1024
	maxPairsBytes = 1 << 20
)

var errPairsLimit = fmt.Errorf("the rewritten headers exceed proxy-wasm's limits of %d lines or %d bytes", maxPairs, maxPairsBytes)

// decodePairs parses the proxy-wasm header map serialisation: a u32 count,
// then a u32 name length and a u32 value length per pair, then every name and
// value each followed by a NUL byte. The headers alias buf.
func decodePairs(dst []policies.Header, buf []byte) ([]policies.Header, error) {
	if len(buf) < 4 {
		return dst, fmt.Errorf("%w: %d bytes", errPairs, len(buf))
	}
	n := int(binary.LittleEndian.Uint32(buf))
	sizes := buf[4:]
	if n > len(sizes)/8 {
		return dst, fmt.Errorf("%w: %d pairs in %d bytes", errPairs, n, len(buf))
	}
	data := sizes[8*n:]
	for i := range n {
		nameLen := int(binary.LittleEndian.Uint32(sizes[8*i:]))
		valueLen := int(binary.LittleEndian.Uint32(sizes[8*i+4:]))
		end := nameLen + valueLen + 2
		if end > len(data) || data[nameLen] != 0 || data[end-1] != 0 {
			return dst, fmt.Errorf("%w: pair %d overruns the buffer or lacks its NUL", errPairs, i)
		}
		name := data[:nameLen:nameLen]
		value := data[nameLen+1 : end-1 : end-1]
		dst = append(dst, policies.Header{Name: name, Value: value})
		data = data[end:]
	}
	return dst, nil
}

// encodePairs appends the pairs serialisation of headers to dst.
func encodePairs(dst []byte, headers []policies.Header) []byte {
	dst, data := growPairs(dst, headers)
	for _, h := range headers {
		data = putLine(data, h)
	}
	return dst
}

// encodeRewritten is encodePairs(dst, out) for out, a rewrite of in, where in
// was decoded from src and out's unchanged lines still alias in's bytes. It
// copies each run of unchanged lines from src in one move: in Go's wasm
// output every copy is a call, and most lines are unchanged.
func encodeRewritten(dst, src []byte, in, out []policies.Header) []byte {
	if len(in) != len(out) {
		return encodePairs(dst, out)
	}
	dst, data := growPairs(dst, out)
	srcData := src[4+8*len(in):]
	runStart, at := 0, 0 // srcData[runStart:at] is unchanged and not yet copied
	for i, h := range out {
		next := at + len(in[i].Name) + len(in[i].Value) + 2
		if aliases(h.Value, in[i].Value) && aliases(h.Name, in[i].Name) {
			at = next
			continue
		}
		data = data[copy(data, srcData[runStart:at]):]
		data = putLine(data, h)
		runStart, at = next, next
	}
	copy(data, srcData[runStart:at])
	return dst
}

// growPairs sizes dst once for the serialisation of headers, writes the
// count and every size, and returns the data section still to fill: in Go's
// wasm output every append is a call, so lines are written by index.
func growPairs(dst []byte, headers []policies.Header) (out, data []byte) {
	size := 4 + 8*len(headers)
	for _, h := range headers {
		size += len(h.Name) + len(h.Value) + 2
	}
	start := len(dst)
	dst = slices.Grow(dst, size)[:start+size]
	w := dst[start:]
	binary.LittleEndian.PutUint32(w, uint32(len(headers)))
	for i, h := range headers {
		binary.LittleEndian.PutUint32(w[4+8*i:], uint32(len(h.Name)))
		binary.LittleEndian.PutUint32(w[8+8*i:], uint32(len(h.Value)))
	}
	return dst, w[4+8*len(headers):]
}

// putLine writes name NUL value NUL and returns what follows.
func putLine(data []byte, h policies.Header) []byte {
	n := copy(data, h.Name)
	data[n] = 0
	m := copy(data[n+1:], h.Value)
	data[n+1+m] = 0
	return data[n+m+2:]
}

// aliases reports whether a and b are the same bytes in memory.
func aliases(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
