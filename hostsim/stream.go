package hostsim

import (
	"context"
	"errors"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// FailStreamDetails is the response code details of the 503 Envoy sends when the
// VM has failed and fail_open is false (context.cc FailStreamResponseDetails).
const FailStreamDetails = "wasm_fail_stream"

// CloseStreamDetails is the response code details proxy_close_stream gives a
// stream that has none yet (context.cc CloseStreamResponseDetails).
const CloseStreamDetails = "wasm_close_stream"

// grpcUnavailable is the gRPC status of that 503.
const grpcUnavailable = 14

// Result is what one HTTP callback did.
type Result struct {
	// Action is what the callback returned, unchanged.
	Action Action
	// Continue reports whether Envoy continues the filter chain: false when the
	// callback paused, sent a local reply (Envoy then ignores the return value) or
	// the VM failed closed. A pause that a callback delivered right after it
	// undid (an HTTP-call response calling proxy_continue_stream) reports true.
	Continue bool
	// Headers is the header map after the callback: what Envoy forwards if it continues.
	Headers Headers
	// Body is, for body callbacks, the buffered body after the callback (what
	// leaves the filter if it continues); for trailers callbacks that continue,
	// the body that leaves before the trailers.
	Body []byte
	// Trailers is the trailer map after a trailers callback, or the trailers
	// the module added at the end of the body (Envoy's addDecodedTrailers).
	Trailers Headers
	// LocalReply is set once the stream has been answered locally, by the module or
	// by Envoy's fail-closed 503.
	LocalReply *LocalReply
	// Reset reports that the stream was reset: the module closed it
	// (proxy_close_stream), or a response outgrew the buffer limit after its
	// headers left. The filter is called no more, but for Close.
	Reset bool
	// Backpressure reports that the body this direction holds for a
	// ...AndWatermark status is over the buffer limit (its high watermark):
	// Envoy then stops reading from the sending peer (downstream for the
	// request, upstream for the response) until the filter continues, instead
	// of failing the stream. hostsim still accepts chunks; a caller playing the
	// peer should stop sending them.
	Backpressure bool
	// ContinueRequested reports a proxy_continue_stream (request or response)
	// made during the callback itself. Envoy runs it right after the callback,
	// before it applies the callback's status (resume.go continueOwnCallback);
	// a continue from a later callback resumes the stream: see Stream.Resumes.
	ContinueRequested bool
}

// LocalReply is a response Envoy sends without going upstream.
type LocalReply struct {
	// Status is the code the reply was asked for (the module's, or Envoy's own);
	// the :status that leaves is in Headers (200 for a gRPC request).
	Status int
	// Headers are the response headers as they leave the filter, prepared as
	// Envoy's Utility::prepareLocalReply does (see prepareLocalReply: the
	// module's additional headers with names lowercased, content-length and
	// content-type, or the gRPC trailers-only form) after the module's own
	// proxy_on_response_headers ran on them. Envoy adds date and server later.
	Headers Headers
	// Body is the body that follows the headers: nil when the headers end the
	// stream (an empty body, a gRPC or a HEAD request).
	Body []byte
	// Details is the response code details, with whitespace replaced by '_' as Envoy does.
	Details string
	// GrpcStatus is the gRPC status the reply was asked for, or -1 for none.
	GrpcStatus int
}

type streamMode uint8

const (
	streamNormal streamMode = iota
	// streamSkipped: the VM had failed with fail_open, so Envoy did not add the filter.
	streamSkipped
	// streamNull: the VM had failed without fail_open; Envoy adds a filter with no
	// VM, which answers 503 (wasm_filter.h FilterConfig::createFilter).
	streamNull
)

// Stream is one HTTP stream through the filter (an Envoy stream context).
type Stream struct {
	vm      *VM
	plugin  *Plugin // whose root context is the stream's parent
	id      uint32
	mode    streamMode
	created bool // in_vm_context_created_
	closed  bool

	req, resp               headerMap
	reqVisible, respVisible bool
	accessLogPhase          bool
	hasResp                 bool

	bodies      [2][]byte // request and response body buffers
	visibleBody int       // index into bodies of the body the running callback sees, or -1
	buffering   [2]bool   // previous body callback returned StopIterationAndBuffer
	upstream    []byte    // request body continued upstream
	bodyEOS     bool      // the running body callback has end_of_stream

	// body.go: what a headers StopAll holds, body the filter manager buffers
	// without the module seeing it, trailers, and whether response headers left.
	held            [2]uint8
	parked          [2][]byte
	trailers        [2]*headerMap
	trailersVisible [2]bool
	respSent        bool
	respReplaced    bool    // a direct local reply replaced the response: the filter sees no more of it
	streaming       [2]bool // the body is held for a watermark status (decoder/encoder_filters_streaming_)

	localReply        *LocalReply
	replyEncoded      bool
	grpcRequest       bool // the local-reply form the request asks for (localreply.go)
	headRequest       bool
	failureReplySent  bool
	streamFailed      bool
	reset             bool
	continueRequested [2]bool     // proxy_continue_stream per direction during the running callback
	info              streamInfo  // what properties read (properties.go)
	rs                resumeState // resume.go
}

// ErrStreamClosed is returned by calls on a closed stream.
var ErrStreamClosed = errors.New("hostsim: stream is closed")

// NewStream creates a stream context under the VM's own plugin (VM.Plugin), as
// Envoy creates the filter for a new request. The module sees it
// (proxy_on_context_create) with the first callback.
func (vm *VM) NewStream(ctx context.Context) *Stream { return vm.plugin.NewStream(ctx) }

// ID is the stream's context id (0 when the VM had failed before it was created).
func (s *Stream) ID() uint32 { return s.id }

func (s *Stream) isFailed() bool { return s.mode == streamNull || s.vm.failed }

// onCreate is ContextBase::onCreate: proxy_on_context_create(id, root) once.
func (s *Stream) onCreate() {
	vm := s.vm
	if !s.isFailed() && !s.created && vm.fns.contextCreate != nil {
		vm.stack[0], vm.stack[1] = uint64(s.id), uint64(s.plugin.rootID)
		vm.callIn(s, vm.fns.contextCreate, exportContextCreate)
	}
	s.created = true
}

// checkFail is cpp-host CHECK_FAIL_HTTP: once the VM failed, fail open (continue)
// or send the fail-closed 503 once.
func (s *Stream) checkFail() (failed, cont bool) {
	if !s.isFailed() {
		return false, false
	}
	if s.plugin.cfg.FailOpen {
		return true, true
	}
	if !s.streamFailed {
		s.failStream()
		s.streamFailed = true
	}
	return true, false
}

func (s *Stream) failStream() {
	if !s.failureReplySent {
		// The module is not called again, so the reply leaves as prepared.
		s.setLocalReply(&LocalReply{Status: 503, Details: FailStreamDetails, GrpcStatus: grpcUnavailable})
		s.replyEncoded = true
		s.failureReplySent = true
		s.sendPreparedReply(s.localReply)
	}
}

// encodeLocalReply runs a module's local reply through the encoder side of the
// filter, as Envoy's FilterManager::sendLocalReplyViaFilterChain does: the module
// sees it in proxy_on_response_headers (and proxy_on_response_body when a body
// follows, see prepareLocalReply) unless the response had already started.
func (s *Stream) encodeLocalReply() {
	r := s.localReply
	if r == nil || s.replyEncoded {
		return
	}
	s.replyEncoded = true
	s.info.responseDetail = r.Details // FilterManager::sendLocalReply sets the details at once
	h, body := s.prepareLocalReply(r)
	if s.hasResp {
		s.sendDirectLocalReply(r, h, body)
		return
	}
	// Detached while the module sees it; a second local reply from there is dropped.
	s.localReply = nil
	s.resp, s.hasResp, s.respVisible = h, true, true
	res := s.headersCallback(s.vm.fns.responseHeaders, exportResponseHeaders, len(h.entries), body == nil)
	s.respVisible = false
	r.Body = body
	if body != nil && res.Continue {
		if b, err := s.ResponseBody(body, true); err == nil {
			r.Body = b.Body
		}
	}
	if s.failureReplySent { // the module failed while handling its own reply
		return
	}
	s.localReply = r
	r.Headers = s.resp.snapshot()
	s.chargeStats(r.Headers)
}

// sendPreparedReply finishes a reply that does not pass through the module
// (the fail-closed 503, the direct 500): its headers and body are prepared
// (prepareLocalReply) and leave as they are.
func (s *Stream) sendPreparedReply(r *LocalReply) {
	s.info.responseDetail = r.Details
	h, body := s.prepareLocalReply(r)
	r.Headers, r.Body = h.snapshot(), body
	if !s.respSent { // else Envoy resets the stream and the code stays
		s.chargeStats(r.Headers)
	}
}

// sendDirectLocalReply is Envoy's FilterManager::sendLocalReply once the
// response has started (filter_manager.cc): while its headers have not gone
// downstream, the reply replaces the response and goes straight to the codec,
// past the filters (sendDirectLocalReply), so the module does not see it and
// sees no more of the upstream response; after that the stream can only be
// reset. Either way the stream info takes the reply's details; the code is
// the :status that leaves (200 for a gRPC reply).
func (s *Stream) sendDirectLocalReply(r *LocalReply, h headerMap, body []byte) {
	if s.respSent {
		s.info.responseCode = r.Status
		s.localReply, s.reset = nil, true
		return
	}
	r.Headers, r.Body = h.snapshot(), body
	s.chargeStats(r.Headers)
	s.respReplaced = true
}

// noteClose is Context::closeStream's setResponseCodeDetails, made only when
// the stream has no details yet (only a response code comes with them here).
func (s *Stream) noteClose() {
	if s.info.responseCode == 0 && s.info.responseDetail == "" {
		s.info.responseDetail = CloseStreamDetails
	}
}

func (s *Stream) setLocalReply(r *LocalReply) {
	if s.localReply == nil {
		s.localReply = r
	}
}

// RequestHeaders runs proxy_on_request_headers with h as the request header map.
// Names are lowercased and "host" becomes ":authority", as Envoy's codec does.
func (s *Stream) RequestHeaders(h Headers, endOfStream bool) (Result, error) {
	if s.closed {
		return Result{}, ErrStreamClosed
	}
	s.req = newHeaderMap(MapRequestHeaders)
	for _, f := range h {
		s.req.add(f.Name, f.Value)
	}
	s.noteRequestKind() // localreply.go
	if s.mode == streamSkipped {
		return Result{Continue: true, Headers: s.req.snapshot()}, nil
	}
	s.onCreate()
	s.reqVisible = true
	r := s.headersCallback(s.vm.fns.requestHeaders, exportRequestHeaders, len(s.req.entries), endOfStream)
	r, own := s.afterCallback(r), s.continueRequested[0]
	if r.Continue {
		s.reqVisible = false
		s.held[0] = 0
	}
	s.notePause(false, pausedInHeaders, r)
	r = s.continueOwnCallback(false, pausedInHeaders, own, r)
	r.Headers = s.req.snapshot()
	return r, nil
}

// ResponseHeaders runs proxy_on_response_headers with h as the response header map.
func (s *Stream) ResponseHeaders(h Headers, endOfStream bool) (Result, error) {
	if s.closed {
		return Result{}, ErrStreamClosed
	}
	s.resp = newHeaderMap(MapResponseHeaders)
	for _, f := range h {
		s.resp.add(f.Name, f.Value)
	}
	s.hasResp = true
	s.noteUpstreamResponse()
	// Context::encodeHeaders skips the VM once the fail-closed reply was sent.
	if s.mode == streamSkipped || !s.created || s.failureReplySent {
		s.respSent = true
		return Result{Continue: true, Headers: s.resp.snapshot(), LocalReply: s.localReply}, nil
	}
	if s.reset {
		return s.result(Result{Headers: s.resp.snapshot()}), nil
	}
	s.respVisible = true
	r := s.headersCallback(s.vm.fns.responseHeaders, exportResponseHeaders, len(s.resp.entries), endOfStream)
	r, own := s.afterCallback(r), s.continueRequested[1]
	if r.Continue {
		s.respVisible = false
		s.held[1], s.respSent = 0, true
	}
	s.notePause(true, pausedInHeaders, r)
	r = s.continueOwnCallback(true, pausedInHeaders, own, r)
	r.Headers = s.resp.snapshot()
	return r, nil
}

// RequestBody runs proxy_on_request_body with chunk. While the previous call
// returned StopIterationAndBuffer, chunks accumulate and the module sees them all.
func (s *Stream) RequestBody(chunk []byte, endOfStream bool) (Result, error) {
	return s.bodyCallback(false, chunk, endOfStream)
}

// ResponseBody runs proxy_on_response_body with chunk.
func (s *Stream) ResponseBody(chunk []byte, endOfStream bool) (Result, error) {
	return s.bodyCallback(true, chunk, endOfStream)
}

func (s *Stream) headersCallback(fn api.Function, name string, n int, eos bool) Result {
	vm := s.vm
	if failed, cont := s.checkFail(); failed {
		return s.result(Result{Continue: cont})
	}
	if fn == nil {
		return s.result(Result{Continue: true})
	}
	vm.stack[0], vm.stack[1], vm.stack[2] = uint64(s.id), uint64(n), boolWord(eos)
	raw, stop := s.run(fn, name)
	if failed, cont := s.checkFail(); failed {
		return s.result(Result{Action: Action(raw), Continue: cont})
	}
	status := uint32(raw)
	if stop || status > headersStopAllIterationAndWatermark ||
		status == headersStopIteration && !s.plugin.cfg.AllowOnHeadersStopIteration {
		status = headersStopAllIterationAndWatermark
	}
	s.holdHeaders(name == exportResponseHeaders, status)
	return s.result(Result{Action: Action(raw),
		Continue: status == headersContinue || status == headersContinueAndEndStream})
}

func (s *Stream) bodyCallback(resp bool, chunk []byte, eos bool) (Result, error) {
	if s.closed {
		return Result{}, ErrStreamClosed
	}
	s.bodyArrived(resp, chunk)
	if s.mode == streamSkipped || !s.created || resp && s.failureReplySent {
		s.bodyLeft(resp, chunk)
		if !resp {
			s.upstream = append(s.upstream, chunk...)
		}
		return Result{Continue: true, Body: chunk, LocalReply: s.localReply}, nil
	}
	if s.held[direction(resp)] != 0 && eos {
		s.rs.ended[direction(resp)] = true // resume.go hands it to the module
	}
	if r, skipped := s.skipBody(resp, chunk); skipped {
		return r, nil
	}
	vm := s.vm
	i, fn, name := 0, vm.fns.requestBody, exportRequestBody
	if resp {
		i, fn, name = 1, vm.fns.responseBody, exportResponseBody
	}
	joined := s.buffering[i] // the chunk joins the filter manager's buffer before the call
	if joined {
		s.bodies[i] = append(s.bodies[i], chunk...)
	} else {
		s.bodies[i] = append(s.bodies[i][:0], chunk...)
	}
	var r Result
	if s.buffering[i] && len(s.bodies[i]) > s.bufferLimit() {
		// addDecodedData/addEncodedData went over the limit: the module does
		// not see this chunk (context.cc decodeData).
		s.payloadTooLarge(resp)
		r = s.result(Result{})
	} else if failed, cont := s.checkFail(); failed {
		r = s.result(Result{Continue: cont})
	} else if fn == nil {
		r = s.result(Result{Continue: true})
	} else {
		// body_size is the whole buffered body while the module buffers
		// (getBuffer returns the filter manager's buffer), else this chunk.
		s.visibleBody, s.bodyEOS = i, eos
		vm.stack[0], vm.stack[1], vm.stack[2] = uint64(s.id), uint64(len(s.bodies[i])), boolWord(eos)
		raw, stop := s.run(fn, name)
		s.visibleBody, s.bodyEOS = -1, false
		if failed, cont := s.checkFail(); failed {
			r = s.result(Result{Action: Action(raw), Continue: cont})
		} else {
			status := uint32(raw)
			if stop || status > dataStopIterationNoBuffer {
				status = dataStopIterationNoBuffer
			}
			s.buffering[i] = status == dataStopIterationAndBuffer
			if s.buffering[i] || status == dataStopIterationAndWatermark {
				s.streaming[i] = !s.buffering[i] // filter_manager.cc commonHandleAfterDataCallback
			}
			switch {
			case s.buffering[i] && len(s.bodies[i]) > s.bufferLimit():
				s.payloadTooLarge(resp)
			case status == dataStopIterationAndWatermark:
				// The filter manager keeps the chunk, with no limit (flow control
				// instead); the module sees only later chunks, all leave together.
				s.parked[i] = append(s.parked[i], s.bodies[i]...)
				s.bodies[i] = s.bodies[i][:0]
			}
			r = s.result(Result{Action: Action(raw), Continue: status == dataContinue})
		}
	}
	r, own := s.afterCallback(r), s.continueRequested[i]
	s.notePause(resp, pausedInBody, r)
	// A continue of its own sends on what the filter manager buffered by then,
	// which holds this chunk only when it joined the buffer (resume.go).
	r = s.continueOwnCallback(resp, pausedInBody, own && joined, r)
	r.Body = append(append([]byte(nil), s.parked[i]...), s.bodies[i]...)
	if r.Continue {
		s.forwardBody(resp)
	}
	r.Backpressure = s.overHighWatermark(i)
	if s.trailers[i] != nil {
		r.Trailers = s.trailers[i].snapshot()
	}
	return r, nil
}

// run calls a stream callback and then Envoy's deferred after-call actions.
// stop reports a proxy_send_local_response during it, which makes cpp-host's
// status conversion stop the filter (isNextIterationStopped).
func (s *Stream) run(fn api.Function, name string) (raw uint64, stop bool) {
	s.continueRequested = [2]bool{}
	raw, _ = s.vm.callIn(s, fn, name)
	return raw, s.vm.stopped
}

func (s *Stream) result(r Result) Result {
	s.encodeLocalReply()
	r.LocalReply = s.localReply
	if s.localReply != nil || s.reset {
		r.Continue = false
	}
	r.Reset = s.reset
	r.ContinueRequested = s.continueRequested[0] || s.continueRequested[1]
	return r
}

// Close ends the stream as Envoy does when it completes: proxy_on_log (the access
// log phase), then proxy_on_done and proxy_on_delete (conn_manager_impl.cc
// doDeferredStreamDestroy logs before it destroys the filters). Its plugin, if
// removed and this was its last stream, then shuts down (Plugin.Remove).
func (s *Stream) Close() error {
	if s.closed {
		return ErrStreamClosed
	}
	s.closed = true
	vm := s.vm
	if s.mode != streamNormal {
		s.plugin.streamClosed()
		return nil
	}
	defer vm.deliverPending() // after the stream context is gone
	defer s.plugin.streamClosed()
	defer delete(vm.streams, s.id)
	if !s.created {
		s.onCreate()
	}
	s.info.complete = vm.now()
	s.accessLogPhase = true
	if !vm.failed && vm.fns.log != nil {
		vm.stack[0] = uint64(s.id)
		s.run(vm.fns.log, exportLog)
	}
	s.accessLogPhase = false
	if !vm.failed && vm.fns.done != nil {
		vm.stack[0] = uint64(s.id)
		s.run(vm.fns.done, exportDone)
	}
	if !vm.failed && vm.fns.delete != nil {
		vm.stack[0] = uint64(s.id)
		s.run(vm.fns.delete, exportDelete)
	}
	return nil
}

// Request is one request for VM.Do.
type Request struct {
	Headers Headers
	Body    []byte
	// Connection, when set, replaces PluginConfig.Connection for this request.
	Connection *Connection
	// Route, when set, replaces PluginConfig.Route for this request.
	Route *Route
}

// Outcome is what Envoy would do with a request.
type Outcome struct {
	// Upstream is non-nil when Envoy would send the request upstream: the forwarded headers.
	Upstream *Headers
	// UpstreamBody is the forwarded body.
	UpstreamBody []byte
	// LocalReply is non-nil when the request was answered locally.
	LocalReply *LocalReply
	// Paused reports that the module paused the request without answering it:
	// Envoy would hold it until the module resumes it or the stream times out.
	Paused bool
	// Reset reports that the module closed the stream (proxy_close_stream):
	// Envoy resets it and sends nothing upstream.
	Reset bool
}

// Do sends one request through a new stream of the VM's own plugin (headers,
// then the body if any) and closes the stream.
func (vm *VM) Do(ctx context.Context, req Request) (Outcome, error) { return vm.plugin.Do(ctx, req) }

// Do sends one request through a new stream of the plugin and closes the stream.
func (p *Plugin) Do(ctx context.Context, req Request) (Outcome, error) {
	if p.removed {
		return Outcome{}, ErrPluginRemoved
	}
	s := p.NewStream(ctx)
	if req.Connection != nil {
		s.SetConnection(*req.Connection)
	}
	if req.Route != nil {
		s.SetRoute(req.Route)
	}
	r, err := s.RequestHeaders(req.Headers, len(req.Body) == 0)
	if err != nil {
		return Outcome{}, err
	}
	if r.Continue && len(req.Body) > 0 {
		if r, err = s.RequestBody(req.Body, true); err != nil {
			return Outcome{}, err
		}
	}
	out := Outcome{LocalReply: r.LocalReply, Reset: r.Reset}
	switch {
	case r.LocalReply != nil, r.Reset:
	case r.Continue:
		h := s.req.snapshot()
		out.Upstream, out.UpstreamBody = &h, s.upstream
	default:
		out.Paused = true
	}
	return out, s.Close()
}

func boolWord(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// replaceAllEmptySpace is Envoy's StringUtil::replaceAllEmptySpace: each of
// the bytes ' ', \t, \n, \v, \f, \r becomes '_'; every other byte stays as it
// is, invalid UTF-8 included.
func replaceAllEmptySpace(s string) string {
	b := []byte(s)
	for i, c := range b {
		if strings.IndexByte(" \t\n\v\f\r", c) >= 0 {
			b[i] = '_'
		}
	}
	return string(b)
}
