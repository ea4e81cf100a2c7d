//go:build wasip1

package main

import (
	"errors"
	"fmt"
	"unsafe"
)

// This file is the whole proxy-wasm ABI (v0.2.1) surface of the module:
// every import and export. Spec:
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1

// Statuses a host function returns.
const (
	statusOK = 0
)

// Map and buffer types used here.
const (
	mapRequestHeaders  = 0
	bufferPluginConfig = 7
	metricTypeCounter  = 0
)

//go:wasmimport env proxy_log
func hostLog(level uint32, msg unsafe.Pointer, size uint32) uint32

//go:wasmimport env proxy_get_log_level
func hostGetLogLevel(level unsafe.Pointer) uint32

//go:wasmimport env proxy_get_buffer_bytes
func hostGetBufferBytes(bufferType, start, maxSize uint32, data, size unsafe.Pointer) uint32

//go:wasmimport env proxy_get_header_map_pairs
func hostGetHeaderMapPairs(mapType uint32, data, size unsafe.Pointer) uint32

//go:wasmimport env proxy_set_header_map_pairs
func hostSetHeaderMapPairs(mapType uint32, data unsafe.Pointer, size uint32) uint32

//go:wasmimport env proxy_send_local_response
func hostSendLocalResponse(status uint32, details unsafe.Pointer, detailsSize uint32, body unsafe.Pointer, bodySize uint32, headers unsafe.Pointer, headersSize uint32, grpcStatus int32) uint32

//go:wasmimport env proxy_define_metric
func hostDefineMetric(metricType uint32, name unsafe.Pointer, nameSize uint32, id unsafe.Pointer) uint32

//go:wasmimport env proxy_increment_metric
func hostIncrementMetric(id uint32, delta int64) uint32

var disp = newDispatcher(&vmContext{host: abiHost{}})

//go:wasmexport proxy_abi_version_0_2_1
func proxyABIVersion() {}

// hostMemory is where the host writes the data a getter returns. It is
// reused, so a getter's bytes are valid until the next getter: the filter
// finishes with one before calling the next, and the steady state allocates
// nothing.
var hostMemory = make([]byte, 4096)

//go:wasmexport proxy_on_memory_allocate
func proxyOnMemoryAllocate(size uint32) unsafe.Pointer {
	if int(size) > len(hostMemory) {
		hostMemory = make([]byte, max(int(size), 2*len(hostMemory)))
	}
	return unsafe.Pointer(unsafe.SliceData(hostMemory))
}

//go:wasmexport proxy_on_context_create
func proxyOnContextCreate(id, parent uint32) { disp.onContextCreate(id, parent) }

//go:wasmexport proxy_on_vm_start
func proxyOnVMStart(_ uint32, vmConfigSize uint32) uint32 {
	return boolResult(disp.onVMStart(int(vmConfigSize)))
}

//go:wasmexport proxy_on_configure
func proxyOnConfigure(id, size uint32) uint32 {
	return boolResult(disp.onConfigure(id, int(size)))
}

//go:wasmexport proxy_on_request_headers
func proxyOnRequestHeaders(id, n, eos uint32) uint32 {
	return uint32(disp.onRequestHeaders(id, int(n), eos != 0))
}

//go:wasmexport proxy_on_done
func proxyOnDone(id uint32) uint32 { return boolResult(disp.onDone(id)) }

//go:wasmexport proxy_on_delete
func proxyOnDelete(id uint32) { disp.onDelete(id) }

func boolResult(ok bool) uint32 {
	if ok {
		return 1
	}
	return 0
}

// abiHost implements hostCalls with the ABI imports.
type abiHost struct{}

var _ hostCalls = abiHost{}

func statusError(call string, status uint32) error {
	if status == statusOK {
		return nil
	}
	return fmt.Errorf("%s: host status %d", call, status)
}

// The host writes a getter's results into these: a 32-bit address and size.
// They are globals so that passing their address never allocates.
var retAddr, retSize uint32

var errForeignMemory = errors.New("host returned memory the module did not allocate")

// hostResult returns the bytes a getter left in hostMemory, checking that the
// host wrote where proxyOnMemoryAllocate pointed it.
func hostResult() ([]byte, error) {
	if retSize == 0 {
		return nil, nil
	}
	if retAddr != uint32(uintptr(unsafe.Pointer(unsafe.SliceData(hostMemory)))) || int(retSize) > len(hostMemory) {
		return nil, errForeignMemory
	}
	return hostMemory[:retSize], nil
}

func callGetter(name string, status uint32) ([]byte, error) {
	if err := statusError(name, status); err != nil {
		return nil, err
	}
	return hostResult()
}

func (abiHost) pluginConfiguration(size int) ([]byte, error) {
	retAddr, retSize = 0, 0
	b, err := callGetter("proxy_get_buffer_bytes", hostGetBufferBytes(bufferPluginConfig, 0, uint32(size), unsafe.Pointer(&retAddr), unsafe.Pointer(&retSize)))
	// The configuration outlives hostMemory's next use: copy it.
	return append([]byte(nil), b...), err
}

func (abiHost) requestHeaderPairs() ([]byte, error) {
	retAddr, retSize = 0, 0
	return callGetter("proxy_get_header_map_pairs", hostGetHeaderMapPairs(mapRequestHeaders, unsafe.Pointer(&retAddr), unsafe.Pointer(&retSize)))
}

func (abiHost) setRequestHeaderPairs(pairs []byte) error {
	st := hostSetHeaderMapPairs(mapRequestHeaders, unsafe.Pointer(unsafe.SliceData(pairs)), uint32(len(pairs)))
	return statusError("proxy_set_header_map_pairs", st)
}

func (abiHost) sendLocalReply(status uint32, details string, body, headerPairs []byte) error {
	st := hostSendLocalResponse(status,
		unsafe.Pointer(unsafe.StringData(details)), uint32(len(details)),
		unsafe.Pointer(unsafe.SliceData(body)), uint32(len(body)),
		unsafe.Pointer(unsafe.SliceData(headerPairs)), uint32(len(headerPairs)),
		-1)
	return statusError("proxy_send_local_response", st)
}

func (abiHost) log(level logLevel, msg []byte) {
	hostLog(uint32(level), unsafe.Pointer(unsafe.SliceData(msg)), uint32(len(msg)))
}

func (abiHost) logLevel() logLevel {
	if hostGetLogLevel(unsafe.Pointer(&retSize)) != statusOK {
		return logInfo
	}
	return logLevel(retSize)
}

func (abiHost) defineCounter(name string) (uint32, error) {
	st := hostDefineMetric(metricTypeCounter, unsafe.Pointer(unsafe.StringData(name)), uint32(len(name)), unsafe.Pointer(&retSize))
	return retSize, statusError("proxy_define_metric", st)
}

func (abiHost) incrementMetric(id uint32, delta int64) error {
	return statusError("proxy_increment_metric", hostIncrementMetric(id, delta))
}
