package hostsim

import "fmt"

// This file names the Proxy-Wasm ABI once: versions, status codes, map and
// buffer types, actions, log levels, metric types and the exports hostsim calls.
// Numeric values follow the spec and proxy-wasm-cpp-host. "spec #x" in the
// comments below is https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#x

// ABIVersion is the Proxy-Wasm ABI a module declares by exporting
// proxy_abi_version_<major>_<minor>_<patch>.
type ABIVersion string

const (
	ABI020 ABIVersion = "0.2.0"
	ABI021 ABIVersion = "0.2.1"
)

// Exports that declare the ABI version. Envoy (cpp-host BytecodeUtil::getAbiVersion)
// takes the first one in export order; 0.1.0 is not supported by hostsim.
var abiVersionExports = map[string]ABIVersion{
	"proxy_abi_version_0_2_0": ABI020,
	"proxy_abi_version_0_2_1": ABI021,
}

const abi010Export = "proxy_abi_version_0_1_0"

// Status is the result code of a host function (proxy_status_t).
type Status uint32

const (
	StatusOK                   Status = 0
	StatusNotFound             Status = 1
	StatusBadArgument          Status = 2
	StatusSerializationFailure Status = 3
	StatusParseFailure         Status = 4
	StatusBadExpression        Status = 5
	StatusInvalidMemoryAccess  Status = 6
	StatusEmpty                Status = 7
	StatusCasMismatch          Status = 8
	StatusResultMismatch       Status = 9
	StatusInternalFailure      Status = 10
	StatusBrokenConnection     Status = 11
	StatusUnimplemented        Status = 12
)

var statusNames = [...]string{"Ok", "NotFound", "BadArgument", "SerializationFailure", "ParseFailure",
	"BadExpression", "InvalidMemoryAccess", "Empty", "CasMismatch", "ResultMismatch", "InternalFailure",
	"BrokenConnection", "Unimplemented"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint32(s))
}

// MapType selects a header map (proxy_map_type_t).
type MapType uint32

const (
	MapRequestHeaders              MapType = 0
	MapRequestTrailers             MapType = 1
	MapResponseHeaders             MapType = 2
	MapResponseTrailers            MapType = 3
	MapGrpcReceiveInitialMetadata  MapType = 4
	MapGrpcReceiveTrailingMetadata MapType = 5
	MapHTTPCallResponseHeaders     MapType = 6
	MapHTTPCallResponseTrailers    MapType = 7
	mapTypeMax                             = MapHTTPCallResponseTrailers
)

// BufferType selects a buffer (proxy_buffer_type_t).
type BufferType uint32

const (
	BufferHTTPRequestBody      BufferType = 0
	BufferHTTPResponseBody     BufferType = 1
	BufferDownstreamData       BufferType = 2
	BufferUpstreamData         BufferType = 3
	BufferHTTPCallResponseBody BufferType = 4
	BufferGrpcReceiveBuffer    BufferType = 5
	BufferVMConfiguration      BufferType = 6
	BufferPluginConfiguration  BufferType = 7
	BufferCallData             BufferType = 8
	bufferTypeMax                         = BufferCallData
)

// StreamType selects a stream for proxy_continue_stream and proxy_close_stream.
type StreamType uint32

const (
	StreamRequest    StreamType = 0
	StreamResponse   StreamType = 1
	StreamDownstream StreamType = 2
	StreamUpstream   StreamType = 3
	streamTypeMax               = StreamUpstream
)

// Action is what an HTTP callback returns. For headers callbacks the values are
// Envoy's FilterHeadersStatus; for body callbacks, FilterDataStatus.
type Action uint32

const (
	ActionContinue Action = 0
	// ActionPause is StopIteration for headers and StopIterationAndBuffer for bodies.
	ActionPause Action = 1
)

func (a Action) String() string {
	switch a {
	case ActionContinue:
		return "Continue"
	case ActionPause:
		return "Pause"
	}
	return fmt.Sprintf("Action(%d)", uint32(a))
}

// Envoy's filter statuses (envoy/http/filter.h) that hostsim derives from what a
// callback returns (cpp-host src/context.cc convertVmCallResultTo*Status).
const (
	headersContinue                     = 0
	headersStopIteration                = 1
	headersContinueAndEndStream         = 2
	headersStopAllIterationAndWatermark = 4
	dataContinue                        = 0
	dataStopIterationAndBuffer          = 1
	dataStopIterationNoBuffer           = 3
)

