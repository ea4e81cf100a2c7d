package hostsim

import (
	"encoding/binary"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Properties: proxy_get_property and proxy_set_property as Envoy resolves them
// (source/extensions/common/wasm/context.cc Context::getProperty, findValue,
// setProperty and serializeValue; the attributes themselves come from
// source/extensions/filters/common/expr/evaluator.cc StreamActivation::FindValue
// and context.cc in the same directory).
//
// A path is its segments joined by NUL ("request\x00path"). The first segment
// is looked up in this order: the CEL activation (request, response,
// connection, upstream, source, destination, metadata, filter_state, xds), then
// plugin_name, plugin_root_id, plugin_vm_id and connection_id, then the filter
// state the stream set under "wasm.<segment>". Every later segment selects a
// field of a map or message; a field of anything else is NotFound.
//
// Values reach the module as serializeValue encodes them: strings and bytes
// raw, int64 and uint64 as 8 bytes little-endian, bool as 1 byte, timestamps
// and durations as int64 nanoseconds, messages in protobuf wire format, header
// maps as pairs (proxy_get_header_map_pairs' encoding). Attribute maps whose
// keys Envoy cannot list (request, response, connection...) give
// SerializationFailure when asked for whole.

// Node is the Envoy node of the bootstrap configuration (xds.node).
type Node struct {
	ID, Cluster string
}

// Connection is the downstream connection a stream arrives on.
type Connection struct {
	// ID is connection.id and connection_id.
	ID uint64
	// Source and Destination are the remote (client) and local (listener)
	// addresses, "ip:port" or "[ipv6]:port": source.address, source.port,
	// destination.address, destination.port.
	Source, Destination string
	// Protocol is request.protocol: "HTTP/1.0", "HTTP/1.1", "HTTP/2" or
	// "HTTP/3"; empty means none (NotFound).
	Protocol string
	// ServerName is the TLS SNI (connection.requested_server_name).
	ServerName string
	// TLSVersion is connection.tls_version, such as "TLSv1.3"; empty means a
	// plaintext connection, where TLS attributes are NotFound.
	TLSVersion string
	// MTLS reports that the client presented a certificate (connection.mtls);
	// it counts only with TLSVersion set.
	MTLS bool
	// Certificates are the certificates of a TLS connection (nil: none known);
	// ignored without TLSVersion.
	Certificates *Certificates
	// TerminationDetails is connection.termination_details (set when a
	// network filter closed the connection); empty means none (NotFound).
	TerminationDetails string
	// TransportFailureReason is connection.transport_failure_reason (a failed
	// TLS handshake, say); empty means none (NotFound).
	TransportFailureReason string
}

// Certificates are what Envoy's Ssl::ConnectionInfo reports about the two ends
// of a TLS connection: the subjects as RFC 2253 strings, the SANs in
// certificate order (properties show only the first, as Envoy does) and the
// peer certificate's SHA-256 digest in lowercase hex.
type Certificates struct {
	SubjectLocal, SubjectPeer string
	URISANsLocal, URISANsPeer []string
	DNSSANsLocal, DNSSANsPeer []string
	SHA256PeerDigest          string
}

// Upstream is what Envoy's StreamInfo upstreamInfo() knows about the upstream
// connection a request went out on, readable as upstream.* once the response
// headers came from upstream.
type Upstream struct {
	// LocalAddress is upstream.local_address ("ip:port"); empty: NotFound.
	LocalAddress string
	// TransportFailureReason is upstream.transport_failure_reason (empty is
	// returned as empty, as Envoy does).
	TransportFailureReason string
	// TLSVersion is upstream.tls_version; empty means plaintext, where the TLS
	// attributes are NotFound.
	TLSVersion   string
	Certificates *Certificates
}

// DefaultConnection is the connection of streams when neither
// PluginConfig.Connection nor Request.Connection says otherwise: a plaintext
// HTTP/1.1 connection from 127.0.0.1:40000 to a listener on 127.0.0.1:10000.
var DefaultConnection = Connection{ID: 1, Source: "127.0.0.1:40000", Destination: "127.0.0.1:10000",
	Protocol: "HTTP/1.1"}

// Route is what Envoy's route table matched for a stream. Envoy resolves it
// before the filter chain runs (conn_manager_impl.cc refreshCachedRoute), so
// xds.route_name, xds.virtual_host_name and xds.cluster_name are readable from
// the first callback; with no Route they are NotFound.
type Route struct {
	Name, VirtualHost, Cluster string
	// UpstreamHost is the address ("ip:port") of the upstream host the request
	// went to: upstream.address and upstream.port, readable once the response
	// headers came from upstream (the router records the host when its
	// connection is ready).
	UpstreamHost string
	// Upstream is the rest of what upstream.* shows (nil: only the host).
	Upstream *Upstream
}

// streamInfo is the part of Envoy's StreamInfo that properties read and that
// the headers and bodies do not carry.
type streamInfo struct {
	conn  Connection
	route *Route
	start time.Time // request.time
	// complete is when the stream ended (request.duration), zero before.
	complete       time.Time
	bytesReceived  uint64 // request body bytes from downstream so far
	bytesSent      uint64 // response body bytes that left the filter
	responseCode   int    // 0: none yet
	responseDetail string
	upstreamSeen   bool // response headers came from upstream
	// filterState holds what proxy_set_property stored, by filter-state key
	// ("wasm." + path, as Envoy's CelStateKeyPrefix).
	filterState map[string][]byte
}

const (
	celStateKeyPrefix = "wasm."
	viaUpstream       = "via_upstream" // StreamInfo::ResponseCodeDetails ViaUpstream
)

// initStreamInfo fills a new stream's info from the plugin configuration.
func (s *Stream) initStreamInfo() {
	vm := s.vm
	s.info = streamInfo{conn: vm.cfg.Connection, route: vm.cfg.Route, start: vm.now()}
	if s.info.conn == (Connection{}) {
		s.info.conn = DefaultConnection
	}
}

// SetConnection sets the downstream connection of the stream; call it before
// the first callback.
func (s *Stream) SetConnection(c Connection) { s.info.conn = c }

// SetRoute sets the route the stream matched (nil: none); call it before the
// first callback.
func (s *Stream) SetRoute(r *Route) { s.info.route = r }

// noteResponse records the response code as Envoy's StreamInfo does: the
// router sets it (details "via_upstream") when upstream headers arrive, a
// local reply when it is sent. The first one wins, as a local reply ends the
// stream.
func (s *Stream) noteResponse(code int, details string, upstream bool) {
	if s.info.responseCode != 0 {
		return
	}
	s.info.responseCode, s.info.responseDetail, s.info.upstreamSeen = code, details, upstream
}

// noteUpstreamResponse records the code of response headers that came from
// upstream (Stream.ResponseHeaders).
func (s *Stream) noteUpstreamResponse() {
	v, _ := s.resp.get(":status")
	if code, err := strconv.Atoi(v); err == nil {
		s.noteResponse(code, viaUpstream, true)
	}
}

// bodyArrived counts request bytes as Envoy's StreamInfo::bytesReceived does:
// when they arrive, before the filter sees them.
func (s *Stream) bodyArrived(resp bool, chunk []byte) {
	if !resp {
		s.info.bytesReceived += uint64(len(chunk))
	}
}

// bodyLeft counts response bytes as StreamInfo::bytesSent does: when they
// leave the filter chain for the client.
func (s *Stream) bodyLeft(resp bool, b []byte) {
	if resp {
		s.info.bytesSent += uint64(len(b))
	}
}

// property is a CEL value as serializeValue sees it: raw is its serialised
// form; field, when set, selects the next path segment of a map or message;
// unlisted marks a map Envoy cannot serialise whole (its ListKeys is
// unimplemented).
type property struct {
	raw      []byte
	field    func(name string) (property, bool)
	unlisted bool
}

func stringProp(v string) (property, bool) { return property{raw: []byte(v)}, true }

func int64Prop(v int64) (property, bool) {
	return property{raw: binary.LittleEndian.AppendUint64(nil, uint64(v))}, true
}

func uint64Prop(v uint64) (property, bool) {
	return property{raw: binary.LittleEndian.AppendUint64(nil, v)}, true
}

func boolProp(v bool) (property, bool) {
	if v {
		return property{raw: []byte{1}}, true
	}
	return property{raw: []byte{0}}, true
}

func attributes(field func(name string) (property, bool)) (property, bool) {
	return property{field: field, unlisted: true}, true
}

// getProperty is Context::getProperty: the status and, when OK, the bytes.
func (vm *VM) getProperty(path string) ([]byte, Status) {
	var v property
	first := true
	for start := 0; start < len(path); {
		end := strings.IndexByte(path[start:], 0)
		if end < 0 {
			end = len(path)
		} else {
			end += start
		}
		part := path[start:end]
		start = end + 1
		var found bool
		switch {
		case first:
			v, found = vm.topLevelProperty(part)
			first = false
		case v.field != nil:
			v, found = v.field(part)
		}
		if !found {
			return nil, StatusNotFound
		}
	}
	// An empty path leaves Envoy with a null value, which it cannot serialise.
	if first || v.unlisted {
		return nil, StatusSerializationFailure
	}
	return v.raw, StatusOK
}

// topLevelProperty is Context::findValue.
func (vm *VM) topLevelProperty(name string) (property, bool) {
	c := vm.target()
	// The XDS attributes exist in every context; the others need a stream.
	if name == "xds" {
		return attributes(func(f string) (property, bool) { return vm.xdsProperty(c, f) })
	}
	if c != nil {
		switch name {
		case "request":
			return attributes(c.requestProperty)
		case "response":
			return attributes(c.responseProperty)
		case "connection":
			return attributes(c.connectionProperty)
		case "upstream":
			return attributes(c.upstreamProperty)
		case "source":
			return attributes(func(f string) (property, bool) { return peerProperty(c.info.conn.Source, f) })
		case "destination":
			return attributes(func(f string) (property, bool) { return peerProperty(c.info.conn.Destination, f) })
		case "metadata":
			return emptyMetadata()
		case "filter_state":
			return attributes(func(key string) (property, bool) {
				v, found := c.info.filterState[key]
				return property{raw: v}, found
			})
		}
	}
	switch name {
	case "plugin_name":
		return stringProp(vm.targetPlugin().cfg.Name)
	case "plugin_root_id":
		return stringProp(vm.targetPlugin().cfg.RootID)
	case "plugin_vm_id":
		return stringProp(vm.cfg.VMID)
	case "connection_id":
		if c != nil {
			return uint64Prop(c.info.conn.ID)
		}
		return property{}, false
	}
	if c != nil {
		// The default CelState prototype is bytes: the value comes back as set.
		v, found := c.info.filterState[celStateKeyPrefix+name]
		return property{raw: v}, found
	}
	return property{}, false
}

// propertyHeaders is the header map the CEL activation sees: the one the
// module may read now (Context::findValue uses request_headers_ or, while
// logging, the access log's).
func (s *Stream) propertyHeaders(response bool) *headerMap {
	switch {
	case !response && (s.reqVisible || s.accessLogPhase):
		return &s.req
	case response && (s.respVisible || s.accessLogPhase && s.hasResp):
		return &s.resp
	}
	return nil
}

// requestProperty is expr/context.cc RequestLookupValues.
func (s *Stream) requestProperty(name string) (property, bool) {
	h := s.propertyHeaders(false)
	header := func(key string) (property, bool) {
		if h == nil {
			return property{}, false
		}
		if v, found := h.get(key); found {
			return stringProp(v)
		}
		return property{}, false
	}
	path := func() (string, bool) {
		if h == nil {
			return "", false
		}
		p, _ := h.get(":path")
		return p, true
	}
	switch name {
	case "headers":
		return headersProperty(h)
	case "headers_bytes":
		return int64Prop(int64(headerBytes(h)))
	case "time":
		return int64Prop(s.info.start.UnixNano())
	case "size":
		if h != nil {
			if cl, found := h.get("content-length"); found {
				if n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64); err == nil {
					return int64Prop(n)
				}
				return property{}, false
			}
		}
		return int64Prop(int64(s.info.bytesReceived))
	case "total_size":
		return int64Prop(int64(s.info.bytesReceived) + int64(headerBytes(h)))
	case "duration":
		if s.info.complete.IsZero() {
			return property{}, false
		}
		return int64Prop(int64(s.info.complete.Sub(s.info.start)))
	case "protocol":
		if s.info.conn.Protocol == "" {
			return property{}, false
		}
		return stringProp(s.info.conn.Protocol)
	case "path":
		return header(":path")
	case "url_path":
		p, found := path()
		if !found {
			return property{}, false
		}
		p, _, _ = strings.Cut(p, "?")
		return stringProp(p)
	case "query":
		p, found := path()
		if !found {
			return property{}, false
		}
		_, q, _ := strings.Cut(p, "?")
		q, _, _ = strings.Cut(q, "#")
		return stringProp(q)
	case "host":
		return header(":authority")
	case "scheme":
		return header(":scheme")
	case "method":
		return header(":method")
	case "referer":
		return header("referer")
	case "id":
		return header("x-request-id")
	case "useragent":
		return header("user-agent")
	}
	return property{}, false
}

