package hostsim

import (
	"strconv"
	"strings"
)

// noteRequestKind is FilterManager::requestHeadersInitialized
// (source/common/http/filter_manager.h): whether a local reply takes the gRPC
// or the HEAD form is decided once, on the request headers as the client sent
// them, before any filter ran. A request is gRPC when it has a :path and its
// content-type is exactly application/grpc or starts with application/grpc+
// (Grpc::Common::isGrpcRequestHeaders, hasGrpcContentType); a HEAD request has
// the method HEAD, compared exactly.
func (s *Stream) noteRequestKind() {
	method, _ := s.req.get(":method")
	ct, _ := s.req.get("content-type")
	_, hasPath := s.req.get(":path")
	s.headRequest = method == "HEAD"
	s.grpcRequest = hasPath && (ct == "application/grpc" || strings.HasPrefix(ct, "application/grpc+"))
}

// prepareLocalReply builds the headers of a local reply as Envoy's
// Utility::prepareLocalReply does (source/common/http/utility.cc), and returns
// the body that follows them, nil when Utility::encodeLocalReply ends the
// stream on the headers:
//   - :status, then the reply's additional headers (the module's, added with
//     addCopy);
//   - a gRPC request gets a trailers-only reply: :status becomes 200 and
//     content-type application/grpc (both set in place), grpc-status is added
//     unless the headers have a non-empty one (the reply's gRPC status, else
//     httpToGrpcStatus of the code), grpc-message is the percent-encoded body
//     (not for a HEAD request), content-length goes, and no body follows;
//   - otherwise a body sets content-length (in place) and, when there is none,
//     content-type: text/plain; an empty body removes both;
//   - a HEAD request gets those headers and no body.
//
// Envoy's route response_headers_to_add and the HCM local_reply_config rewrite
// run here too; hostsim models neither.
func (s *Stream) prepareLocalReply(r *LocalReply) (headerMap, []byte) {
	h := newHeaderMap(MapResponseHeaders)
	h.add(":status", strconv.Itoa(r.Status))
	for _, f := range r.Headers {
		h.add(f.Name, f.Value)
	}
	if s.grpcRequest {
		h.set(":status", "200")
		h.set("content-type", "application/grpc")
		if v, _ := h.get("grpc-status"); v == "" {
			g := int64(r.GrpcStatus)
			if g < 0 {
				g = httpToGrpcStatus(r.Status)
			}
			h.set("grpc-status", strconv.FormatInt(g, 10))
		}
		if len(r.Body) > 0 && !s.headRequest {
			h.set("grpc-message", percentEncode(r.Body))
		}
		h.remove("content-length")
		return h, nil
	}
	if len(r.Body) == 0 {
		h.remove("content-length")
		h.remove("content-type")
		return h, nil
	}
	h.set("content-length", strconv.Itoa(len(r.Body)))
	if _, found := h.get("content-type"); !found {
		h.add("content-type", "text/plain")
	}
	if s.headRequest {
		return h, nil
	}
	return h, r.Body
}

// percentEncode is Http::Utility::PercentEncoding::encode with its default
// reserved set "%" (source/common/http/utility.cc), the grpc-message encoding:
// a byte below ' ', from '~' up, or '%' becomes %XX in uppercase hex. Envoy
// compares a signed char, so every byte from 0x80 up is encoded too.
func percentEncode(b []byte) string {
	const hexDigits = "0123456789ABCDEF"
	var out strings.Builder
	for _, c := range b {
		if c < ' ' || c >= '~' || c == '%' {
			out.WriteByte('%')
			out.WriteByte(hexDigits[c>>4])
			out.WriteByte(hexDigits[c&0xf])
			continue
		}
		out.WriteByte(c)
	}
	return out.String()
}

// chargeStats is the response code part of ConnectionManagerImpl's
// ActiveStream::chargeStats (source/common/http/conn_manager_impl.cc): when
// response headers leave for the client, the stream info takes their :status,
// so a gRPC local reply is logged as 200.
func (s *Stream) chargeStats(h Headers) {
	v, _ := h.Get(":status")
	if code, err := strconv.Atoi(v); err == nil {
		s.info.responseCode = code
	}
}