// LogLevel is a log severity. Its Go value is the ABI value plus one, so that the
// zero value of PluginConfig.LogLevel can mean "Envoy's default" (info).
type LogLevel uint32

const (
	LogTrace    LogLevel = 1 + iota // ABI 0
	LogDebug                        // ABI 1
	LogInfo                         // ABI 2
	LogWarn                         // ABI 3
	LogError                        // ABI 4
	LogCritical                     // ABI 5
)

const abiLogLevelMax = 5

var logLevelNames = [...]string{"", "trace", "debug", "info", "warn", "error", "critical"}

func (l LogLevel) String() string {
	if int(l) < len(logLevelNames) && l > 0 {
		return logLevelNames[l]
	}
	return fmt.Sprintf("LogLevel(%d)", uint32(l))
}

func logLevelFromABI(v uint32) LogLevel { return LogLevel(v + 1) }
func (l LogLevel) abi() uint32          { return uint32(l) - 1 }

// MetricType is proxy_metric_type_t.
type MetricType uint32

const (
	MetricCounter   MetricType = 0
	MetricGauge     MetricType = 1
	MetricHistogram MetricType = 2
	metricTypeMax              = MetricHistogram
)

func (t MetricType) String() string {
	switch t {
	case MetricCounter:
		return "counter"
	case MetricGauge:
		return "gauge"
	case MetricHistogram:
		return "histogram"
	}
	return fmt.Sprintf("MetricType(%d)", uint32(t))
}

// Exports hostsim calls, with the wasm signatures Envoy expects
// (cpp-host include/proxy-wasm/wasm.h, WasmCall* members). A module that exports
// one of these with another signature fails to load, as in Envoy.
const (
	exportInitialize       = "_initialize"
	exportStart            = "_start"
	exportMain             = "main"
	exportMainVoid         = "__main_void"
	exportMalloc           = "malloc"
	exportMemoryAllocate   = "proxy_on_memory_allocate"
	exportContextCreate    = "proxy_on_context_create"
	exportVMStart          = "proxy_on_vm_start"
	exportConfigure        = "proxy_on_configure"
	exportTick             = "proxy_on_tick"
	exportRequestHeaders   = "proxy_on_request_headers"
	exportRequestBody      = "proxy_on_request_body"
	exportRequestTrailers  = "proxy_on_request_trailers"
	exportResponseHeaders  = "proxy_on_response_headers"
	exportResponseBody     = "proxy_on_response_body"
	exportResponseTrailers = "proxy_on_response_trailers"
	exportDone             = "proxy_on_done"
	exportLog              = "proxy_on_log"
	exportDelete           = "proxy_on_delete"
	exportHTTPCallResponse = "proxy_on_http_call_response"
	exportQueueReady       = "proxy_on_queue_ready"
)

// exportSignature is "params->results" with i for i32 and I for i64.
var exportSignatures = map[string]string{
	exportInitialize:       "->",
	exportStart:            "->",
	exportMain:             "ii->i",
	exportMainVoid:         "->i",
	exportMalloc:           "i->i",
	exportMemoryAllocate:   "i->i",
	exportContextCreate:    "ii->",
	exportVMStart:          "ii->i",
	exportConfigure:        "ii->i",
	exportTick:             "i->",
	exportRequestHeaders:   "iii->i",
	exportRequestBody:      "iii->i",
	exportRequestTrailers:  "ii->i",
	exportResponseHeaders:  "iii->i",
	exportResponseBody:     "iii->i",
	exportResponseTrailers: "ii->i",
	exportDone:             "i->i",
	exportLog:              "i->",
	exportDelete:           "i->",
	exportHTTPCallResponse: "iiiii->",
	exportQueueReady:       "ii->",
}

// Header-pair limits from cpp-host include/proxy-wasm/limits.h: larger input
// deserialises to no pairs at all.
const (
	pairsMaxBytes = 1024 * 1024
	pairsMaxCount = 1024
)

// randomGetMaxBytes bounds wasi random_get (cpp-host limits.h).
const randomGetMaxBytes = 64 * 1024

// WASI errno values Envoy returns.
const (
	errnoSuccess = 0
	errnoBadf    = 8
	errnoFault   = 21
	errnoInval   = 28
	errnoNoent   = 44
	errnoNosys   = 52
	errnoNotsup  = 58
)

