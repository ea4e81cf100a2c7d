package hostsim

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Implementations of the env.proxy_* functions listed in abi.go. Argument
// checks and statuses follow cpp-host src/exports.cc; what each map, buffer and
// metric does follows Envoy's source/extensions/common/wasm/context.cc.

func ok(s []uint64) { s[0] = uint64(StatusOK) }

// misuse returns st to the module and records why.
func (vm *VM) misuse(s []uint64, fn string, st Status, format string, args ...any) {
	s[0] = uint64(st)
	vm.diagnose("%s: %s: %s", fn, st, fmt.Sprintf(format, args...))
}

// target is cpp-host contextOrEffectiveContext: the effective context if one was
// set in this callback, else the running one; nil means the root context.
func (vm *VM) target() *Stream {
	switch {
	case vm.effRoot != nil:
		return nil
	case vm.effective != nil:
		return vm.effective
	}
	return vm.current
}

func (vm *VM) pthreadEqual(s []uint64) { s[0] = boolWord(uint32(s[0]) == uint32(s[1])) }

func (vm *VM) proxyLog(s []uint64) {
	level, ptr, size := uint32(s[0]), uint32(s[1]), uint32(s[2])
	if level > abiLogLevelMax {
		vm.misuse(s, "proxy_log", StatusBadArgument, "unknown log level %d", level)
		return
	}
	msg, okMem := vm.readString(ptr, size)
	if !okMem {
		vm.misuse(s, "proxy_log", StatusInvalidMemoryAccess, "message [%d, +%d) is outside memory", ptr, size)
		return
	}
	vm.log(logLevelFromABI(level), msg)
	ok(s)
}

func (vm *VM) proxyGetLogLevel(s []uint64) {
	if !vm.writeU32(uint32(s[0]), vm.cfg.LogLevel.abi()) {
		vm.misuse(s, "proxy_get_log_level", StatusInvalidMemoryAccess, "return_level %d is outside memory", uint32(s[0]))
		return
	}
	ok(s)
}

func (vm *VM) proxyGetStatus(s []uint64) {
	st := vm.callStatus() // httpcall.go
	if !vm.writeU32(uint32(s[0]), uint32(st.code)) || !vm.copyOutString(st.message, uint32(s[1]), uint32(s[2])) {
		vm.misuse(s, "proxy_get_status", StatusInvalidMemoryAccess, "return pointers are outside memory")
		return
	}
	ok(s)
}

func (vm *VM) proxyGetCurrentTime(s []uint64) {
	if !vm.writeU64(uint32(s[0]), uint64(vm.now().UnixNano())) {
		vm.misuse(s, "proxy_get_current_time_nanoseconds", StatusInvalidMemoryAccess, "return_time %d is outside memory", uint32(s[0]))
		return
	}
	ok(s)
}

// proxySetTickPeriod sets the timer of the calling (or effective) context's
// root context (cpp-host ContextBase::setTimerPeriod uses root_context()->id()).
func (vm *VM) proxySetTickPeriod(s []uint64) {
	vm.tickPeriod = time.Duration(uint32(s[0])) * time.Millisecond
	if p := vm.targetPlugin(); p != nil {
		vm.setTimerPeriod(p.rootID, vm.tickPeriod)
	}
	ok(s)
}

func (vm *VM) proxySetEffectiveContext(s []uint64) {
	id := uint32(s[0])
	switch {
	case id == 0: // the VM context: "effective" falls back to the running context
		vm.effective, vm.effRoot = nil, nil
	case vm.roots[id] != nil: // any plugin's root context in this VM
		vm.effective, vm.effRoot = nil, vm.roots[id]
	case vm.streams[id] != nil:
		vm.effective, vm.effRoot = vm.streams[id], nil
	default:
		vm.misuse(s, "proxy_set_effective_context", StatusBadArgument, "unknown context id %d", id)
		return
	}
	ok(s)
}

func (vm *VM) proxyContinueStream(s []uint64) {
	t := StreamType(uint32(s[0]))
	switch {
	case t > streamTypeMax:
		vm.misuse(s, "proxy_continue_stream", StatusBadArgument, "unknown stream type %d", t)
		return
	case t == StreamUpstream:
		vm.misuse(s, "proxy_continue_stream", StatusUnimplemented, "upstream streams cannot be continued")
		return
	}
	if c := vm.target(); c != nil && t <= StreamResponse {
		c.continueRequested[direction(t == StreamResponse)] = true
		if c != vm.current { // from outside the stream's own callbacks: resume.go
			c.askResume(t == StreamResponse)
		}
		// Envoy's Context::continueStream forgets the request maps and body on a
		// response continue too (both cases fall through to the reset).
		c.reqVisible = false
		c.trailersVisible[0] = false
	}
	ok(s)
}

