//go:build wasip1

package main

// Ops for the clock, the tick timer, shared data, proxy_get_status,
// proxy_close_stream, proxy_continue_stream with any stream type and
// proxy_get_buffer_status, plus the proxy_on_tick callback.

import (
	"strconv"
	"strings"
	"unsafe"
)

//go:wasmimport env proxy_get_current_time_nanoseconds
func proxyGetCurrentTimeNanoseconds(ret unsafe.Pointer) uint32

//go:wasmimport env proxy_set_tick_period_milliseconds
func proxySetTickPeriodMilliseconds(period uint32) uint32

//go:wasmimport env proxy_get_shared_data
func proxyGetSharedData(key unsafe.Pointer, keySize uint32, retData, retSize, retCas unsafe.Pointer) uint32

//go:wasmimport env proxy_set_shared_data
func proxySetSharedData(key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32, cas uint32) uint32

//go:wasmimport env proxy_get_status
func proxyGetStatus(code, retData, retSize unsafe.Pointer) uint32

//go:wasmimport env proxy_close_stream
func proxyCloseStream(t uint32) uint32

//go:wasmimport env proxy_get_buffer_status
func proxyGetBufferStatus(t uint32, retSize, retFlags unsafe.Pointer) uint32

// tickOps are the ops proxy_on_tick runs, set by the op "on-tick" (',' stands for ';').
var tickOps string

//go:wasmexport proxy_on_tick
func onTick(id uint32) {
	logf(2, "tick id="+itoa(id))
	runOpList(0, tickOps)
}

func u32(s string) uint32 {
	v, _ := strconv.ParseUint(s, 10, 32)
	return uint32(v)
}

// coverageOp runs one op of this file; arguments are separated by '|'.
func coverageOp(name, arg string) {
	argAt := opArgs(arg)
	switch name {
	case "time":
		ns := uint64(0xdead)
		st := proxyGetCurrentTimeNanoseconds(unsafe.Pointer(&ns))
		logf(2, "op=time status="+itoa(st), "ns="+strconv.FormatUint(ns, 10))
	case "tick-period":
		logf(2, "op=tick-period status="+itoa(proxySetTickPeriodMilliseconds(u32(arg))))
	case "on-tick":
		tickOps = strings.ReplaceAll(arg, ",", ";")
	case "shared-get":
		p, n, cas := uint32(0), uint32(0), uint32(0xdead)
		st := proxyGetSharedData(ptr(arg), uint32(len(arg)), unsafe.Pointer(&p), unsafe.Pointer(&n), unsafe.Pointer(&cas))
		logf(2, "op=shared-get key="+arg, "status="+itoa(st), "value="+string(take(p, n)), "cas="+itoa(cas))
	case "shared-set":
		// shared-set:key|value|cas
		k, v := argAt(0), argAt(1)
		st := proxySetSharedData(ptr(k), uint32(len(k)), ptr(v), uint32(len(v)), u32(argAt(2)))
		logf(2, "op=shared-set key="+k, "status="+itoa(st))
	case "get-status":
		code, p, n := uint32(0xdead), uint32(0xdead), uint32(0xdead)
		st := proxyGetStatus(unsafe.Pointer(&code), unsafe.Pointer(&p), unsafe.Pointer(&n))
		logf(2, "op=get-status status="+itoa(st), "code="+itoa(code), "ptr_zero="+strconv.FormatBool(p == 0),
			"message="+string(take(p, n)))
	case "close":
		logf(2, "op=close type="+arg, "status="+itoa(proxyCloseStream(u32(arg))))
	case "continue-type":
		logf(2, "op=continue-type type="+arg, "status="+itoa(proxyContinueStream(u32(arg))))
	case "buffer-status":
		size, flags := uint32(0xdead), uint32(0xdead)
		st := proxyGetBufferStatus(u32(arg), unsafe.Pointer(&size), unsafe.Pointer(&flags))
		logf(2, "op=buffer-status type="+arg, "status="+itoa(st), "size="+itoa(size), "flags="+itoa(flags))
	}
}
