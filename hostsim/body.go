package hostsim

// Bodies and trailers as Envoy's Wasm filter and filter manager handle them:
// Envoy source/extensions/common/wasm/context.cc (decodeData, encodeData,
// decodeTrailers, encodeTrailers, getMap, getBuffer, Buffer::copyFrom) and
// source/common/http/filter_manager.cc (buffering for a stopped filter, the
// buffer limit, local replies).

// defaultBufferLimit is Envoy's default per_connection_buffer_limit_bytes.
const defaultBufferLimit = 1 << 20

// Local replies of Envoy's filter manager when a buffered body outgrows the
// limit (ActiveStreamDecoderFilter::requestDataTooLarge,
// ActiveStreamEncoderFilter::responseDataTooLarge).
const (
	RequestPayloadTooLargeDetails  = "request_payload_too_large"
	ResponsePayloadTooLargeDetails = "response_payload_too_large"
)

const headersStopAllIterationAndBuffer = 3

// direction is the index of a stream direction in the per-direction fields.
func direction(resp bool) int {
	if resp {
		return 1
	}
	return 0
}

func (s *Stream) bufferLimit() int {
	if l := s.plugin.cfg.BufferLimit; l > 0 {
		return l
	}
	return defaultBufferLimit
}

// holdHeaders records how a headers callback's status holds the body of its
// direction: StopAllIterationAndBuffer and ...AndWatermark make the filter
// manager buffer body and trailers without calling the filter (handleDataIfStopAll)
// until the stream continues.
func (s *Stream) holdHeaders(resp bool, status uint32) {
	i := direction(resp)
	s.held[i] = 0
	if status == headersStopAllIterationAndBuffer || status == headersStopAllIterationAndWatermark {
		s.held[i] = uint8(status)
		s.streaming[i] = status == headersStopAllIterationAndWatermark // handleDataIfStopAll
	}
}

// overHighWatermark reports flow control on direction i: the filter manager
// buffers a body held for a watermark status in a WatermarkBuffer whose high
// watermark is the buffer limit; past it requestDataTooLarge /
// responseDataTooLarge see decoder/encoder_filters_streaming_ and call
// onDecoderFilterAboveWriteBufferHighWatermark / onEncoderFilterAbove...,
// which read-disable the downstream connection or the upstream stream
// (filter_manager.cc, conn_manager_impl.cc, router.cc) rather than answer 413
// or 500. Reading resumes once the buffer drains below half the limit, which
// here is when the body leaves.
func (s *Stream) overHighWatermark(i int) bool {
	return s.streaming[i] && len(s.parked[i]) > s.bufferLimit()
}

// skipBody reports whether Envoy would not call the module with this chunk and
// what the caller gets instead: after the module reset the stream, after a local
// reply answered the request or a direct 500 replaced the response, or while a headers StopAll holds the body (then the
// chunk waits in the filter manager's buffer, which has the limit only for
// StopAllIterationAndBuffer).
func (s *Stream) skipBody(resp bool, chunk []byte) (Result, bool) {
	i := direction(resp)
	switch {
	case s.reset:
		return s.result(Result{}), true
	case !resp && s.localReply != nil, resp && s.respReplaced:
		return s.result(Result{}), true
	case s.held[i] != 0:
		s.parked[i] = append(s.parked[i], chunk...)
		if s.held[i] == headersStopAllIterationAndBuffer && len(s.parked[i]) > s.bufferLimit() {
			s.payloadTooLarge(resp)
		}
		r := s.result(Result{})
		r.Backpressure = s.overHighWatermark(i)
		return r, true
	}
	return Result{}, false
}

// payloadTooLarge is the filter manager's answer to a buffer over the limit: a
// request gets 413 through the filter chain (the module sees it in its response
// callbacks); a response whose headers already went downstream is reset,
// otherwise replaced by a 500 sent directly, not through the filters
// (FilterManager::sendLocalReply, sendDirectLocalReply).
func (s *Stream) payloadTooLarge(resp bool) {
	if !resp {
		s.setLocalReply(&LocalReply{Status: 413, Body: []byte("Payload Too Large"),
			Details: RequestPayloadTooLargeDetails, GrpcStatus: -1})
		return
	}
	if s.respSent {
		s.reset = true
		return
	}
	if s.localReply == nil {
		s.localReply = &LocalReply{Status: 500, Body: []byte("Internal Server Error"),
			Details: ResponsePayloadTooLargeDetails, GrpcStatus: -1}
		s.sendPreparedReply(s.localReply) // stream.go
	}
	s.replyEncoded, s.respReplaced = true, true
}

