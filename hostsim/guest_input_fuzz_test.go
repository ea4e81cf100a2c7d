package hostsim

import (
	"bytes"
	"context"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
)

// Guest-controlled bytes that hostsim parses: what a module passes to
// proxy_grpc_call, proxy_get_property and the uncompress foreign function.

// FuzzParsesAsGrpcService checks the grpc_service check against protobuf
// itself: hostsim takes bytes as a GrpcService (BadArgument, not ParseFailure)
// exactly when proto.Unmarshal into envoy.config.core.v3.GrpcService succeeds.
func FuzzParsesAsGrpcService(f *testing.F) {
	cluster, _ := proto.Marshal(&corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
		EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "ext_authz", Authority: "authz.local"}}})
	google, _ := proto.Marshal(&corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_GoogleGrpc_{
		GoogleGrpc: &corev3.GrpcService_GoogleGrpc{TargetUri: "dns:///authz:9000", StatPrefix: "authz"}},
		InitialMetadata: []*corev3.HeaderValue{{Key: "x-k", Value: "v"}}})
	f.Add(cluster)
	f.Add(google)
	f.Add([]byte("ext_authz"))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x08, 0x01})          // envoy_grpc holding a varint field
	f.Add([]byte{0x0b, 0x10, 0x01, 0x0c})          // a group
	f.Add([]byte{0x0a, 0x03, 0x1a, 0x01, 0xff})    // envoy_grpc.retry_policy, truncated inside
	f.Add([]byte{0x22, 0x02, 0x0a, 0x80, 0x0a, 0}) // an unknown field
	f.Fuzz(func(t *testing.T, b []byte) {
		if hasOverlongVarint(b) {
			return // C++ drops a 10-byte varint's excess bits; Go refuses it
		}
		err := cppLikeUnmarshal.Unmarshal(b, &corev3.GrpcService{})
		got := parsesAsGrpcService(b)
		if !got && err == nil {
			// Go skips unknown groups beyond RecursionLimit; C++ counts them.
			if _, ok := skipFields(b, "GrpcService", 0, 10000); ok {
				return
			}
		}
		if got != (err == nil) {
			t.Fatalf("parsesAsGrpcService(%x) = %v; protobuf says %v", b, got, err)
		}
	})
}

// hasOverlongVarint reports whether b may hold a 10-byte varint whose last
// byte carries bits past 64.
func hasOverlongVarint(b []byte) bool {
	run := 0
	for _, c := range b {
		if run >= 9 && c > 1 && c < 0x80 {
			return true
		}
		if c >= 0x80 {
			run++
		} else {
			run = 0
		}
	}
	return false
}

// cppLikeUnmarshal parses as Envoy's C++ protobuf does: nesting limited to
// its default 100 levels (Go's default is 10000).
var cppLikeUnmarshal = proto.UnmarshalOptions{RecursionLimit: protoRecursionLimit}

// nestedValues is a GrpcService whose google_grpc.config holds a Struct
// nested through lists levels of ListValue, each Value in the next.
func nestedValues(levels int) []byte {
	v := structpb.NewStringValue("x")
	for range levels {
		v = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{v}})
	}
	b, err := proto.Marshal(&corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_GoogleGrpc_{
		GoogleGrpc: &corev3.GrpcService_GoogleGrpc{Config: &structpb.Struct{Fields: map[string]*structpb.Value{"k": v}}}}})
	if err != nil {
		panic(err)
	}
	return b
}