func (vm *VM) proxyCloseStream(s []uint64) {
	t := StreamType(uint32(s[0]))
	if t > streamTypeMax {
		vm.misuse(s, "proxy_close_stream", StatusBadArgument, "unknown stream type %d", t)
		return
	}
	if c := vm.target(); c != nil && t <= StreamResponse {
		c.reset = true
		c.noteClose() // stream.go
	}
	ok(s)
}

func (vm *VM) proxySendLocalResponse(s []uint64) {
	code := uint32(s[0])
	details, okDetails := vm.readString(uint32(s[1]), uint32(s[2]))
	body, okBody := vm.read(uint32(s[3]), uint32(s[4]))
	body = append([]byte(nil), body...)
	pairs, okPairs := vm.read(uint32(s[5]), uint32(s[6]))
	if !okDetails || !okBody || !okPairs {
		vm.misuse(s, "proxy_send_local_response", StatusInvalidMemoryAccess, "details, body or headers are outside memory")
		return
	}
	grpc := int(uint32(s[7]))
	if grpc > 16 { // Envoy maps anything outside OK..Unauthenticated to "no grpc-status"
		grpc = -1
	}
	var headers Headers
	for _, p := range unmarshalPairs(pairs) {
		headers = append(headers, Header{Name: lower(p.Name), Value: p.Value})
	}
	reply := &LocalReply{Status: int(code), Headers: headers, Body: body,
		Details: replaceAllEmptySpace(details), GrpcStatus: grpc}
	// Envoy sends it after the callback returns, and only from a stream context.
	if c := vm.target(); c != nil {
		c.setLocalReply(reply)
	}
	vm.stopIteration = true
	ok(s)
}

// knownMapType checks a header map type (the first argument) before anything
// else, as Envoy does: an unknown type is BadArgument.
func (vm *VM) knownMapType(fn string, s []uint64) bool {
	if t := MapType(uint32(s[0])); t > mapTypeMax {
		vm.misuse(s, fn, StatusBadArgument, "unknown map type %d", t)
		return false
	}
	return true
}

// mutableMap returns the map the running callback may change, as Envoy's
// Context::getMap: request headers until the request continues, response headers
// until the response continues, trailers as trailerMap (body.go); gRPC and
// HTTP-call maps are never available in hostsim.
func (vm *VM) mutableMap(fn string, s []uint64) *headerMap {
	if !vm.knownMapType(fn, s) {
		return nil
	}
	t := MapType(uint32(s[0]))
	c := vm.target()
	switch {
	case c != nil && t == MapRequestHeaders && c.reqVisible:
		return &c.req
	case c != nil && t == MapResponseHeaders && c.respVisible:
		return &c.resp
	case c != nil && (t == MapRequestTrailers || t == MapResponseTrailers):
		if m := c.trailerMap(t, true); m != nil { // body.go
			return m
		}
	}
	vm.misuse(s, fn, StatusBadArgument, "map %d is not available in this callback", t)
	return nil
}

// constMap is Envoy's Context::getConstMap: like mutableMap, plus the request and
// response headers while proxy_on_log runs. known is false for an unknown map type.
func (vm *VM) constMap(fn string, s []uint64) (m *headerMap, known bool) {
	if !vm.knownMapType(fn, s) {
		return nil, false
	}
	t := MapType(uint32(s[0]))
	if t == MapHTTPCallResponseHeaders || t == MapHTTPCallResponseTrailers {
		return vm.callResponseMap(t), true // httpcall.go
	}
	c := vm.target()
	if c == nil {
		return nil, true
	}
	switch {
	case t == MapRequestHeaders && (c.reqVisible || c.accessLogPhase):
		return &c.req, true
	case t == MapResponseHeaders && (c.respVisible || c.accessLogPhase && c.hasResp):
		return &c.resp, true
	case t == MapRequestTrailers || t == MapResponseTrailers:
		return c.trailerMap(t, false), true // body.go
	}
	return nil, true
}

