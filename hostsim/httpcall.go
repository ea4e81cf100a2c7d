package hostsim

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// HTTP calls (proxy_http_call), gRPC calls, and the delivery of asynchronous
// callbacks. Envoy sends an HTTP call through the cluster's async client and
// answers on the worker's dispatcher, never inside the callback that made the
// call (source/extensions/common/wasm/context.cc Context::httpCall and
// onHttpCallSuccess). hostsim is synchronous: what Envoy's dispatcher would run
// next runs right after the public call that caused it returns its callback
// (Stream.RequestHeaders, Stream.RequestBody, Stream.ResponseHeaders,
// Stream.ResponseBody, Stream.Close, VM.Tick, Module.NewVM), or on VM.RunPending.

// HTTP call tokens start at 4 and grow by 4: Envoy keeps the low two bits for
// the callout type (cpp-host include/proxy-wasm/wasm.h nextHttpCallId,
// CalloutType HttpCall = 0, GrpcCall = 1, GrpcStream = 2).
const (
	calloutIncrement = 4
	calloutTypeMask  = 3
	calloutGrpcCall  = 1
	calloutGrpcStrm  = 2
)

// maxDeliveries bounds one round of delivery, so that a module that answers
// every callback with a new call cannot hang the host; what is left waits for
// the next round.
const maxDeliveries = 1000

// Envoy's router answers a call that outlives its timeout with this local reply
// (":status" 504, "content-length" 24, "content-type" text/plain), which the async
// client hands over as a success (source/common/router/router.cc
// Filter::onUpstreamTimeout; test/common/http/async_client_impl_test.cc RequestTimeout).
const (
	timeoutStatus = "504"
	timeoutBody   = "upstream request timeout"
)

// asyncState is what the VM holds for callbacks Envoy delivers later.
type asyncState struct {
	lastCallToken uint32
	calls         []*httpCall
	response      *httpCallResponse // readable during proxy_on_http_call_response only
	delivering    bool
	resumes       []*Stream // streams a later proxy_continue_stream resumes (resume.go)
	// queueReady lists proxy_on_queue_ready notices for this VM; guarded by the
	// module's sharedQueues.mu because other VMs enqueue.
	queueReady []queueNotice
	// status is what proxy_get_status reads, per root context (Envoy's
	// Context::status_code_ and status_message_); absent is (0, "").
	status map[*Plugin]callStatus
}

type callStatus struct {
	code    Status
	message string
}

// DefaultCallResponseLimit is the most response body bytes Envoy's async client
// buffers for an HTTP call (async_client_impl.h kBufferLimitForResponse, runtime
// key http.async_response_buffer_limit); a longer body fails the call.
const DefaultCallResponseLimit = 32 << 20

// callFailedMessage is the proxy_get_status message while the response callback
// of a failed call runs (context.cc Context::onHttpCallFailure).
const callFailedMessage = "reset"

// httpCall is one call in flight: its handler runs on its own goroutine from
// the moment the module makes the call.
type httpCall struct {
	token    uint32
	root     *Plugin // whose root context made the call and gets the response
	cluster  string
	deadline time.Time // zero: no timeout
	done     chan struct{}
	finished time.Time
	ctx      context.Context // the request's: ends at the deadline, or once the module has the response
	cancel   context.CancelFunc
	w        *callResponseWriter
	panicked bool
}

// httpCallResponse is what the module can read during proxy_on_http_call_response.
type httpCallResponse struct {
	headers  headerMap
	trailers *headerMap // nil when the response had none (Envoy's trailers() is null)
	body     []byte
}