// RequestTrailers runs proxy_on_request_trailers with h as the request trailer
// map (map type 1), readable and writable until the callback continues.
func (s *Stream) RequestTrailers(h Headers) (Result, error) { return s.trailersCallback(false, h) }

// ResponseTrailers runs proxy_on_response_trailers with h as the response
// trailer map (map type 3).
func (s *Stream) ResponseTrailers(h Headers) (Result, error) { return s.trailersCallback(true, h) }

func (s *Stream) trailersCallback(resp bool, h Headers) (Result, error) {
	if s.closed {
		return Result{}, ErrStreamClosed
	}
	i, t := direction(resp), MapRequestTrailers
	name := exportRequestTrailers
	if resp {
		t, name = MapResponseTrailers, exportResponseTrailers
	}
	fn := s.vm.mod.ExportedFunction(name)
	m := newHeaderMap(t)
	for _, f := range h {
		m.add(f.Name, f.Value)
	}
	s.trailers[i] = &m
	// Context::encodeTrailers skips the VM once the fail-closed reply was sent.
	if s.mode == streamSkipped || !s.created || resp && s.failureReplySent {
		return Result{Continue: true, Trailers: m.snapshot(), LocalReply: s.localReply}, nil
	}
	if r, skipped := s.skipBody(resp, nil); skipped {
		r.Trailers = m.snapshot()
		return r, nil
	}
	var r Result
	vm := s.vm
	if failed, cont := s.checkFail(); failed {
		r = s.result(Result{Continue: cont})
	} else if fn == nil {
		r = s.result(Result{Continue: true})
	} else {
		s.trailersVisible[i] = true
		vm.stack[0], vm.stack[1] = uint64(s.id), uint64(len(m.entries))
		raw, stop := s.run(fn, name)
		if failed, cont := s.checkFail(); failed {
			r = s.result(Result{Action: Action(raw), Continue: cont})
		} else {
			// cpp-host convertVmCallResultToFilterTrailersStatus: anything but 0 stops.
			r = s.result(Result{Action: Action(raw), Continue: uint32(raw) == 0 && !stop})
		}
	}
	r, own := s.afterCallback(r), s.continueRequested[i]
	s.notePause(resp, pausedInTrailers, r)
	r = s.continueOwnCallback(resp, pausedInTrailers, own, r)
	if r.Continue {
		s.trailersVisible[i] = false
		// A body the module buffered leaves before the trailers.
		r.Body = s.forwardBody(resp)
	}
	r.Trailers = s.trailers[i].snapshot()
	return r, nil
}

// forwardBody sends on what the filter manager and the module hold of one
// direction's body, as Envoy does when the filter continues.
func (s *Stream) forwardBody(resp bool) []byte {
	i := direction(resp)
	out := append(append([]byte(nil), s.parked[i]...), s.bodies[i]...)
	s.bodyLeft(resp, out)
	if !resp {
		s.upstream = append(s.upstream, out...)
	}
	s.parked[i], s.bodies[i], s.buffering[i] = nil, s.bodies[i][:0], false
	s.trailersVisible[i] = false
	return out
}

// trailerMap is Envoy's getMap/getConstMap for trailers: the map while its
// callback runs; in a body callback at end of stream, mutable asks create an
// empty map the module may fill (addDecodedTrailers/addEncodedTrailers), which
// then stays until that body continues; in the access log phase the response
// trailers only.
func (s *Stream) trailerMap(t MapType, mutable bool) *headerMap {
	i := direction(t == MapResponseTrailers)
	switch {
	case s.accessLogPhase:
		if mutable || i == 0 {
			return nil
		}
		return s.trailers[1]
	case s.trailersVisible[i]:
		return s.trailers[i]
	case mutable && s.visibleBody == i && s.bodyEOS:
		m := newHeaderMap(t)
		s.trailers[i], s.trailersVisible[i] = &m, true
		return &m
	}
	return nil
}

const dataStopIterationAndWatermark = 2