func (vm *VM) proxyGetHeaderMapValue(s []uint64) {
	const fn = "proxy_get_header_map_value"
	m, known := vm.constMap(fn, s)
	if !known {
		return
	}
	key, okKey := vm.readString(uint32(s[1]), uint32(s[2]))
	if !okKey {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "key [%d, +%d) is outside memory", uint32(s[1]), uint32(s[2]))
		return
	}
	if m == nil {
		if c := vm.target(); c != nil && c.accessLogPhase {
			vm.misuse(s, fn, StatusNotFound, "map %d is empty in the access log phase", uint32(s[0]))
			return
		}
		vm.misuse(s, fn, StatusBadArgument, "map %d is not available in this callback", uint32(s[0]))
		return
	}
	v, found := m.get(key)
	if !found {
		s[0] = uint64(StatusNotFound)
		return
	}
	if !vm.copyOutString(v, uint32(s[3]), uint32(s[4])) {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "return pointers are outside memory or malloc failed")
		return
	}
	ok(s)
}

func (vm *VM) keyValue(fn string, s []uint64) (key, value string, good bool) {
	key, okKey := vm.readString(uint32(s[1]), uint32(s[2]))
	value, okValue := vm.readString(uint32(s[3]), uint32(s[4]))
	if !okKey || !okValue {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "key or value is outside memory")
		return "", "", false
	}
	return key, value, true
}

func (vm *VM) proxyAddHeaderMapValue(s []uint64) {
	vm.writeHeaderMapValue(s, "proxy_add_header_map_value", (*headerMap).add)
}

func (vm *VM) proxyReplaceHeaderMapValue(s []uint64) {
	vm.writeHeaderMapValue(s, "proxy_replace_header_map_value", (*headerMap).replace)
}

// writeHeaderMapValue is add and replace: (map type, key, value) -> status.
func (vm *VM) writeHeaderMapValue(s []uint64, fn string, write func(m *headerMap, key, value string)) {
	if !vm.knownMapType(fn, s) {
		return
	}
	key, value, good := vm.keyValue(fn, s)
	if !good {
		return
	}
	if m := vm.mutableMap(fn, s); m != nil {
		write(m, key, value)
		ok(s)
	}
}

func (vm *VM) proxyRemoveHeaderMapValue(s []uint64) {
	const fn = "proxy_remove_header_map_value"
	if !vm.knownMapType(fn, s) {
		return
	}
	key, okKey := vm.readString(uint32(s[1]), uint32(s[2]))
	if !okKey {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "key [%d, +%d) is outside memory", uint32(s[1]), uint32(s[2]))
		return
	}
	if m := vm.mutableMap(fn, s); m != nil {
		m.remove(key)
		ok(s)
	}
}

func (vm *VM) proxyGetHeaderMapPairs(s []uint64) {
	const fn = "proxy_get_header_map_pairs"
	m, known := vm.constMap(fn, s)
	if !known {
		return
	}
	ptrPtr, sizePtr := uint32(s[1]), uint32(s[2])
	// An empty or unavailable map is (0, 0), not a serialised empty list.
	if m == nil || len(m.entries) == 0 {
		if !vm.copyOut(nil, ptrPtr, sizePtr) {
			vm.misuse(s, fn, StatusInvalidMemoryAccess, "return pointers are outside memory")
			return
		}
		ok(s)
		return
	}
	size := pairsSize(m.entries)
	p := vm.malloc(uint32(size))
	if p == 0 {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "malloc(%d) failed", size)
		return
	}
	vm.scratch = marshalPairs(vm.scratch[:0], m.entries)
	if !vm.write(p, vm.scratch) || !vm.writeU32(ptrPtr, p) || !vm.writeU32(sizePtr, uint32(size)) {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "return pointers are outside memory")
		return
	}
	ok(s)
}

func (vm *VM) proxySetHeaderMapPairs(s []uint64) {
	const fn = "proxy_set_header_map_pairs"
	if !vm.knownMapType(fn, s) {
		return
	}
	data, okData := vm.read(uint32(s[1]), uint32(s[2]))
	if !okData {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "pairs [%d, +%d) are outside memory", uint32(s[1]), uint32(s[2]))
		return
	}
	pairs := unmarshalPairs(data)
	if pairs == nil && len(data) > 0 && !emptyPairs(data) {
		vm.diagnose("%s: malformed pairs (%d bytes): the map is emptied, as in Envoy", fn, len(data))
	}
	if m := vm.mutableMap(fn, s); m != nil {
		m.setPairs(pairs)
		ok(s)
	}
}

func emptyPairs(b []byte) bool { return len(b) == 4 && binary.LittleEndian.Uint32(b) == 0 }