// proxyHTTPCall is cpp-host src/exports.cc http_call and Envoy's
// Context::httpCall: (upstream, headers, body, trailers, timeout, &token).
func (vm *VM) proxyHTTPCall(s []uint64) {
	const fn = "proxy_http_call"
	upstream, okUpstream := vm.readString(uint32(s[0]), uint32(s[1]))
	headerPairs, okHeaders := vm.read(uint32(s[2]), uint32(s[3]))
	body, okBody := vm.read(uint32(s[4]), uint32(s[5]))
	body = slices.Clone(body)
	trailerPairs, okTrailers := vm.read(uint32(s[6]), uint32(s[7]))
	timeoutMS, tokenPtr := int32(uint32(s[8])), uint32(s[9])
	if !okUpstream || !okHeaders || !okBody || !okTrailers {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "upstream, headers, body or trailers are outside memory")
		return
	}
	// exports.cc writes a zero token first, to check the pointer before starting the call.
	if !vm.writeU32(tokenPtr, 0) {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "return_token %d is outside memory", tokenPtr)
		return
	}
	if timeoutMS < 0 { // the ABI passes a u32; Envoy reads it as an int
		vm.misuse(s, fn, StatusBadArgument, "timeout %d ms is negative", timeoutMS)
		return
	}
	handler := vm.cfg.Clusters[upstream]
	if handler == nil {
		vm.misuse(s, fn, StatusBadArgument, "no cluster %q (PluginConfig.Clusters)", upstream)
		return
	}
	headers := newHeaderMap(MapRequestHeaders)
	for _, p := range unmarshalPairs(headerPairs) {
		headers.add(p.Name, p.Value)
	}
	path, okPath := headers.get(":path")
	method, okMethod := headers.get(":method")
	authority, okAuthority := headers.get(":authority")
	if !okPath || !okMethod || !okAuthority {
		vm.misuse(s, fn, StatusBadArgument, "headers need :path, :method and :authority")
		return
	}
	if len(body) > 0 {
		headers.replace("content-length", strconv.Itoa(len(body)))
	}
	trailers := newHeaderMap(MapRequestTrailers)
	for _, p := range unmarshalPairs(trailerPairs) {
		trailers.add(p.Name, p.Value)
	}
	req := callRequest(method, path, authority, headers, body, trailers)

	vm.async.lastCallToken += calloutIncrement
	c := &httpCall{token: vm.async.lastCallToken, root: vm.targetPlugin(), cluster: upstream, done: make(chan struct{}),
		w: &callResponseWriter{header: http.Header{}, limit: vm.callResponseLimit()}}
	if timeoutMS > 0 { // 0 means no timeout
		c.deadline = time.Now().Add(time.Duration(timeoutMS) * time.Millisecond)
		c.ctx, c.cancel = context.WithDeadline(context.Background(), c.deadline)
	} else {
		c.ctx, c.cancel = context.WithCancel(context.Background())
	}
	go c.serve(handler, req.WithContext(c.ctx))
	vm.async.calls = append(vm.async.calls, c)
	vm.writeU32(tokenPtr, c.token)
	ok(s)
}

// callRequest builds the request a cluster's handler sees, from the header map
// Envoy would send (pseudo-headers become the method, URL and Host).
func callRequest(method, path, authority string, headers headerMap, body []byte, trailers headerMap) *http.Request {
	u, err := url.ParseRequestURI(path)
	if err != nil {
		u = &url.URL{Opaque: path}
	}
	u.Host, u.Scheme = authority, "http"
	if scheme, found := headers.get(":scheme"); found {
		u.Scheme = scheme
	}
	req := &http.Request{Method: method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Host: authority, RequestURI: path, ContentLength: int64(len(body)),
		Body: http.NoBody}
	if len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	for _, h := range headers.entries {
		if !isPseudo(h.Name) {
			req.Header.Add(h.Name, h.Value)
		}
	}
	if len(trailers.entries) > 0 {
		req.Trailer = http.Header{}
		for _, h := range trailers.entries {
			req.Trailer.Add(h.Name, h.Value)
		}
	}
	return req
}

// serve runs the handler. A panic (http.ErrAbortHandler included) is what a
// Go server turns into a reset of the stream, so it fails the call instead of
// the host.
func (c *httpCall) serve(h http.Handler, req *http.Request) {
	defer close(c.done)
	defer func() {
		c.panicked, c.finished = recover() != nil, time.Now()
		c.w.closeHijacked()
	}()
	h.ServeHTTP(c.w, req)
}