// hostFunc is one function the simulated Envoy exports to the module.
type hostFunc struct {
	module, name string
	sig          string // "params->results", i = i32, I = i64
	impl         func(vm *VM, stack []uint64)
	// Envoy restricts which imports may run while the module starts
	// (_initialize/main/_start) and inside malloc (cpp-host src/wasm.cc
	// WasmBase::startVm, include/proxy-wasm/wasm.h WasmBase::allocMemory);
	// calling another one traps with "restricted_callback".
	duringStart, duringMalloc bool
}

// hostFunctions lists every function Envoy links for a module of the given ABI
// version (cpp-host src/wasm.cc WasmBase::registerCallbacks and
// include/proxy-wasm/exports.h FOR_ALL_HOST_FUNCTIONS), no more: a module that
// imports anything else fails to load, as in Envoy.
func hostFunctions(abi ABIVersion, wasi WASIProfile) []hostFunc {
	fs := []hostFunc{
		// env.pthread_equal(left, right) -> left == right. Emscripten support.
		{module: "env", name: "pthread_equal", sig: "ii->i", impl: (*VM).pthreadEqual},
		// env.emscripten_notify_memory_growth(memory_index): no-op.
		{module: "env", name: "emscripten_notify_memory_growth", sig: "i->", impl: func(*VM, []uint64) {},
			duringStart: true},

		// proxy_log(level, message_data, message_size) -> status: logs message.
		// BadArgument for level > critical, InvalidMemoryAccess for a bad message range.
		// spec #proxy_log
		{module: "env", name: "proxy_log", sig: "iii->i", impl: (*VM).proxyLog, duringStart: true, duringMalloc: true},
		// proxy_get_status(return_code, return_message_data, return_message_size) -> status:
		// status of the last HTTP/gRPC call; always (0, "") here. spec #proxy_get_status
		{module: "env", name: "proxy_get_status", sig: "iii->i", impl: (*VM).proxyGetStatus},
		// proxy_set_property(path_data, path_size, value_data, value_size) -> status:
		// stores the value in the stream's filter state under "wasm.<path>"; NotFound
		// outside a stream (properties.go).
		// spec #proxy_set_property
		{module: "env", name: "proxy_set_property", sig: "iiii->i", impl: (*VM).proxySetProperty},
		// proxy_get_property(path_data, path_size, return_value_data, return_value_size) -> status:
		// Envoy's attributes (request, response, connection, source, destination,
		// upstream, xds, plugin_*, connection_id) and values the stream set, encoded as
		// Envoy encodes them; NotFound for unknown paths (properties.go).
		// spec #proxy_get_property
		{module: "env", name: "proxy_get_property", sig: "iiii->i", impl: (*VM).proxyGetProperty},
		// proxy_send_local_response(status_code, details_data, details_size, body_data, body_size,
		// headers_data, headers_size, grpc_status) -> status: answers the request locally;
		// the callback's return value is then ignored (the stream stops). spec #proxy_send_local_response
		{module: "env", name: "proxy_send_local_response", sig: "iiiiiiii->i", impl: (*VM).proxySendLocalResponse},
		// proxy_get_shared_data(key_data, key_size, return_value_data, return_value_size, return_cas)
		// -> status: NotFound for an unknown key. spec #proxy_get_shared_data
		{module: "env", name: "proxy_get_shared_data", sig: "iiiii->i", impl: (*VM).proxyGetSharedData},
		// proxy_set_shared_data(key_data, key_size, value_data, value_size, cas) -> status:
		// CasMismatch when cas is not 0 and not the stored one. spec #proxy_set_shared_data
		{module: "env", name: "proxy_set_shared_data", sig: "iiiii->i", impl: (*VM).proxySetSharedData},
		// proxy_register_shared_queue(name_data, name_size, return_token) -> status: the queue
		// of that name in this vm_id (created empty once); proxy_on_queue_ready goes to this
		// VM's root context. spec #proxy_register_shared_queue
		{module: "env", name: "proxy_register_shared_queue", sig: "iii->i", impl: (*VM).proxyRegisterSharedQueue},
		// proxy_resolve_shared_queue(vm_id_data, vm_id_size, name_data, name_size, return_token)
		// -> status: NotFound for a queue nobody registered; empty vm_id = this VM's.
		// spec #proxy_resolve_shared_queue
		{module: "env", name: "proxy_resolve_shared_queue", sig: "iiiii->i", impl: (*VM).proxyResolveSharedQueue},
		// proxy_dequeue_shared_queue(token, return_data, return_size) -> status: NotFound for an
		// unknown token, Empty for an empty queue. spec #proxy_dequeue_shared_queue
		{module: "env", name: "proxy_dequeue_shared_queue", sig: "iii->i", impl: (*VM).proxyDequeueSharedQueue},
		// proxy_enqueue_shared_queue(token, data, size) -> status: NotFound for an unknown token;
		// the registering VM's root context then gets proxy_on_queue_ready.
		// spec #proxy_enqueue_shared_queue
		{module: "env", name: "proxy_enqueue_shared_queue", sig: "iii->i", impl: (*VM).proxyEnqueueSharedQueue},
		// proxy_get_header_map_value(map_type, key_data, key_size, return_value_data,
		// return_value_size) -> status: first value of key; NotFound if absent, BadArgument
		// for an unknown map or one not available in this callback. spec #proxy_get_header_map_value
		{module: "env", name: "proxy_get_header_map_value", sig: "iiiii->i", impl: (*VM).proxyGetHeaderMapValue},
		// proxy_add_header_map_value(map_type, key_data, key_size, value_data, value_size) -> status:
		// appends an entry. spec #proxy_add_header_map_value
		{module: "env", name: "proxy_add_header_map_value", sig: "iiiii->i", impl: (*VM).proxyAddHeaderMapValue},
		// proxy_replace_header_map_value(map_type, key_data, key_size, value_data, value_size)
		// -> status: removes every entry of key, then adds one. spec #proxy_replace_header_map_value
		{module: "env", name: "proxy_replace_header_map_value", sig: "iiiii->i", impl: (*VM).proxyReplaceHeaderMapValue},
		// proxy_remove_header_map_value(map_type, key_data, key_size) -> status: removes every
		// entry of key (Ok when absent). spec #proxy_remove_header_map_value
		{module: "env", name: "proxy_remove_header_map_value", sig: "iii->i", impl: (*VM).proxyRemoveHeaderMapValue},
		// proxy_get_header_map_pairs(map_type, return_data, return_size) -> status: the whole map,
		// serialised; an empty or unavailable map gives (0, 0). spec #proxy_get_header_map_pairs
		{module: "env", name: "proxy_get_header_map_pairs", sig: "iii->i", impl: (*VM).proxyGetHeaderMapPairs},
		// proxy_set_header_map_pairs(map_type, data, size) -> status: replaces the whole map;
		// malformed data empties it (Envoy's behaviour). spec #proxy_set_header_map_pairs
		{module: "env", name: "proxy_set_header_map_pairs", sig: "iii->i", impl: (*VM).proxySetHeaderMapPairs},
		// proxy_get_header_map_size(map_type, return_size) -> status: the map's byte size
		// (sum of name and value lengths). spec #proxy_get_header_map_size
		{module: "env", name: "proxy_get_header_map_size", sig: "ii->i", impl: (*VM).proxyGetHeaderMapSize},
		// proxy_get_buffer_status(buffer_type, return_size, return_flags) -> status.
		// spec #proxy_get_buffer_status
		{module: "env", name: "proxy_get_buffer_status", sig: "iii->i", impl: (*VM).proxyGetBufferStatus},
		// proxy_get_buffer_bytes(buffer_type, start, max_size, return_data, return_size) -> status:
		// reads are clamped to the buffer; NotFound for a buffer not available here.
		// spec #proxy_get_buffer_bytes
		{module: "env", name: "proxy_get_buffer_bytes", sig: "iiiii->i", impl: (*VM).proxyGetBufferBytes},
		// proxy_set_buffer_bytes(buffer_type, start, size, data, data_size) -> status: start 0
		// replaces the first size bytes, start >= length appends, anything else is BadArgument.
		// spec #proxy_set_buffer_bytes
		{module: "env", name: "proxy_set_buffer_bytes", sig: "iiiii->i", impl: (*VM).proxySetBufferBytes},
		// proxy_http_call(upstream_data, upstream_size, headers_data, headers_size, body_data,
		// body_size, trailers_data, trailers_size, timeout_ms, return_token) -> status: calls the
		// PluginConfig.Clusters handler; BadArgument for an unknown cluster, a negative timeout or
		// headers without :method, :path or :authority. The response comes in
		// proxy_on_http_call_response on the root context. spec #proxy_http_call
		{module: "env", name: "proxy_http_call", sig: "iiiiiiiiii->i", impl: (*VM).proxyHTTPCall},
		// gRPC calls fail as in an Envoy without the cluster: ParseFailure for a cluster name,
		// BadArgument for a GrpcService message; cancel, close and send find no call (NotFound,
		// or BadArgument for a token of the wrong kind). spec #grpc-calls
		{module: "env", name: "proxy_grpc_call", sig: "iiiiiiiiiiii->i", impl: (*VM).proxyGrpcCall},
		{module: "env", name: "proxy_grpc_stream", sig: "iiiiiiiii->i", impl: (*VM).proxyGrpcStream},
		{module: "env", name: "proxy_grpc_close", sig: "i->i", impl: (*VM).proxyGrpcClose},
		{module: "env", name: "proxy_grpc_cancel", sig: "i->i", impl: (*VM).proxyGrpcCancel},
		{module: "env", name: "proxy_grpc_send", sig: "iiii->i", impl: (*VM).proxyGrpcSend},
		// proxy_set_tick_period_milliseconds(period) -> status: VM.TickPeriod reports it.
		// spec #proxy_set_tick_period_milliseconds
		{module: "env", name: "proxy_set_tick_period_milliseconds", sig: "i->i", impl: (*VM).proxySetTickPeriod},
		// proxy_get_current_time_nanoseconds(return_time) -> status: wall clock (PluginConfig.Now).
		// spec #proxy_get_current_time_nanoseconds
		{module: "env", name: "proxy_get_current_time_nanoseconds", sig: "i->i", impl: (*VM).proxyGetCurrentTime},
		// proxy_define_metric(type, name_data, name_size, return_id) -> status: BadArgument for an
		// unknown type. Defining a name twice gives a new id for the same metric.
		// spec #proxy_define_metric
		{module: "env", name: "proxy_define_metric", sig: "iiii->i", impl: (*VM).proxyDefineMetric},
		// proxy_increment_metric(id, offset i64) -> status: counters need offset > 0 (else
		// BadArgument), gauges add or subtract, histograms are BadArgument, unknown ids NotFound.
		// spec #proxy_increment_metric
		{module: "env", name: "proxy_increment_metric", sig: "iI->i", impl: (*VM).proxyIncrementMetric},
		// proxy_record_metric(id, value u64) -> status: counters add, gauges set, histograms record.
		// spec #proxy_record_metric
		{module: "env", name: "proxy_record_metric", sig: "iI->i", impl: (*VM).proxyRecordMetric},
		// proxy_get_metric(id, return_value) -> status: BadArgument for histograms.
		// spec #proxy_get_metric
		{module: "env", name: "proxy_get_metric", sig: "ii->i", impl: (*VM).proxyGetMetric},
		// proxy_set_effective_context(context_id) -> status: BadArgument for an unknown id.
		// spec #proxy_set_effective_context
		{module: "env", name: "proxy_set_effective_context", sig: "i->i", impl: (*VM).proxySetEffectiveContext},
		// proxy_done() -> status: NotFound unless the plugin is pending done. spec #proxy_done
		{module: "env", name: "proxy_done", sig: "->i", impl: (*VM).proxyDone},
		// proxy_call_foreign_function(name_data, name_size, args, args_size, return_results,
		// return_results_size) -> status: compress, uncompress and clear_route_cache as Envoy's;
		// NotFound for Envoy's others and unknown names (foreign.go).
		{module: "env", name: "proxy_call_foreign_function", sig: "iiiiii->i", impl: (*VM).proxyCallForeignFunction},
	}
	// ABI-specific functions (cpp-host WasmBase::registerCallbacks).
	fs = append(fs,
		// proxy_continue_stream(stream_type) -> status: resumes a paused stream after the
		// callback returns. spec #proxy_continue_stream
		hostFunc{module: "env", name: "proxy_continue_stream", sig: "i->i", impl: (*VM).proxyContinueStream},
		// proxy_close_stream(stream_type) -> status: resets the stream. spec #proxy_close_stream
		hostFunc{module: "env", name: "proxy_close_stream", sig: "i->i", impl: (*VM).proxyCloseStream},
	)
	if abi == ABI021 {
		// proxy_get_log_level(return_level) -> status: the host's current level.
		// spec #proxy_get_log_level
		fs = append(fs, hostFunc{module: "env", name: "proxy_get_log_level", sig: "i->i", impl: (*VM).proxyGetLogLevel})
	}
	for _, w := range wasiFunctions(wasi) {
		// Envoy registers the same WASI functions under both module names.
		for _, mod := range []string{"wasi_snapshot_preview1", "wasi_unstable"} {
			w.module = mod
			fs = append(fs, w)
		}
	}
	return fs
}