func (vm *VM) proxyGetHeaderMapSize(s []uint64) {
	const fn = "proxy_get_header_map_size"
	m := vm.mutableMap(fn, s)
	if m == nil {
		return
	}
	if !vm.writeU32(uint32(s[1]), m.byteSize()) {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "return_size %d is outside memory", uint32(s[1]))
		return
	}
	ok(s)
}

// buffer is Envoy's Context::getBuffer. It returns the bytes and whether they may
// be changed; found is false where Envoy has no buffer (NotFound).
func (vm *VM) buffer(t BufferType) (b *[]byte, mutable, found bool) {
	c := vm.target()
	switch t {
	case BufferVMConfiguration:
		return &vm.cfg.VMConfiguration, false, true
	case BufferPluginConfiguration:
		if vm.tempPlugin && c == nil {
			return &vm.targetPlugin().cfg.Configuration, false, true
		}
		return nil, false, false
	case BufferHTTPRequestBody, BufferHTTPResponseBody:
		// The running body callback's chunk (or buffer); and while the last
		// body callback's StopIterationAndBuffer holds (buffering_*_body_),
		// the filter manager's buffer from any callback acting on the
		// stream: trailers, or a tick or HTTP-call response after
		// proxy_set_effective_context (context.cc getBuffer).
		if c != nil && (c.visibleBody == int(t) || c.buffering[t]) {
			return &c.bodies[t], true, true
		}
		empty := []byte(nil)
		return &empty, false, true
	case BufferHTTPCallResponseBody: // read-only, during proxy_on_http_call_response (httpcall.go)
		if r := vm.async.response; r != nil {
			return &r.body, false, true
		}
		return nil, false, false
	case BufferCallData, BufferDownstreamData, BufferUpstreamData, BufferGrpcReceiveBuffer:
		empty := []byte(nil)
		return &empty, false, true
	}
	return nil, false, false
}

func (vm *VM) proxyGetBufferStatus(s []uint64) {
	const fn = "proxy_get_buffer_status"
	t := BufferType(uint32(s[0]))
	if t > bufferTypeMax {
		vm.misuse(s, fn, StatusBadArgument, "unknown buffer type %d", t)
		return
	}
	b, _, found := vm.buffer(t)
	if !found {
		vm.misuse(s, fn, StatusNotFound, "buffer %d is not available in this callback", t)
		return
	}
	if !vm.writeU32(uint32(s[1]), uint32(len(*b))) || !vm.writeU32(uint32(s[2]), 0) {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "return pointers are outside memory")
		return
	}
	ok(s)
}

func (vm *VM) proxyGetBufferBytes(s []uint64) {
	const fn = "proxy_get_buffer_bytes"
	t := BufferType(uint32(s[0]))
	start, length, ptrPtr, sizePtr := uint64(uint32(s[1])), uint64(uint32(s[2])), uint32(s[3]), uint32(s[4])
	if t > bufferTypeMax {
		vm.misuse(s, fn, StatusBadArgument, "unknown buffer type %d", t)
		return
	}
	b, _, found := vm.buffer(t)
	if !found {
		vm.misuse(s, fn, StatusNotFound, "buffer %d is not available in this callback", t)
		return
	}
	size := uint64(len(*b))
	switch {
	case start > size: // exports.cc: nothing to read, (0, 0) written
		start, length = 0, 0
	case start+length > size:
		length = size - start
	}
	if !vm.copyOut((*b)[start:start+length], ptrPtr, sizePtr) {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "return pointers are outside memory or malloc failed")
		return
	}
	ok(s)
}

func (vm *VM) proxySetBufferBytes(s []uint64) {
	const fn = "proxy_set_buffer_bytes"
	t := BufferType(uint32(s[0]))
	start, length := uint64(uint32(s[1])), uint64(uint32(s[2]))
	if t > bufferTypeMax {
		vm.misuse(s, fn, StatusBadArgument, "unknown buffer type %d", t)
		return
	}
	b, mutable, found := vm.buffer(t)
	if !found {
		vm.misuse(s, fn, StatusNotFound, "buffer %d is not available in this callback", t)
		return
	}
	data, okData := vm.read(uint32(s[3]), uint32(s[4]))
	if !okData {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "data is outside memory")
		return
	}
	if !mutable {
		vm.misuse(s, fn, StatusBadArgument, "buffer %d cannot be changed here", t)
		return
	}
	// Envoy's Buffer::copyFrom: start 0 drains length bytes then prepends; start at
	// or past the end appends; anything else is refused.
	size := uint64(len(*b))
	switch {
	case start == 0:
		rest := (*b)[min(length, size):]
		*b = append(append([]byte(nil), data...), rest...)
	case start >= size:
		*b = append(*b, data...)
	default:
		vm.misuse(s, fn, StatusBadArgument, "start %d is inside the buffer but not 0", start)
		return
	}
	ok(s)
}