// responseProperty is expr/context.cc ResponseLookupValues.
func (s *Stream) responseProperty(name string) (property, bool) {
	h := s.propertyHeaders(true)
	switch name {
	case "code":
		if s.info.responseCode == 0 {
			return property{}, false
		}
		return int64Prop(int64(s.info.responseCode))
	case "code_details":
		if s.info.responseCode == 0 && s.info.responseDetail == "" {
			return property{}, false
		}
		return stringProp(s.info.responseDetail)
	case "size":
		return int64Prop(int64(s.info.bytesSent))
	case "total_size":
		return int64Prop(int64(s.info.bytesSent) + int64(headerBytes(h)))
	case "headers":
		return headersProperty(h)
	case "headers_bytes":
		return int64Prop(int64(headerBytes(h)))
	case "trailers":
		return headersProperty(nil) // hostsim has no trailers
	case "flags":
		return int64Prop(0) // hostsim sets no response flags
	case "grpc_status":
		return s.grpcStatusProperty(h)
	}
	return property{}, false
}

// grpcStatusProperty is response.grpc_status: Envoy's Grpc::Common::getGrpcStatus
// over the response trailers, then the response headers (empty maps when the
// filter does not hold them), then the response code mapped by
// Grpc::Utility::httpToGrpcStatus (source/common/grpc/common.cc, status.cc).
func (s *Stream) grpcStatusProperty(h *headerMap) (property, bool) {
	var trailers *headerMap
	if s.trailersVisible[1] || s.accessLogPhase {
		trailers = s.trailers[1]
	}
	for _, m := range []*headerMap{trailers, h} {
		if m == nil {
			continue
		}
		if v, found := m.get("grpc-status"); found {
			// An unparsable or user-defined (above 16) status is InvalidCode, -1.
			code, err := strconv.ParseUint(v, 10, 64)
			if err != nil || code > grpcMaximumKnown {
				return int64Prop(-1)
			}
			return int64Prop(int64(code))
		}
	}
	if s.info.responseCode == 0 {
		return property{}, false
	}
	return int64Prop(httpToGrpcStatus(s.info.responseCode))
}