func (vm *VM) callResponseLimit() int {
	if l := vm.cfg.CallResponseLimit; l > 0 {
		return l
	}
	return DefaultCallResponseLimit
}

// await waits for the handler, or until the call's timeout, whichever comes
// first; a handler that finished after its deadline timed out too. It returns
// nil for a call Envoy's async client fails (onFailure): the handler panicked
// or hijacked the connection (the upstream stream is reset), or the body went
// over the response buffer limit (ExceedResponseBufferLimit).
func (c *httpCall) await() *httpCallResponse {
	defer c.cancel()
	finished := false
	select { // a handler that is done wins over a deadline that passed since
	case <-c.done:
		finished = true
	default:
		select {
		case <-c.done:
			finished = true
		case <-c.ctx.Done(): // the deadline passed (cancel comes only below)
		}
	}
	if !finished || !c.deadline.IsZero() && c.finished.After(c.deadline) {
		// The handler may still run, but nobody reads what it writes.
		r := &httpCallResponse{headers: newHeaderMap(MapResponseHeaders), body: []byte(timeoutBody)}
		r.headers.add(":status", timeoutStatus)
		r.headers.add("content-length", strconv.Itoa(len(timeoutBody)))
		r.headers.add("content-type", "text/plain")
		return r
	}
	if c.panicked || c.w.hijacked != nil || c.w.overLimit {
		return nil
	}
	return c.w.response()
}

// callResponseWriter records a handler's response. Trailers follow net/http:
// names announced in the "Trailer" header, or keys prefixed with http.TrailerPrefix.
type callResponseWriter struct {
	header      http.Header
	sent        http.Header // header as of WriteHeader
	status      int
	body        bytes.Buffer
	wroteHeader bool
	limit       int  // response buffer limit
	overLimit   bool // the body went over it: the rest is dropped, as Envoy drains it
	hijacked    net.Conn
}

// Hijack hands the handler a connection whose other end is already closed
// (reads see EOF, writes fail): Envoy's codec gets no response it could use,
// so the call fails as a reset once the handler returns.
func (w *callResponseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked != nil {
		return nil, nil, http.ErrHijacked
	}
	conn, peer := net.Pipe()
	peer.Close()
	w.hijacked = conn
	return conn, bufio.NewReadWriter(bufio.NewReader(conn), bufio.NewWriter(conn)), nil
}

func (w *callResponseWriter) closeHijacked() {
	if w.hijacked != nil {
		w.hijacked.Close()
	}
}

func (w *callResponseWriter) Header() http.Header { return w.header }

func (w *callResponseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader, w.status, w.sent = true, code, w.header.Clone()
}

func (w *callResponseWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.overLimit || w.body.Len()+len(b) > w.limit {
		w.overLimit = true
		return len(b), nil
	}
	return w.body.Write(b)
}

// response is the response as Envoy's codec would hand it over: ":status"
// first, then the handler's headers, names lowercased and sorted (a Go header
// map has no order), each name's values in order.
func (w *callResponseWriter) response() *httpCallResponse {
	w.WriteHeader(http.StatusOK)
	r := &httpCallResponse{headers: newHeaderMap(MapResponseHeaders), body: w.body.Bytes()}
	r.headers.add(":status", strconv.Itoa(w.status))
	addSorted(&r.headers, w.sent, func(string) bool { return true })
	announced := map[string]bool{}
	for _, v := range w.sent.Values("Trailer") {
		for name := range strings.SplitSeq(v, ",") {
			announced[http.CanonicalHeaderKey(strings.TrimSpace(name))] = true
		}
	}
	trailers := newHeaderMap(MapResponseTrailers)
	addSorted(&trailers, w.header, func(k string) bool { return announced[k] })
	prefixed := http.Header{}
	for k, vs := range w.header {
		if name, found := strings.CutPrefix(k, http.TrailerPrefix); found {
			prefixed[name] = vs
		}
	}
	addSorted(&trailers, prefixed, func(string) bool { return true })
	if len(trailers.entries) > 0 {
		r.trailers = &trailers
	}
	return r
}