func (vm *VM) proxyDefineMetric(s []uint64) {
	const fn = "proxy_define_metric"
	t := MetricType(uint32(s[0]))
	name, okName := vm.readString(uint32(s[1]), uint32(s[2]))
	if !okName {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "name is outside memory")
		return
	}
	if t > metricTypeMax {
		vm.misuse(s, fn, StatusBadArgument, "unknown metric type %d", t)
		return
	}
	id := vm.metrics.define(t, name)
	if !vm.writeU32(uint32(s[3]), id) {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "return_id %d is outside memory", uint32(s[3]))
		return
	}
	ok(s)
}

func (vm *VM) proxyIncrementMetric(s []uint64) {
	const fn = "proxy_increment_metric"
	id, offset := uint32(s[0]), int64(s[1])
	m, t := vm.metrics.lookup(id)
	switch {
	case t != MetricCounter && t != MetricGauge:
		vm.misuse(s, fn, StatusBadArgument, "metric %d is not a counter or gauge", id)
	case m == nil:
		vm.misuse(s, fn, StatusNotFound, "unknown metric id %d", id)
	case t == MetricCounter && offset <= 0:
		vm.misuse(s, fn, StatusBadArgument, "counter offset %d is not positive", offset)
	default:
		vm.metrics.add(m, uint64(offset))
		ok(s)
	}
}

func (vm *VM) proxyRecordMetric(s []uint64) {
	const fn = "proxy_record_metric"
	id, value := uint32(s[0]), s[1]
	m, t := vm.metrics.lookup(id)
	if m == nil {
		vm.misuse(s, fn, StatusNotFound, "unknown metric id %d", id)
		return
	}
	vm.metrics.record(m, t, value)
	ok(s)
}

func (vm *VM) proxyGetMetric(s []uint64) {
	const fn = "proxy_get_metric"
	id := uint32(s[0])
	m, t := vm.metrics.lookup(id)
	switch {
	case t != MetricCounter && t != MetricGauge:
		vm.misuse(s, fn, StatusBadArgument, "metric %d is not a counter or gauge", id)
	case m == nil:
		vm.misuse(s, fn, StatusNotFound, "unknown metric id %d", id)
	case !vm.writeU64(uint32(s[1]), vm.metrics.value(m)):
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "return_value %d is outside memory", uint32(s[1]))
	default:
		ok(s)
	}
}

func (vm *VM) proxyGetSharedData(s []uint64) {
	const fn = "proxy_get_shared_data"
	key, okKey := vm.readString(uint32(s[0]), uint32(s[1]))
	if !okKey {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "key is outside memory")
		return
	}
	sd := &vm.m.shared
	sd.mu.Lock()
	v, found := sd.data[vm.cfg.VMID][key]
	sd.mu.Unlock()
	if !found {
		s[0] = uint64(StatusNotFound)
		return
	}
	if !vm.copyOut(v.value, uint32(s[2]), uint32(s[3])) || !vm.writeU32(uint32(s[4]), v.cas) {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "return pointers are outside memory or malloc failed")
		return
	}
	ok(s)
}

func (vm *VM) proxySetSharedData(s []uint64) {
	const fn = "proxy_set_shared_data"
	key, okKey := vm.readString(uint32(s[0]), uint32(s[1]))
	value, okValue := vm.read(uint32(s[2]), uint32(s[3]))
	if !okKey || !okValue {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "key or value is outside memory")
		return
	}
	cas := uint32(s[4])
	sd := &vm.m.shared
	sd.mu.Lock()
	defer sd.mu.Unlock()
	if sd.data == nil {
		sd.data = map[string]map[string]sharedValue{}
	}
	byKey := sd.data[vm.cfg.VMID]
	if byKey == nil {
		byKey = map[string]sharedValue{}
		sd.data[vm.cfg.VMID] = byKey
	}
	old, found := byKey[key]
	if cas != 0 && found && cas != old.cas {
		vm.misuse(s, fn, StatusCasMismatch, "cas %d, stored %d", cas, old.cas)
		return
	}
	sd.nextCas++
	byKey[key] = sharedValue{value: append([]byte(nil), value...), cas: sd.nextCas}
	ok(s)
}