const grpcMaximumKnown = 16

// httpToGrpcStatus is Grpc::Utility::httpToGrpcStatus, after the gRPC spec's
// HTTP to gRPC status mapping.
func httpToGrpcStatus(code int) int64 {
	switch code {
	case 400:
		return 13 // Internal
	case 401:
		return 16 // Unauthenticated
	case 403:
		return 7 // PermissionDenied
	case 404:
		return 12 // Unimplemented
	case 429, 502, 503, 504:
		return 14 // Unavailable
	}
	return 2 // Unknown
}

// connectionProperty is expr/context.cc ConnectionWrapper, then the TLS
// attributes of a TLS connection (extractSslInfo).
func (s *Stream) connectionProperty(name string) (property, bool) {
	conn := s.info.conn
	switch name {
	case "mtls":
		return boolProp(conn.TLSVersion != "" && conn.MTLS)
	case "requested_server_name":
		return stringProp(conn.ServerName)
	case "id":
		return uint64Prop(conn.ID)
	case "termination_details":
		return optionalString(conn.TerminationDetails)
	case "transport_failure_reason":
		return optionalString(conn.TransportFailureReason)
	}
	if conn.TLSVersion == "" {
		return property{}, false
	}
	return tlsProperty(conn.TLSVersion, conn.Certificates, name)
}