func addSorted(m *headerMap, h http.Header, keep func(string) bool) {
	keys := make([]string, 0, len(h))
	for k := range h {
		if keep(k) && !strings.HasPrefix(k, http.TrailerPrefix) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int { return strings.Compare(lower(a), lower(b)) })
	for _, k := range keys {
		for _, v := range h[k] {
			m.add(k, v)
		}
	}
}

// RunPending delivers what Envoy's dispatcher would deliver once the running
// callbacks have returned: responses to HTTP calls (in the order the calls were
// made, waiting for each handler or its timeout) and proxy_on_queue_ready
// notices for queues this VM registered, including callbacks those deliveries
// cause. hostsim already does this after each callback it runs; call it for
// work another VM caused (an enqueue to a queue this VM registered).
func (vm *VM) RunPending() { vm.deliverPending() }

func (vm *VM) deliverPending() {
	if vm.async.delivering {
		return
	}
	vm.async.delivering = true
	defer func() { vm.async.delivering = false }()
	for range maxDeliveries {
		if vm.failed || vm.released {
			return
		}
		// What the callback that ran last asked for, in Envoy's after-call
		// actions: local replies (from a tick too), then continues.
		vm.encodeLocalReplies()
		vm.resumeStreams()
		if len(vm.async.calls) > 0 {
			c := vm.async.calls[0]
			vm.async.calls = vm.async.calls[1:]
			if r := c.await(); r != nil {
				vm.deliverHTTPCallResponse(c.root, c.token, r)
			} else {
				vm.deliverHTTPCallFailure(c.root, c.token)
			}
		} else if n, found := vm.nextQueueNotice(); found {
			vm.deliverQueueReady(n)
		} else {
			return
		}
	}
}

// deliverHTTPCallResponse is Envoy's Context::onHttpCallSuccess on the root
// context (cpp-host exports.cc http_call makes every call from the root
// context): proxy_on_http_call_response(root id, token, number of headers,
// body size, number of trailers). SDKs switch to the calling stream with
// proxy_set_effective_context themselves. A root context already deleted
// gets nothing: Envoy cancels its calls when it is destroyed.
func (vm *VM) deliverHTTPCallResponse(root *Plugin, token uint32, r *httpCallResponse) {
	fn := vm.mod.ExportedFunction(exportHTTPCallResponse)
	if fn == nil || root.state == pluginDeleted {
		return
	}
	var trailers uint64
	if r.trailers != nil {
		trailers = uint64(len(r.trailers.entries))
	}
	vm.async.response = r
	vm.stack[0], vm.stack[1], vm.stack[2] = uint64(root.rootID), uint64(token), uint64(len(r.headers.entries))
	vm.stack[3], vm.stack[4] = uint64(len(r.body)), trailers
	vm.callRoot(root, fn, exportHTTPCallResponse)
	vm.async.response = nil
}

// deliverHTTPCallFailure is Envoy's Context::onHttpCallFailure: the root
// context's status becomes BrokenConnection with the message "reset" (for a
// reset and for a response over the buffer limit alike), then
// proxy_on_http_call_response(root id, token, 0, 0, 0) runs with no response
// maps or body; after it the message is cleared but the code stays, as Envoy
// resets only the message.
func (vm *VM) deliverHTTPCallFailure(root *Plugin, token uint32) {
	fn := vm.mod.ExportedFunction(exportHTTPCallResponse)
	if fn == nil || root.state == pluginDeleted {
		return
	}
	if vm.async.status == nil {
		vm.async.status = map[*Plugin]callStatus{}
	}
	vm.async.status[root] = callStatus{StatusBrokenConnection, callFailedMessage}
	vm.stack[0], vm.stack[1] = uint64(root.rootID), uint64(token)
	vm.stack[2], vm.stack[3], vm.stack[4] = 0, 0, 0
	vm.callRoot(root, fn, exportHTTPCallResponse)
	vm.async.status[root] = callStatus{code: StatusBrokenConnection}
}

