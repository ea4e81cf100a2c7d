package main

import (
	"encoding/binary"
	"errors"
	"fmt"

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
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(headers)))
	for _, h := range headers {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(h.Name)))
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(h.Value)))
	}
	for _, h := range headers {
		dst = append(dst, h.Name...)
		dst = append(dst, 0)
		dst = append(dst, h.Value...)
		dst = append(dst, 0)
	}
	return dst
}