// Envoy parses the whole GrpcService, so a flaw anywhere in it makes the bytes
// a cluster name (ParseFailure); hostsim once looked only one level down.
func TestParsesAsGrpcServiceWholeMessage(t *testing.T) {
	for name, tc := range map[string]struct {
		b    []byte
		want bool
	}{
		"envoy_grpc":                                         {[]byte{0x0a, 0x03, 0x0a, 0x01, 'c'}, true},
		"envoy_grpc.retry_policy truncated":                  {[]byte{0x0a, 0x03, 0x1a, 0x01, 0xff}, false},
		"retry_policy (field 6) not a message":               {[]byte{0x32, 0x01, 0xff}, false},
		"retry_policy.retry_back_off.base_interval empty":    {[]byte{0x32, 0x04, 0x0a, 0x02, 0x0a, 0x00}, true},
		"retry_policy.retry_back_off.base_interval past end": {[]byte{0x32, 0x04, 0x0a, 0x02, 0x0a, 0x01}, false},
		"cluster_name not UTF-8":                             {[]byte{0x0a, 0x03, 0x0a, 0x01, 0xff}, false},
		"initial_metadata raw_value not UTF-8":               {[]byte{0x2a, 0x03, 0x1a, 0x01, 0xff}, true},
		"unknown field holding anything":                     {[]byte{0x3a, 0x01, 0xff}, true},
		"envoy_grpc as a varint (unknown)":                   {[]byte{0x08, 0x01}, true},
		"group inside envoy_grpc":                            {[]byte{0x0a, 0x04, 0x7b, 0x08, 0x01, 0x7c}, true},
		"unended group inside envoy_grpc":                    {[]byte{0x0a, 0x03, 0x7b, 0x08, 0x01}, false},
		"nesting within the limit":                           {nestedValues(45), true},
		"nesting past the limit":                             {nestedValues(50), false},
	} {
		if err := cppLikeUnmarshal.Unmarshal(tc.b, &corev3.GrpcService{}); (err == nil) != tc.want {
			t.Errorf("%s: protobuf says %v, the test wants parsed=%v", name, err, tc.want)
		}
		if got := parsesAsGrpcService(tc.b); got != tc.want {
			t.Errorf("%s: parsesAsGrpcService(%x) = %v, want %v", name, tc.b, got, tc.want)
		}
	}
	// A guest's megabyte of group starts is refused, not a megabyte of recursion.
	if parsesAsGrpcService(bytes.Repeat([]byte{0x3b}, 1<<20)) {
		t.Error("parsesAsGrpcService took 1<<20 nested groups")
	}
}

// TestGrpcServiceSchema checks grpcServiceSchema against the GrpcService of
// go-control-plane (the same protos as Envoy v1.40.0).
func TestGrpcServiceSchema(t *testing.T) {
	want := map[string]map[uint64]string{}
	var walk func(md protoreflect.MessageDescriptor)
	name := func(md protoreflect.MessageDescriptor) string {
		return strings.TrimPrefix(string(md.FullName()), string(md.ParentFile().Package())+".")
	}
	walk = func(md protoreflect.MessageDescriptor) {
		if _, seen := want[name(md)]; seen {
			return
		}
		fields := map[uint64]string{}
		want[name(md)] = fields
		for i := range md.Fields().Len() {
			fd := md.Fields().Get(i)
			switch {
			case fd.Message() != nil:
				fields[uint64(fd.Number())] = name(fd.Message())
				walk(fd.Message())
			case fd.Kind() == protoreflect.StringKind:
				fields[uint64(fd.Number())] = protoString
			}
		}
	}
	walk((&corev3.GrpcService{}).ProtoReflect().Descriptor())
	if !reflect.DeepEqual(grpcServiceSchema, want) {
		for msg, fields := range want {
			if !reflect.DeepEqual(grpcServiceSchema[msg], fields) {
				t.Errorf("grpcServiceSchema[%q] = %v, want %v", msg, grpcServiceSchema[msg], fields)
			}
		}
		for msg := range grpcServiceSchema {
			if _, ok := want[msg]; !ok {
				t.Errorf("grpcServiceSchema has %q, which GrpcService does not reach", msg)
			}
		}
	}
}

// fuzzVM starts a VM of a bare module (memory, and a malloc always returning
// 1024) and a stream whose request headers the module may read.
func fuzzVM(f *testing.F) (*VM, *Stream) {
	ctx := context.Background()
	wasm, err := os.ReadFile("testdata/wat/abi_0_2_1.wasm")
	if err != nil {
		f.Fatal(err)
	}
	m, err := Compile(ctx, wasm)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { m.Close(ctx) })
	vm, err := m.NewVM(ctx, PluginConfig{Name: "fuzz", RootID: "root", VMID: "vm",
		Route: &Route{Name: "r", VirtualHost: "vh", Cluster: "c"}})
	if err != nil {
		f.Fatal(err)
	}
	s := vm.NewStream(ctx)
	if _, err := s.RequestHeaders(Headers{{":method", "GET"}, {":path", "/p?q"}, {":authority", "h"}, {"x-a", "1"}}, true); err != nil {
		f.Fatal(err)
	}
	s.reqVisible = true
	return vm, s
}

// Memory layout of the bare module's single page for the ABI calls below.
const (
	fuzzRetPtr  = 16
	fuzzRetSize = 20
	fuzzArgs    = 4096 // guest inputs; malloc hands out 1024, below
)

// abiCall calls an import with the stack words s, as the module would, and
// returns the status it leaves there.
func abiCall(vm *VM, fn func(vm *VM, s []uint64), s []uint64) Status {
	fn(vm, s)
	return Status(s[0])
}

// reserved are the first path segments proxy_get_property resolves before the
// filter state.
var reserved = []string{"request", "response", "connection", "upstream", "source", "destination",
	"metadata", "filter_state", "xds", "plugin_name", "plugin_root_id", "plugin_vm_id", "connection_id"}