// callStatus is Context::getStatus of the calling (or effective) context's
// root context, as cpp-host get_status reads it.
func (vm *VM) callStatus() callStatus { return vm.async.status[vm.targetPlugin()] }

// encodeLocalReplies sends the local replies a callback made for another
// stream (tick, HTTP-call response or queue notice, with
// proxy_set_effective_context), as Envoy runs them after the call.
func (vm *VM) encodeLocalReplies() {
	ids := make([]uint32, 0, len(vm.streams))
	for id, s := range vm.streams {
		if s.localReply != nil && !s.replyEncoded {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		vm.streams[id].encodeLocalReply()
	}
}

// afterCallback runs the deliveries that the stream's callback made pending and
// folds into r what they did to this stream: a proxy_continue_stream resumes a
// paused stream (Continue becomes true while Action keeps the raw Pause), a
// local reply answers it.
func (s *Stream) afterCallback(r Result) Result {
	if s.mode != streamNormal {
		return r
	}
	own := s.continueRequested
	s.continueRequested = [2]bool{}
	s.rs.inCall = true // a continue from here is this call's (resume.go)
	s.vm.deliverPending()
	s.rs.inCall = false
	if !r.Continue && (s.continueRequested[0] || s.continueRequested[1]) && s.localReply == nil && !s.isFailed() {
		r.Continue = true
	}
	s.continueRequested = own
	return s.result(r)
}

// callResponseMap is Envoy's getConstMap for the HTTP-call response maps: the
// root context's response, set only while proxy_on_http_call_response runs.
func (vm *VM) callResponseMap(t MapType) *headerMap {
	r := vm.async.response
	switch {
	case r == nil:
		return nil
	case t == MapHTTPCallResponseHeaders:
		return &r.headers
	}
	return r.trailers
}

// gRPC: hostsim has no gRPC service, so every call fails as Envoy fails one to a
// cluster it does not have (context.cc Context::grpcCall and grpcStream): a
// grpc_service that is not a serialised GrpcService is taken as a cluster name,
// unknown, so ParseFailure; one that parses as a GrpcService gives BadArgument
// (no async client can be made for it here). No call ever starts, so cancel,
// close and send find nothing (context.cc grpcCancel, grpcClose, grpcSend).

func (vm *VM) proxyGrpcCall(s []uint64) {
	const fn = "proxy_grpc_call"
	service, okService := vm.read(uint32(s[0]), uint32(s[1]))
	_, okName := vm.read(uint32(s[2]), uint32(s[3]))
	_, okMethod := vm.read(uint32(s[4]), uint32(s[5]))
	_, okMetadata := vm.read(uint32(s[6]), uint32(s[7]))
	_, okRequest := vm.read(uint32(s[8]), uint32(s[9]))
	if !okService || !okName || !okMethod || !okMetadata || !okRequest {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "service, names, metadata or request are outside memory")
		return
	}
	vm.refuseGrpc(s, fn, service)
}

func (vm *VM) proxyGrpcStream(s []uint64) {
	const fn = "proxy_grpc_stream"
	service, okService := vm.read(uint32(s[0]), uint32(s[1]))
	_, okName := vm.read(uint32(s[2]), uint32(s[3]))
	_, okMethod := vm.read(uint32(s[4]), uint32(s[5]))
	_, okMetadata := vm.read(uint32(s[6]), uint32(s[7]))
	if !okService || !okName || !okMethod || !okMetadata {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "service, names or metadata are outside memory")
		return
	}
	vm.refuseGrpc(s, fn, service)
}

func (vm *VM) refuseGrpc(s []uint64, fn string, service []byte) {
	if !parsesAsGrpcService(service) {
		vm.misuse(s, fn, StatusParseFailure, "no cluster %q (hostsim models no gRPC)", service)
		return
	}
	vm.misuse(s, fn, StatusBadArgument, "grpc_service is a GrpcService message; hostsim models no gRPC client")
}