// upstreamProperty is expr/context.cc UpstreamWrapper: nothing before the
// response headers came from upstream (hostsim's stand-in for upstreamInfo()
// being set), the host's address and port, the local address, the transport
// failure reason, then the TLS attributes of a TLS upstream connection.
func (s *Stream) upstreamProperty(name string) (property, bool) {
	r := s.info.route
	if r == nil || !s.info.upstreamSeen || r.UpstreamHost == "" && r.Upstream == nil {
		return property{}, false
	}
	switch name {
	case "address", "port":
		return peerProperty(r.UpstreamHost, name)
	}
	u := r.Upstream
	if u == nil {
		u = &Upstream{}
	}
	switch name {
	case "local_address":
		return optionalString(u.LocalAddress)
	case "transport_failure_reason":
		return stringProp(u.TransportFailureReason)
	}
	if u.TLSVersion == "" {
		return property{}, false
	}
	return tlsProperty(u.TLSVersion, u.Certificates, name)
}

// tlsProperty is expr/context.cc extractSslInfo: the version and subjects as
// they are (empty too), the first SAN of each list and the digest only when
// there is one.
func tlsProperty(version string, c *Certificates, name string) (property, bool) {
	if c == nil {
		c = &Certificates{}
	}
	first := func(sans []string) (property, bool) {
		if len(sans) == 0 {
			return property{}, false
		}
		return stringProp(sans[0])
	}
	switch name {
	case "tls_version":
		return stringProp(version)
	case "subject_local_certificate":
		return stringProp(c.SubjectLocal)
	case "subject_peer_certificate":
		return stringProp(c.SubjectPeer)
	case "uri_san_local_certificate":
		return first(c.URISANsLocal)
	case "uri_san_peer_certificate":
		return first(c.URISANsPeer)
	case "dns_san_local_certificate":
		return first(c.DNSSANsLocal)
	case "dns_san_peer_certificate":
		return first(c.DNSSANsPeer)
	case "sha256_peer_certificate_digest":
		return optionalString(c.SHA256PeerDigest)
	}
	return property{}, false
}

