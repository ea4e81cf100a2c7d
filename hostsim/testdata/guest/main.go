//go:build wasip1

// Command guest is a scriptable proxy-wasm module for hostsim's own tests. Each
// request lists host calls to make in its x-ops header ("op;op;..."); the guest
// logs what every call returned ("op=... status=..."), so tests assert exact
// statuses and bytes. The plugin configuration selects start-up behaviour.
package main

import (
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func main() {}

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

// Memory handed to the host stays referenced here until the guest drops it.
var allocated = map[uintptr][]byte{}

// misuseInMalloc makes the allocator call an import Envoy forbids there.
var misuseInMalloc bool

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) uintptr {
	if misuseInMalloc {
		var level uint32
		proxyGetLogLevel(uint32(uintptr(unsafe.Pointer(&level))))
	}
	b := make([]byte, size+1)
	p := uintptr(unsafe.Pointer(&b[0]))
	allocated[p] = b
	return p
}

func take(p, size uint32) []byte {
	if p == 0 || size == 0 {
		return nil
	}
	b := allocated[uintptr(p)]
	delete(allocated, uintptr(p))
	return b[:size]
}

//go:wasmimport env proxy_log
func proxyLog(level uint32, msg unsafe.Pointer, size uint32) uint32

//go:wasmimport env proxy_get_log_level
func proxyGetLogLevel(ret uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(t, start, max uint32, retData, retSize unsafe.Pointer) uint32

//go:wasmimport env proxy_set_buffer_bytes
func proxySetBufferBytes(t, start, size uint32, data unsafe.Pointer, dataSize uint32) uint32

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeaderMapValue(t uint32, key uint32, keySize uint32, retData, retSize unsafe.Pointer) uint32

// proxyGetHeaderMapValueRaw takes return pointers as plain numbers, to pass bad ones.
//
//go:wasmimport env proxy_get_header_map_value
func proxyGetHeaderMapValueRaw(t, key, keySize, retData, retSize uint32) uint32

//go:wasmimport env proxy_get_header_map_pairs
func proxyGetHeaderMapPairs(t uint32, retData, retSize unsafe.Pointer) uint32

//go:wasmimport env proxy_set_header_map_pairs
func proxySetHeaderMapPairs(t uint32, data unsafe.Pointer, size uint32) uint32

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeaderMapValue(t uint32, key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32) uint32

//go:wasmimport env proxy_replace_header_map_value
func proxyReplaceHeaderMapValue(t uint32, key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32) uint32

//go:wasmimport env proxy_remove_header_map_value
func proxyRemoveHeaderMapValue(t uint32, key unsafe.Pointer, keySize uint32) uint32

//go:wasmimport env proxy_get_header_map_size
func proxyGetHeaderMapSize(t uint32, ret unsafe.Pointer) uint32

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(status uint32, details unsafe.Pointer, detailsSize uint32, body unsafe.Pointer, bodySize uint32, headers unsafe.Pointer, headersSize uint32, grpc int32) uint32

//go:wasmimport env proxy_define_metric
func proxyDefineMetric(t uint32, name unsafe.Pointer, size uint32, retID unsafe.Pointer) uint32

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(id uint32, offset int64) uint32

//go:wasmimport env proxy_record_metric
func proxyRecordMetric(id uint32, value uint64) uint32

//go:wasmimport env proxy_get_metric
func proxyGetMetric(id uint32, ret unsafe.Pointer) uint32

//go:wasmimport env proxy_get_property
func proxyGetProperty(path unsafe.Pointer, size uint32, retData, retSize unsafe.Pointer) uint32

// proxyGetPropertyRaw takes pointers as plain numbers, to pass bad ones.
//
//go:wasmimport env proxy_get_property
func proxyGetPropertyRaw(path, size, retData, retSize uint32) uint32

//go:wasmimport env proxy_set_property
func proxySetProperty(path unsafe.Pointer, size uint32, value, valueSize uint32) uint32

//go:wasmimport env proxy_set_effective_context
func proxySetEffectiveContext(id uint32) uint32

//go:wasmimport env proxy_continue_stream
func proxyContinueStream(t uint32) uint32

func ptr(s string) unsafe.Pointer {
	if s == "" {
		return nil
	}
	return unsafe.Pointer(unsafe.StringData(s))
}

func bptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func logf(level uint32, parts ...string) {
	msg := strings.Join(parts, " ")
	proxyLog(level, ptr(msg), uint32(len(msg)))
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func buffer(t uint32) (uint32, []byte) {
	var p, n uint32
	st := proxyGetBufferBytes(t, 0, 1<<20, unsafe.Pointer(&p), unsafe.Pointer(&n))
	return st, take(p, n)
}

func init() {
	// Start-up misuse: Envoy forbids proxy_define_metric while the module starts.
	if v, _ := syscall.Getenv("GUEST_DEFINE_METRIC_IN_INIT"); v == "1" {
		var id uint32
		name := "init.metric"
		proxyDefineMetric(0, ptr(name), uint32(len(name)), unsafe.Pointer(&id))
	}
}

var config string

//go:wasmexport proxy_on_context_create
func onContextCreate(id, parent uint32) {
	if quiet() {
		return
	}
	parents[id] = parent // lifecycle_ops.go
	logf(2, "create", itoa(id), itoa(parent))
	if v, _ := syscall.Getenv("GUEST_CREATE_READS_CONFIG"); v == "1" && parent == 0 {
		st, b := buffer(7)
		logf(2, "create config status="+itoa(st), "config="+string(b))
	}
}

// quiet is the configuration "quiet": stream callbacks make no host calls, to
// measure an empty stream.
func quiet() bool { return config == "quiet" }

//go:wasmexport proxy_on_vm_start
func onVMStart(root, size uint32) uint32 {
	st, b := buffer(6)
	logf(2, "vm_start size="+itoa(size), "status="+itoa(st), "config="+string(b))
	if v, _ := syscall.Getenv("GUEST_CREATE_READS_CONFIG"); v == "1" {
		st, _ := buffer(7)
		logf(2, "vm_start plugin config status="+itoa(st))
	}
	return boolWord(string(b) != "fail-start")
}

//go:wasmexport proxy_on_configure
func onConfigure(root, size uint32) uint32 {
	st, b := buffer(7)
	config = string(b)
	rootConfigs[root] = config // lifecycle_ops.go
	logf(2, "configure size="+itoa(size), "status="+itoa(st), "config="+config)
	if ops, found := strings.CutPrefix(config, "ops:"); found {
		runOpList(0, ops)
	}
	if config == "trap-configure" {
		trap()
	}
	return boolWord(config != "fail-configure")
}

func boolWord(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

var anchor byte

// trap makes a real wasm trap: a load 2 GiB past a variable, out of linear
// memory bounds (Go's nil check does not catch it).
func trap() {
	p := (*byte)(unsafe.Add(unsafe.Pointer(&anchor), 0x7ffffff0))
	logf(4, "unreachable", itoa(uint32(*p)))
}

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id, n, eos uint32) uint32 {
	if quiet() {
		return 0
	}
	streamID = id
	logf(2, "request_headers n="+itoa(n), "eos="+itoa(eos))
	return runOps(0, "x-ops")
}

//go:wasmexport proxy_on_response_headers
func onResponseHeaders(id, n, eos uint32) uint32 {
	logf(2, "response_headers n="+itoa(n), "eos="+itoa(eos))
	return runOps(2, "x-resp-ops")
}

//go:wasmexport proxy_on_request_body
func onRequestBody(id, size, eos uint32) uint32 {
	st, b := buffer(0)
	logf(2, "request_body size="+itoa(size), "eos="+itoa(eos), "status="+itoa(st), "body="+string(b))
	switch {
	case string(b) == "pause":
		return 1
	case strings.HasPrefix(string(b), "replace:"):
		nb := strings.TrimPrefix(string(b), "replace:")
		st := proxySetBufferBytes(0, 0, uint32(len(b)), ptr(nb), uint32(len(nb)))
		logf(2, "op=body-replace status="+itoa(st))
	}
	return 0
}

//go:wasmexport proxy_on_log
func onLog(id uint32) {
	if quiet() {
		return
	}
	st, v := getValue(0, ":path")
	logf(2, "on_log path_status="+itoa(st), "path="+v)
	if logOps {
		logOps = false
		runOps(0, "x-log-ops")
	}
}

//go:wasmexport proxy_on_done
func onDone(id uint32) uint32 {
	if quiet() {
		return 1
	}
	logf(2, "done", itoa(id))
	return boolWord(rootDone(id)) // lifecycle_ops.go
}

//go:wasmexport proxy_on_delete
func onDelete(id uint32) {
	if quiet() {
		return
	}
	delete(parents, id)
	logf(2, "delete", itoa(id))
}

func getValue(t uint32, key string) (uint32, string) {
	var p, n uint32
	st := proxyGetHeaderMapValue(t, uint32(uintptr(ptr(key))), uint32(len(key)), unsafe.Pointer(&p), unsafe.Pointer(&n))
	return st, string(take(p, n))
}

// runOps runs the ops listed in header opsHeader of map t and returns the action.
func runOps(t uint32, opsHeader string) uint32 {
	st, ops := getValue(t, opsHeader)
	if st != 0 {
		return 0
	}
	return runOpList(t, ops)
}

// logOps is set by the op "log-ops": proxy_on_log then runs the ops in the
// request's x-log-ops header (otherwise it makes no extra host call).
var logOps bool

// runOpList runs ops ("op;op;...") with map t and returns the action.
func runOpList(t uint32, ops string) uint32 {
	action := uint32(0)
	for _, op := range strings.Split(ops, ";") {
		name, arg, _ := strings.Cut(op, ":")
		switch name {
		case "pairs":
			var p, n uint32
			st := proxyGetHeaderMapPairs(t, unsafe.Pointer(&p), unsafe.Pointer(&n))
			logf(2, "op=pairs status="+itoa(st), "ptr_zero="+strconv.FormatBool(p == 0), "hex="+hex.EncodeToString(take(p, n)))
		case "get":
			st, v := getValue(t, arg)
			logf(2, "op=get status="+itoa(st), "value="+v)
		case "add", "replace":
			k, v, _ := strings.Cut(arg, "=")
			f := proxyAddHeaderMapValue
			if name == "replace" {
				f = proxyReplaceHeaderMapValue
			}
			st := f(t, ptr(k), uint32(len(k)), ptr(v), uint32(len(v)))
			logf(2, "op="+name+" status="+itoa(st))
		case "remove":
			st := proxyRemoveHeaderMapValue(t, ptr(arg), uint32(len(arg)))
			logf(2, "op=remove status="+itoa(st))
		case "set-pairs":
			var pairs [][2]string
			for _, kv := range strings.Split(arg, "|") {
				k, v, _ := strings.Cut(kv, "=")
				pairs = append(pairs, [2]string{k, v})
			}
			b := marshal(pairs)
			st := proxySetHeaderMapPairs(t, bptr(b), uint32(len(b)))
			logf(2, "op=set-pairs status="+itoa(st))
		case "set-pairs-hex":
			b, _ := hex.DecodeString(arg)
			st := proxySetHeaderMapPairs(t, bptr(b), uint32(len(b)))
			logf(2, "op=set-pairs-hex status="+itoa(st))
		case "size":
			var n uint32
			st := proxyGetHeaderMapSize(t, unsafe.Pointer(&n))
			logf(2, "op=size status="+itoa(st), "size="+itoa(n))
		case "get-map":
			m, _ := strconv.Atoi(arg)
			var p, n uint32
			k := "x"
			st := proxyGetHeaderMapValue(uint32(m), uint32(uintptr(ptr(k))), 1, unsafe.Pointer(&p), unsafe.Pointer(&n))
			logf(2, "op=get-map status="+itoa(st))
		case "bad-key-ptr":
			var p, n uint32
			st := proxyGetHeaderMapValue(t, 0xffffff00, 0x200, unsafe.Pointer(&p), unsafe.Pointer(&n))
			logf(2, "op=bad-key-ptr status="+itoa(st))
		case "bad-return-ptr":
			k := ":path"
			st := proxyGetHeaderMapValueRaw(t, uint32(uintptr(ptr(k))), uint32(len(k)), 0xfffffffe, 0xfffffffe)
			logf(2, "op=bad-return-ptr status="+itoa(st))
		case "reply":
			code, body, _ := strings.Cut(arg, "=")
			c, _ := strconv.Atoi(code)
			details := "denied by\ttest"
			hdrs := marshal([][2]string{{"X-Reply", "yes"}, {"x-reply", "again"}, {"x-resp-ops", "add:x-seen=1"}})
			st := proxySendLocalResponse(uint32(c), ptr(details), uint32(len(details)), ptr(body), uint32(len(body)), bptr(hdrs), uint32(len(hdrs)), -1)
			logf(2, "op=reply status="+itoa(st))
		case "reply-with":
			replyWithOp(arg) // reply_ops.go
		case "return":
			v, _ := strconv.Atoi(arg)
			action = uint32(v)
		case "log":
			level, msg, _ := strings.Cut(arg, "=")
			l, _ := strconv.Atoi(level)
			st := proxyLog(uint32(l), ptr(msg), uint32(len(msg)))
			logf(2, "op=log status="+itoa(st))
		case "stdout", "stderr":
			fd := 1
			if name == "stderr" {
				fd = 2
			}
			syscall.Write(fd, []byte(arg+"\n"))
		case "log-level":
			var l uint32
			st := proxyGetLogLevel(uint32(uintptr(unsafe.Pointer(&l))))
			logf(2, "op=log-level status="+itoa(st), "level="+itoa(l))
		case "metrics":
			metrics()
		case "property":
			path := strings.ReplaceAll(arg, ".", "\x00")
			var p, n uint32
			st := proxyGetProperty(ptr(path), uint32(len(path)), unsafe.Pointer(&p), unsafe.Pointer(&n))
			logf(2, "op=property status="+itoa(st), "value="+string(take(p, n)))
		case "prop":
			// Path segments are separated by "/" here, by NUL in the ABI.
			path := strings.ReplaceAll(arg, "/", "\x00")
			var p, n uint32
			st := proxyGetProperty(ptr(path), uint32(len(path)), unsafe.Pointer(&p), unsafe.Pointer(&n))
			logf(2, "op=prop path="+arg, "status="+itoa(st), "hex="+hex.EncodeToString(take(p, n)))
		case "set-prop":
			k, v, _ := strings.Cut(arg, "=")
			k = strings.ReplaceAll(k, "/", "\x00")
			st := proxySetProperty(ptr(k), uint32(len(k)), uint32(uintptr(ptr(v))), uint32(len(v)))
			logf(2, "op=set-prop status="+itoa(st))
		case "log-ops":
			logOps = true
		case "prop-bad-path":
			var p, n uint32
			st := proxyGetPropertyRaw(0xffffff00, 0x200, uint32(uintptr(unsafe.Pointer(&p))), uint32(uintptr(unsafe.Pointer(&n))))
			logf(2, "op=prop-bad-path status="+itoa(st))
		case "prop-bad-return":
			path := arg
			st := proxyGetPropertyRaw(uint32(uintptr(ptr(path))), uint32(len(path)), 0xfffffffe, 0xfffffffe)
			logf(2, "op=prop-bad-return status="+itoa(st))
		case "set-prop-bad":
			k := "key"
			st := proxySetProperty(ptr(k), uint32(len(k)), 0xffffff00, 0x200)
			logf(2, "op=set-prop-bad status="+itoa(st))
		case "continue":
			st := proxyContinueStream(0)
			logf(2, "op=continue status="+itoa(st))
		case "http-call", "call-body", "call-maps-write", "grpc-call", "grpc-stream", "grpc-cancel", "grpc-close", "grpc-send",
			"foreign", "zlib-roundtrip", "foreign-no-results",
			"queue-register", "queue-resolve", "queue-enqueue", "queue-dequeue":
			calloutOp(name, arg) // callouts.go
		case "time", "tick-period", "on-tick", "shared-get", "shared-set", "get-status", "close", "continue-type", "buffer-status":
			coverageOp(name, arg) // coverage_ops.go
		case "resp-body-ops", "body-get", "body-set":
			bodyOp(name, arg) // body_ops.go
		case "root-config", "proxy-done":
			lifecycleOp(name, arg) // lifecycle_ops.go
		case "metric-inc", "metric-set", "metric-get":
			metricOp(name, arg) // canary_ops.go
		case "trap":
			trap()
		case "malloc-misuse":
			misuseInMalloc = true
		case "effective":
			id, _ := strconv.Atoi(arg)
			logf(2, "op=effective status="+itoa(proxySetEffectiveContext(uint32(id))))
		case "env":
			v, found := syscall.Getenv(arg)
			logf(2, "op=env value="+v, "found="+strconv.FormatBool(found))
		case "sleep":
			time.Sleep(time.Millisecond)
			logf(2, "op=sleep")
		case "clock":
			logf(2, "op=clock unix="+strconv.FormatInt(time.Now().Unix(), 10))
		case "calls":
			fn, count, _ := strings.Cut(arg, "=")
			n, _ := strconv.Atoi(count)
			st := repeatCalls(t, fn, n)
			logf(2, "op=calls fn="+fn, "n="+count, "status="+itoa(st))
		}
	}
	return action
}

// repeatCalls calls host function fn n times (for benchmarks) and returns the
// last status; each call's cost includes what the guest needs to make it.
func repeatCalls(t uint32, fn string, n int) uint32 {
	var st, p, size uint32
	switch fn {
	case "proxy_log":
		msg := "benchmark message"
		for range n {
			st = proxyLog(0, ptr(msg), uint32(len(msg)))
		}
	case "proxy_get_header_map_value":
		k := ":path"
		for range n {
			st = proxyGetHeaderMapValue(t, uint32(uintptr(ptr(k))), uint32(len(k)), unsafe.Pointer(&p), unsafe.Pointer(&size))
			take(p, size)
		}
	case "proxy_get_header_map_value:notfound": // nothing to copy out: no malloc
		k := "x-missing"
		for range n {
			st = proxyGetHeaderMapValue(t, uint32(uintptr(ptr(k))), uint32(len(k)), unsafe.Pointer(&p), unsafe.Pointer(&size))
		}
	case "proxy_get_header_map_pairs":
		for range n {
			st = proxyGetHeaderMapPairs(t, unsafe.Pointer(&p), unsafe.Pointer(&size))
			take(p, size)
		}
	case "proxy_set_header_map_pairs":
		// The map as it is, so every call leaves it unchanged.
		proxyGetHeaderMapPairs(t, unsafe.Pointer(&p), unsafe.Pointer(&size))
		b := take(p, size)
		for range n {
			st = proxySetHeaderMapPairs(t, bptr(b), uint32(len(b)))
		}
	case "proxy_increment_metric":
		var id uint32
		name := "guest.calls"
		proxyDefineMetric(0, ptr(name), uint32(len(name)), unsafe.Pointer(&id))
		for range n {
			st = proxyIncrementMetric(id, 1)
		}
	case "proxy_get_property":
		path := "plugin_name"
		for range n {
			st = proxyGetProperty(ptr(path), uint32(len(path)), unsafe.Pointer(&p), unsafe.Pointer(&size))
			take(p, size)
		}
	}
	return st
}

func metrics() {
	define := func(t uint32, name string) uint32 {
		var id uint32
		st := proxyDefineMetric(t, ptr(name), uint32(len(name)), unsafe.Pointer(&id))
		logf(2, "op=define type="+itoa(t), "status="+itoa(st), "id="+itoa(id))
		return id
	}
	c := define(0, "guest.requests")
	c2 := define(0, "guest.requests")
	g := define(1, "guest.active")
	h := define(2, "guest.sizes")
	define(3, "guest.bad")
	var v uint64
	report := func(op string, st uint32) { logf(2, "op="+op, "status="+itoa(st)) }
	report("inc-counter", proxyIncrementMetric(c, 2))
	report("inc-counter-alias", proxyIncrementMetric(c2, 1))
	report("inc-counter-negative", proxyIncrementMetric(c, -1))
	report("inc-gauge", proxyIncrementMetric(g, 5))
	report("dec-gauge", proxyIncrementMetric(g, -2))
	report("inc-histogram", proxyIncrementMetric(h, 1))
	report("record-histogram", proxyRecordMetric(h, 42))
	report("record-gauge", proxyRecordMetric(g, 7))
	report("get-counter", proxyGetMetric(c, unsafe.Pointer(&v)))
	logf(2, "counter="+strconv.FormatUint(v, 10))
	report("get-histogram", proxyGetMetric(h, unsafe.Pointer(&v)))
	report("get-unknown", proxyGetMetric(400, unsafe.Pointer(&v)))
}

func marshal(pairs [][2]string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(pairs)))
	for _, p := range pairs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[0])))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[1])))
	}
	for _, p := range pairs {
		b = append(append(b, p[0]...), 0)
		b = append(append(b, p[1]...), 0)
	}
	return b
}