func (vm *VM) proxyGrpcCancel(s []uint64) { vm.grpcToken(s, "proxy_grpc_cancel", true) }
func (vm *VM) proxyGrpcClose(s []uint64)  { vm.grpcToken(s, "proxy_grpc_close", true) }

func (vm *VM) proxyGrpcSend(s []uint64) {
	if _, okMessage := vm.read(uint32(s[1]), uint32(s[2])); !okMessage {
		vm.misuse(s, "proxy_grpc_send", StatusInvalidMemoryAccess, "message is outside memory")
		return
	}
	vm.grpcToken(s, "proxy_grpc_send", false)
}

// grpcToken answers for a token no call or stream has: NotFound when its low
// bits say gRPC call (only where callsToo) or gRPC stream, else BadArgument.
func (vm *VM) grpcToken(s []uint64, fn string, callsToo bool) {
	token := uint32(s[0])
	switch t := token & calloutTypeMask; {
	case t == calloutGrpcStrm, t == calloutGrpcCall && callsToo:
		vm.misuse(s, fn, StatusNotFound, "no gRPC call or stream %d", token)
	default:
		vm.misuse(s, fn, StatusBadArgument, "token %d is not a gRPC token this function takes", token)
	}
}

// parsesAsGrpcService reports whether protobuf would parse b as an
// envoy.config.core.v3.GrpcService: well-formed wire format all the way down
// through the message fields grpcServiceSchema names, their proto3 strings
// valid UTF-8, and no deeper than protobuf's default recursion limit.
func parsesAsGrpcService(b []byte) bool {
	rest, ok := skipFields(b, "GrpcService", 0, protoRecursionLimit)
	return ok && len(rest) == 0
}

// protoRecursionLimit is C++ protobuf's default nesting limit for parsing
// (messages and groups alike).
const protoRecursionLimit = 100

// protoString marks a proto3 string field, which must hold valid UTF-8.
const protoString = "string"