// optionalString is an attribute Envoy returns only when set.
func optionalString(v string) (property, bool) {
	if v == "" {
		return property{}, false
	}
	return stringProp(v)
}

// peerProperty is expr/context.cc PeerWrapper: the address as Envoy prints it
// and, for an IP address, the port.
func peerProperty(address, name string) (property, bool) {
	switch name {
	case "address":
		if address == "" {
			return property{}, false
		}
		return stringProp(address)
	case "port":
		_, port, err := net.SplitHostPort(address)
		if err != nil {
			return property{}, false
		}
		if n, err := strconv.ParseUint(port, 10, 16); err == nil {
			return int64Prop(int64(n))
		}
	}
	return property{}, false
}

// xdsProperty is expr/context.cc XDSLookupValues. Outside a stream (c == nil)
// only the node exists.
func (vm *VM) xdsProperty(c *Stream, name string) (property, bool) {
	if name == "node" {
		return vm.nodeProperty()
	}
	if c == nil {
		return property{}, false
	}
	r := c.info.route
	switch name {
	case "cluster_name":
		if r != nil && r.Cluster != "" {
			return stringProp(r.Cluster)
		}
	case "route_name":
		if r != nil {
			return stringProp(r.Name)
		}
	case "virtual_host_name":
		if r != nil {
			return stringProp(r.VirtualHost)
		}
	case "filter_chain_name":
		return stringProp("") // hostsim's listener has one unnamed filter chain
	}
	return property{}, false
}

// Field numbers of envoy.config.core.v3.Node.
const (
	nodeFieldID            = 1
	nodeFieldCluster       = 2
	nodeFieldUserAgentName = 6
)

// nodeUserAgentName is what Envoy puts in node.user_agent_name
// (source/common/local_info/local_info_impl.h).
const nodeUserAgentName = "envoy"

// nodeProperty is the node message: whole, its protobuf encoding; its string
// fields one by one.
func (vm *VM) nodeProperty() (property, bool) {
	n := vm.cfg.Node
	var raw []byte
	raw = appendProtoString(raw, nodeFieldID, n.ID)
	raw = appendProtoString(raw, nodeFieldCluster, n.Cluster)
	raw = appendProtoString(raw, nodeFieldUserAgentName, nodeUserAgentName)
	return property{raw: raw, field: func(f string) (property, bool) {
		switch f {
		case "id":
			return stringProp(n.ID)
		case "cluster":
			return stringProp(n.Cluster)
		case "user_agent_name":
			return stringProp(nodeUserAgentName)
		}
		return property{}, false
	}}, true
}