// FuzzGetProperty passes arbitrary path bytes through proxy_get_property: it
// answers a status (OK, NotFound or SerializationFailure), the module gets the
// same bytes getProperty gives, and in a stream a value proxy_set_property
// stored under a plain name reads back by that name and as
// filter_state.wasm.<name> (outside one it has nowhere to go: NotFound).
func FuzzGetProperty(f *testing.F) {
	for _, p := range []string{"request\x00path", "request\x00headers\x00x-a", "request", "", "\x00", "xds\x00route_name",
		"xds\x00node\x00id", "plugin_name\x00x", "connection_id", "filter_state\x00wasm.k", "request\x00\x00path", "k\x00"} {
		f.Add(p, []byte("v"), true)
	}
	f.Add("xds\x00route_name", []byte("v"), false)
	f.Add("k", []byte("v"), false)
	vm, s := fuzzVM(f)
	mem := vm.mem
	f.Fuzz(func(t *testing.T, path string, value []byte, inStream bool) {
		if fuzzArgs+len(path)+len(value) > int(mem.Size()) {
			return
		}
		// Outside a stream (the root context) only some properties exist.
		vm.current = nil
		if inStream {
			vm.current = s
		}
		want, st := vm.getProperty(path)
		switch st {
		case StatusOK, StatusNotFound, StatusSerializationFailure:
		default:
			t.Fatalf("getProperty(%q) = %v", path, st)
		}
		mem.Write(fuzzArgs, []byte(path))
		if got := abiCall(vm, (*VM).proxyGetProperty, []uint64{fuzzArgs, uint64(len(path)), fuzzRetPtr, fuzzRetSize}); got != st {
			t.Fatalf("proxy_get_property(%q) = %v, getProperty says %v", path, got, st)
		}
		if st == StatusOK {
			p, _ := mem.ReadUint32Le(fuzzRetPtr)
			n, _ := mem.ReadUint32Le(fuzzRetSize)
			if got, _ := vm.read(p, n); n != uint32(len(want)) || !bytes.Equal(got, want) {
				t.Fatalf("proxy_get_property(%q) gave %x, want %x", path, got, want)
			}
		}

		if path == "" || strings.IndexByte(path, 0) >= 0 || slices.Contains(reserved, path) {
			return
		}
		mem.Write(fuzzArgs+uint32(len(path)), value)
		set := abiCall(vm, (*VM).proxySetProperty, []uint64{fuzzArgs, uint64(len(path)), fuzzArgs + uint64(len(path)), uint64(len(value))})
		if !inStream {
			if set != StatusNotFound {
				t.Fatalf("proxy_set_property(%q) outside a stream = %v, want NotFound", path, set)
			}
			return
		}
		if set != StatusOK {
			t.Fatalf("proxy_set_property(%q) = %v", path, set)
		}
		defer delete(s.info.filterState, celStateKeyPrefix+path)
		for _, p := range []string{path, "filter_state\x00" + celStateKeyPrefix + path} {
			if got, st := vm.getProperty(p); st != StatusOK || !bytes.Equal(got, value) {
				t.Fatalf("getProperty(%q) = %x, %v after setting %x", p, got, st, value)
			}
		}
	})
}

// FuzzForeignUncompress feeds arbitrary bytes to the uncompress foreign
// function (OK or SerializationFailure, and what it returns survives a round
// trip) and checks compress then uncompress gives the input back.
func FuzzForeignUncompress(f *testing.F) {
	hello, _ := foreignCompress(nil, []byte("hello, hello, hello"))
	f.Add(hello)
	f.Add(hello[:len(hello)-1])
	f.Add(append(slices.Clone(hello), "trailing"...))
	f.Add([]byte{})
	f.Add([]byte{0x78, 0x9c})
	f.Add([]byte{0x78, 0xbb, 0, 0, 0, 1}) // asks for a preset dictionary
	f.Fuzz(func(t *testing.T, b []byte) {
		out, st := foreignUncompress(nil, b)
		switch st {
		case StatusOK:
			again, _ := foreignCompress(nil, out)
			if back, st := foreignUncompress(nil, again); st != StatusOK || !bytes.Equal(back, out) {
				t.Fatalf("uncompress(compress(uncompress(%x))) = %x, %v", b, back, st)
			}
		case StatusSerializationFailure:
			if out != nil {
				t.Fatalf("uncompress(%x) failed with output %x", b, out)
			}
		default:
			t.Fatalf("uncompress(%x) = %v", b, st)
		}
		packed, st := foreignCompress(nil, b)
		if back, st2 := foreignUncompress(nil, packed); st != StatusOK || st2 != StatusOK || !bytes.Equal(back, b) {
			t.Fatalf("uncompress(compress(%x)) = %x, %v", b, back, st2)
		}
	})
}