// grpcServiceSchema is every message reachable from GrpcService in Envoy
// v1.40.0's protos, by name relative to its package, with its string and
// message fields (bytes and scalar fields need no checking past the wire
// format). TestGrpcServiceSchema checks it against go-control-plane.
var grpcServiceSchema = map[string]map[uint64]string{
	"GrpcService":                                   {1: "GrpcService.EnvoyGrpc", 2: "GrpcService.GoogleGrpc", 3: "Duration", 5: "HeaderValue", 6: "RetryPolicy"},
	"GrpcService.EnvoyGrpc":                         {1: protoString, 2: protoString, 3: "RetryPolicy", 4: "UInt32Value"},
	"GrpcService.GoogleGrpc":                        {1: protoString, 2: "GrpcService.GoogleGrpc.ChannelCredentials", 3: "GrpcService.GoogleGrpc.CallCredentials", 4: protoString, 5: protoString, 6: "Struct", 7: "UInt32Value", 8: "GrpcService.GoogleGrpc.ChannelArgs", 9: "Any", 10: "Any"},
	"GrpcService.GoogleGrpc.ChannelCredentials":     {1: "GrpcService.GoogleGrpc.SslCredentials", 2: "Empty", 3: "GrpcService.GoogleGrpc.GoogleLocalCredentials"},
	"GrpcService.GoogleGrpc.SslCredentials":         {1: "DataSource", 2: "DataSource", 3: "DataSource"},
	"GrpcService.GoogleGrpc.GoogleLocalCredentials": {},
	"GrpcService.GoogleGrpc.CallCredentials": {1: protoString, 2: "Empty", 3: protoString,
		4: "GrpcService.GoogleGrpc.CallCredentials.ServiceAccountJWTAccessCredentials",
		5: "GrpcService.GoogleGrpc.CallCredentials.GoogleIAMCredentials",
		6: "GrpcService.GoogleGrpc.CallCredentials.MetadataCredentialsFromPlugin",
		7: "GrpcService.GoogleGrpc.CallCredentials.StsService"},
	"GrpcService.GoogleGrpc.CallCredentials.ServiceAccountJWTAccessCredentials": {1: protoString},
	"GrpcService.GoogleGrpc.CallCredentials.GoogleIAMCredentials":               {1: protoString, 2: protoString},
	"GrpcService.GoogleGrpc.CallCredentials.MetadataCredentialsFromPlugin":      {1: protoString, 3: "Any"},
	"GrpcService.GoogleGrpc.CallCredentials.StsService": {1: protoString, 2: protoString, 3: protoString,
		4: protoString, 5: protoString, 6: protoString, 7: protoString, 8: protoString, 9: protoString},
	"GrpcService.GoogleGrpc.ChannelArgs":           {1: "GrpcService.GoogleGrpc.ChannelArgs.ArgsEntry"},
	"GrpcService.GoogleGrpc.ChannelArgs.ArgsEntry": {1: protoString, 2: "GrpcService.GoogleGrpc.ChannelArgs.Value"},
	"GrpcService.GoogleGrpc.ChannelArgs.Value":     {1: protoString},
	"RetryPolicy":                    {1: "BackoffStrategy", 2: "UInt32Value", 3: protoString, 4: "RetryPolicy.RetryPriority", 5: "RetryPolicy.RetryHostPredicate"},
	"RetryPolicy.RetryPriority":      {1: protoString, 2: "Any"},
	"RetryPolicy.RetryHostPredicate": {1: protoString, 2: "Any"},
	"BackoffStrategy":                {1: "Duration", 2: "Duration"},
	"DataSource":                     {1: protoString, 3: protoString, 4: protoString, 5: "WatchedDirectory"},
	"WatchedDirectory":               {1: protoString},
	"HeaderValue":                    {1: protoString, 2: protoString},
	"Any":                            {1: protoString},
	"Duration":                       {},
	"Empty":                          {},
	"UInt32Value":                    {},
	"Struct":                         {1: "Struct.FieldsEntry"},
	"Struct.FieldsEntry":             {1: protoString, 2: "Value"},
	"Value":                          {3: protoString, 5: "Struct", 6: "ListValue"},
	"ListValue":                      {1: "Value"},
}

// skipFields consumes the fields of a message (or, inside a group, up to its
// end tag) until the end of b. msg names the message in grpcServiceSchema; ""
// is an unknown field's group, whose contents are checked as wire format only.
func skipFields(b []byte, msg string, group uint64, depth int) ([]byte, bool) {
	if depth--; depth < 0 {
		return nil, false
	}
	for len(b) > 0 {
		tag, n := uvarint(b)
		if n == 0 {
			return nil, false
		}
		b = b[n:]
		field, wire := tag>>3, tag&7
		if field == 0 || field > 1<<29-1 {
			return nil, false
		}
		switch wire {
		case 0:
			if _, n = uvarint(b); n == 0 {
				return nil, false
			}
			b = b[n:]
		case 1, 5:
			size := 8
			if wire == 5 {
				size = 4
			}
			if len(b) < size {
				return nil, false
			}
			b = b[size:]
		case 2:
			size, n := uvarint(b)
			if n == 0 || size > uint64(len(b)-n) {
				return nil, false
			}
			payload := b[n : n+int(size)]
			switch kind := grpcServiceSchema[msg][field]; kind {
			case "":
			case protoString:
				if !utf8.Valid(payload) {
					return nil, false
				}
			default:
				if rest, ok := skipFields(payload, kind, 0, depth); !ok || len(rest) > 0 {
					return nil, false
				}
			}
			b = b[n+int(size):]
		case 3:
			var ok bool
			if b, ok = skipFields(b, "", field, depth); !ok {
				return nil, false
			}
		case 4:
			if field != group {
				return nil, false
			}
			return b, true
		default:
			return nil, false
		}
	}
	return b, group == 0
}

// uvarint decodes a protobuf varint; n is 0 when b does not hold one.
func uvarint(b []byte) (v uint64, n int) {
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}