// emptyMetadata is the stream's dynamic metadata (envoy.config.core.v3.Metadata),
// always empty in hostsim: no bytes whole, and empty maps for its two fields.
func emptyMetadata() (property, bool) {
	return property{field: func(f string) (property, bool) {
		if f == "filter_metadata" || f == "typed_filter_metadata" {
			return headersProperty(nil)
		}
		return property{}, false
	}}, true
}

// appendProtoString appends a proto3 string field (omitted when empty).
func appendProtoString(b []byte, field int, v string) []byte {
	if v == "" {
		return b
	}
	b = binary.AppendUvarint(b, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func headerBytes(h *headerMap) uint32 {
	if h == nil {
		return 0
	}
	return h.byteSize()
}

// headersProperty is expr/context.h HeadersWrapper: one pair per header name
// with its values joined by "," (HeaderUtility::getAllOfHeaderAsString); a
// field is one header, by a valid name in any case. Envoy lists the names from
// a hash set, so their order there is unspecified; hostsim keeps the map's.
func headersProperty(h *headerMap) (property, bool) {
	var pairs []Header
	if h != nil {
		for _, e := range h.entries {
			if !slices.ContainsFunc(pairs, func(p Header) bool { return p.Name == e.Name }) {
				v, _ := allValues(h, e.Name)
				pairs = append(pairs, Header{Name: e.Name, Value: v})
			}
		}
	}
	return property{raw: marshalPairs(nil, pairs), field: func(name string) (property, bool) {
		if h == nil || !headerNameIsValid(name) {
			return property{}, false
		}
		v, found := allValues(h, name)
		if !found {
			return property{}, false
		}
		return stringProp(v)
	}}, true
}

// allValues is HeaderUtility::getAllOfHeaderAsString with its default ",".
func allValues(h *headerMap, name string) (string, bool) {
	k := h.key(name)
	var vs []string
	for _, e := range h.entries {
		if e.Name == k {
			vs = append(vs, e.Value)
		}
	}
	return strings.Join(vs, ","), len(vs) > 0
}

// headerNameIsValid is HeaderUtility::headerNameIsValid: an RFC 9110 token,
// after the ':' of a pseudo-header.
func headerNameIsValid(name string) bool {
	if strings.HasPrefix(name, ":") {
		name = name[1:]
	}
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func (vm *VM) proxyGetProperty(s []uint64) {
	const fn = "proxy_get_property"
	path, okPath := vm.readString(uint32(s[0]), uint32(s[1]))
	if !okPath {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "path is outside memory")
		return
	}
	v, st := vm.getProperty(path)
	switch st {
	case StatusOK:
	case StatusNotFound:
		vm.misuse(s, fn, st, "property %q is not set or not modelled by hostsim", strings.ReplaceAll(path, "\x00", "."))
		return
	default:
		vm.misuse(s, fn, st, "property %q cannot be serialised whole", strings.ReplaceAll(path, "\x00", "."))
		return
	}
	if !vm.copyOut(v, uint32(s[2]), uint32(s[3])) {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "return pointers are outside memory or malloc failed")
		return
	}
	ok(s)
}

// proxySetProperty is Context::setProperty: the value goes into the stream's
// filter state under "wasm." + path, readable back by its first path segment
// (or as filter_state.wasm.<path>); outside a stream there is no stream info.
func (vm *VM) proxySetProperty(s []uint64) {
	const fn = "proxy_set_property"
	path, okPath := vm.readString(uint32(s[0]), uint32(s[1]))
	value, okValue := vm.read(uint32(s[2]), uint32(s[3]))
	if !okPath || !okValue {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "path or value is outside memory")
		return
	}
	c := vm.target()
	if c == nil {
		vm.misuse(s, fn, StatusNotFound, "no stream info outside a stream")
		return
	}
	if c.info.filterState == nil {
		c.info.filterState = map[string][]byte{}
	}
	c.info.filterState[celStateKeyPrefix+path] = append([]byte(nil), value...)
	ok(s)
}
