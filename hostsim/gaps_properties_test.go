package hostsim_test

import (
	"context"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// TLS attributes of the downstream connection and upstream.* as Envoy's
// filters/common/expr/context.cc (ConnectionWrapper, UpstreamWrapper,
// extractSslInfo) gives them: versions and subjects as strings (empty too),
// the first SAN of a list, the digest only when set; all of them NotFound on
// a plaintext connection.
func TestGapsConnectionAndUpstreamProperties(t *testing.T) {
	cfg := baseConfig
	cfg.Connection = hostsim.Connection{ID: 9, Source: "10.1.2.3:5555", Destination: "10.0.0.1:443",
		Protocol: "HTTP/2", ServerName: "api.example.test", TLSVersion: "TLSv1.3", MTLS: true,
		Certificates: &hostsim.Certificates{SubjectLocal: "CN=envoy", SubjectPeer: "CN=client,O=Test",
			URISANsPeer:  []string{"spiffe://test/client", "spiffe://test/other"},
			DNSSANsLocal: []string{"envoy.test"}, SHA256PeerDigest: "ab12"}}
	cfg.Route = &hostsim.Route{Cluster: "api", UpstreamHost: "10.0.0.2:8443", Upstream: &hostsim.Upstream{
		LocalAddress: "10.0.0.1:50000", TLSVersion: "TLSv1.2",
		Certificates: &hostsim.Certificates{SubjectPeer: "CN=upstream", DNSSANsPeer: []string{"api.upstream.test"},
			SHA256PeerDigest: "cd34"}}}
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	reqCases := []propCase{
		{"prop:connection/tls_version", 0, hexs("TLSv1.3")},
		{"prop:connection/mtls", 0, "01"},
		{"prop:connection/requested_server_name", 0, hexs("api.example.test")},
		{"prop:connection/subject_local_certificate", 0, hexs("CN=envoy")},
		{"prop:connection/subject_peer_certificate", 0, hexs("CN=client,O=Test")},
		{"prop:connection/uri_san_local_certificate", 1, ""}, // no SAN of that kind
		{"prop:connection/uri_san_peer_certificate", 0, hexs("spiffe://test/client")},
		{"prop:connection/dns_san_local_certificate", 0, hexs("envoy.test")},
		{"prop:connection/dns_san_peer_certificate", 1, ""},
		{"prop:connection/sha256_peer_certificate_digest", 0, hexs("ab12")},
		{"prop:connection/termination_details", 1, ""},
		{"prop:connection/transport_failure_reason", 1, ""},
		{"prop:upstream/address", 1, ""}, // nothing went upstream yet
		{"prop:upstream/tls_version", 1, ""},
		{"prop:upstream/transport_failure_reason", 1, ""},
		{"prop:response/grpc_status", 1, ""}, // no response yet
	}
	respCases := []propCase{
		{"prop:upstream/address", 0, hexs("10.0.0.2:8443")},
		{"prop:upstream/port", 0, i64(8443)},
		{"prop:upstream/local_address", 0, hexs("10.0.0.1:50000")},
		{"prop:upstream/transport_failure_reason", 0, ""}, // Envoy returns it even when empty
		{"prop:upstream/tls_version", 0, hexs("TLSv1.2")},
		{"prop:upstream/subject_peer_certificate", 0, hexs("CN=upstream")},
		{"prop:upstream/subject_local_certificate", 0, ""},
		{"prop:upstream/dns_san_peer_certificate", 0, hexs("api.upstream.test")},
		{"prop:upstream/uri_san_peer_certificate", 1, ""},
		{"prop:upstream/sha256_peer_certificate_digest", 0, hexs("cd34")},
		{"prop:upstream/request_attempt_count", 1, ""}, // not modelled
	}
	s := vm.NewStream(context.Background())
	if _, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", opsOf(reqCases)), true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResponseHeaders(hdrs(":status", "200", "x-resp-ops", opsOf(respCases)), true); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	assertLines(t, opLines(vm), append(linesOf(reqCases), linesOf(respCases)...))
}

func TestGapsPlaintextConnectionProperties(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	cases := []propCase{
		{"prop:connection/tls_version", 1, ""},
		{"prop:connection/subject_local_certificate", 1, ""},
		{"prop:connection/sha256_peer_certificate_digest", 1, ""},
		{"prop:connection/mtls", 0, "00"},
		{"prop:connection/termination_details", 0, hexs("rbac_access_denied_matched_policy[none]")},
		{"prop:connection/transport_failure_reason", 0, hexs("TLS_error:_no_shared_cipher")},
		{"prop:response/code", 0, i64(200)},
		{"prop:upstream/address", 1, ""}, // the route names no upstream host
	}
	conn := hostsim.DefaultConnection
	conn.TLSVersion, conn.MTLS = "", true // mtls needs TLS
	conn.TerminationDetails = "rbac_access_denied_matched_policy[none]"
	conn.TransportFailureReason = "TLS_error:_no_shared_cipher"
	s := vm.NewStream(context.Background())
	s.SetConnection(conn)
	s.SetRoute(&hostsim.Route{Cluster: "c"})
	if _, err := s.RequestHeaders(hdrs(":path", "/"), true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResponseHeaders(hdrs(":status", "200", "x-resp-ops", opsOf(cases)), true); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	assertLines(t, opLines(vm), linesOf(cases))
}

// response.grpc_status is Grpc::Common::getGrpcStatus: the grpc-status of the
// response trailers, else of the response headers (-1 when unparsable or above
// 16), else the response code mapped by Grpc::Utility::httpToGrpcStatus.
func TestGapsResponseGrpcStatus(t *testing.T) {
	tests := []struct {
		name     string
		headers  hostsim.Headers
		trailers hostsim.Headers
		hex      string
	}{
		{"header", hdrs(":status", "200", "grpc-status", "7"), nil, i64(7)},
		{"unparsable", hdrs(":status", "200", "grpc-status", "abc"), nil, i64(-1)},
		{"user defined", hdrs(":status", "200", "grpc-status", "17"), nil, i64(-1)},
		{"trailers first", hdrs(":status", "200", "grpc-status", "7"), hdrs("grpc-status", "0"), i64(0)},
		{"from 503", hdrs(":status", "503"), nil, i64(14)},
		{"from 401", hdrs(":status", "401"), nil, i64(16)},
		{"from 200", hdrs(":status", "200"), nil, i64(2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := hostsimtest.NewVM(t, guest(t), baseConfig)
			s := vm.NewStream(context.Background())
			if _, err := s.RequestHeaders(hdrs(":path", "/"), true); err != nil {
				t.Fatal(err)
			}
			c := propCase{"prop:response/grpc_status", 0, tt.hex}
			h := tt.headers
			if tt.trailers == nil {
				h = append(h, hostsim.Header{Name: "x-resp-ops", Value: c.op})
			}
			if _, err := s.ResponseHeaders(h, tt.trailers == nil); err != nil {
				t.Fatal(err)
			}
			if tt.trailers != nil {
				if _, err := s.ResponseTrailers(append(tt.trailers, hostsim.Header{Name: "x-ops", Value: c.op})); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			assertLines(t, opLines(vm), []string{c.line()})
		})
	}
}
