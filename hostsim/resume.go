package hostsim

// Resuming a paused stream later, as Envoy does: Context::continueStream
// (source/extensions/common/wasm/context.cc) defers decoder_callbacks_->
// continueDecoding() / encoder_callbacks_->continueEncoding() until the VM call
// returns; the filter manager (source/common/http/filter_manager.cc,
// ActiveStreamFilterBase::commonContinue) then forwards the held headers, hands
// data it buffered while the filter was stopped to the filter itself when the
// headers stopped with StopAll (iterate_from_current_filter_), else past it,
// and then the trailers.

// pausePhase is the callback a direction of a stream last stopped in.
type pausePhase uint8

const (
	notPaused pausePhase = iota
	pausedInHeaders
	pausedInBody
	pausedInTrailers
	// holdingBody: the headers left, but a headers StopAll still holds the
	// body and trailers (continueOwnCallback).
	holdingBody
)

// resumeState is a stream's pause bookkeeping, per direction.
type resumeState struct {
	paused  [2]pausePhase
	asked   [2]bool // proxy_continue_stream made from outside the stream's callbacks
	ended   [2]bool // end of stream seen in a body chunk held by a headers StopAll
	inCall  bool    // a public Stream call is running the stream's callbacks
	resumes []Resume
}

// Resume is what a proxy_continue_stream made after the pausing call returned
// (from an HTTP-call response, a tick, a queue notice, another stream's
// callback) released on one direction of a stream.
type Resume struct {
	// Response is the direction: false for the request, true for the response.
	Response bool
	// Result is what left the filter: Headers when the headers were held,
	// Body the body released (after the module's body callback ran on a body a
	// headers StopAll held), Trailers the trailers; Continue is false when a
	// callback run on the released data paused again (or answered it).
	Result Result
}

// Resumes lists the resumes of this stream in the order they happened. A
// continue made while the pausing call is still running (by a callback it
// delivered) is not one: that call's Result reports Continue instead.
func (s *Stream) Resumes() []Resume { return append([]Resume(nil), s.rs.resumes...) }

// notePause records how a public call left direction i: paused in phase, or not.
func (s *Stream) notePause(resp bool, phase pausePhase, r Result) {
	i := direction(resp)
	s.rs.asked[i] = false
	if r.Continue || r.LocalReply != nil || r.Reset {
		s.rs.paused[i] = notPaused
		return
	}
	s.rs.paused[i] = phase
}

// askResume is proxy_continue_stream on a paused stream outside its own
// callbacks: the resume runs once the VM call returns (addAfterVmCallAction).
func (s *Stream) askResume(resp bool) {
	if i := direction(resp); s.rs.paused[i] != notPaused && !s.rs.inCall && !s.rs.asked[i] {
		s.rs.asked[i] = true
		s.vm.async.resumes = append(s.vm.async.resumes, s)
	}
}

// resumeStreams runs the resumes the callbacks that ran asked for, in the
// order asked (Envoy runs after-VM-call actions in order).
func (vm *VM) resumeStreams() {
	for len(vm.async.resumes) > 0 {
		s := vm.async.resumes[0]
		vm.async.resumes = vm.async.resumes[1:]
		for i, resp := range []bool{false, true} {
			if s.rs.asked[i] {
				s.resume(resp)
			}
		}
	}
}

// resume is commonContinue for one direction.
func (s *Stream) resume(resp bool) {
	i := direction(resp)
	phase := s.rs.paused[i]
	s.rs.paused[i], s.rs.asked[i] = notPaused, false
	s.continueRequested = [2]bool{} // the continue that asked for this resume
	if s.closed || s.reset || s.localReply != nil || s.isFailed() {
		return
	}
	res := Result{Continue: true}
	if phase == holdingBody {
		s.held[i] = 0
		s.rs.resumes = append(s.rs.resumes, Resume{Response: resp, Result: s.releaseHeld(resp, res)})
		return
	}
	if phase == pausedInHeaders {
		stopAll := s.held[i] != 0
		s.held[i] = 0
		if resp {
			// The module keeps the response headers (continueStream forgets
			// only the request maps); what left is this snapshot.
			s.respSent = true
			res.Headers = s.resp.snapshot()
		} else {
			s.reqVisible = false
			res.Headers = s.req.snapshot()
		}
		if stopAll {
			res = s.releaseHeld(resp, res)
			s.rs.resumes = append(s.rs.resumes, Resume{Response: resp, Result: res})
			return
		}
	}
	// Paused in a body or trailers callback (or headers that let the body
	// through): what the module buffered leaves past it, then the trailers.
	res.Body = s.forwardBody(resp)
	if s.trailers[i] != nil {
		res.Trailers = s.trailers[i].snapshot()
	}
	s.rs.resumes = append(s.rs.resumes, Resume{Response: resp, Result: s.result(res)})
}

// releaseHeld hands what a headers StopAll held to the module: the buffered
// body as one chunk, end of stream only if the stream ended without trailers
// (doData(observedEndStream() && !had_trailers)), then the trailers, as
// Envoy's doData/doTrailers from the current filter.
func (s *Stream) releaseHeld(resp bool, res Result) Result {
	i := direction(resp)
	body, ended := s.parked[i], s.rs.ended[i]
	s.parked[i], s.rs.ended[i] = nil, false
	trailers := s.trailers[i]
	if len(body) > 0 || ended && trailers == nil {
		if !resp { // bodyCallback counts the chunk again
			s.info.bytesReceived -= uint64(len(body))
		}
		r, _ := s.bodyCallback(resp, body, ended && trailers == nil)
		res.Continue, res.LocalReply, res.Reset, res.Trailers = r.Continue, r.LocalReply, r.Reset, r.Trailers
		if r.Continue {
			res.Body = r.Body
		}
	}
	if trailers != nil && !res.Reset && (resp || res.LocalReply == nil) {
		r, _ := s.trailersCallback(resp, trailers.snapshot())
		res.Continue, res.LocalReply, res.Reset, res.Trailers = r.Continue, r.LocalReply, r.Reset, r.Trailers
		if r.Continue {
			res.Body = append(res.Body, r.Body...)
		}
	}
	return s.result(res)
}

// continueOwnCallback is a proxy_continue_stream a callback made for its own
// direction. Envoy defers continueDecoding/continueEncoding to after the VM
// call (context.cc continueStream, addAfterVmCallAction), but cpp-host runs
// those actions as the callback returns (DeferAfterCallActions in
// src/context.cc), before the filter manager has seen the callback's status.
// commonContinue (filter_manager.cc) then sends on what the filter manager
// holds, from the next filter on: the headers, or the buffered body and the
// trailers. A body chunk is in that buffer only when it joined a
// StopIterationAndBuffer buffer (Envoy context.cc decodeData adds it before the
// call), so own is false for any other body chunk. The status applied
// afterwards stops nothing that already left, but a headers StopAll leaves the
// filter stopped: the body and trailers wait, without calling the module, for
// another continue. After a Continue status nothing was held (debug builds of
// Envoy assert there; release builds run the later filters a second time).
func (s *Stream) continueOwnCallback(resp bool, phase pausePhase, own bool, r Result) Result {
	i := direction(resp)
	if !own || r.Continue || r.LocalReply != nil || r.Reset || s.isFailed() {
		return r
	}
	r.Continue = true
	s.rs.paused[i] = notPaused
	if phase == pausedInHeaders {
		if resp {
			s.respSent = true // response headers stay visible, as after a later continue
		} else {
			s.reqVisible = false
		}
		if s.held[i] != 0 {
			s.rs.paused[i] = holdingBody
		}
	}
	return r
}
