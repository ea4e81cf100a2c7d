package e2e

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"gopkg.in/yaml.v3"

	// Every typed_config type our Envoy configs use, so that protojson can
	// resolve them; a type missing here fails the parse, as an unknown
	// extension fails Envoy's.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/dynamic_forward_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_forward_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/sni_dynamic_forward_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/formatter/req_without_query/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	_ "google.golang.org/protobuf/types/known/wrapperspb"
)

// envoyCfgRepoRoot is the repository root, wherever the test runs from.
func envoyCfgRepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// envoyCfgFiles lists the Envoy configs to check, as paths relative to the
// repository root: the shipped envoy.yaml and every envoy*.yaml under e2e/
// (served), and those under e2e/**/testdata/ (rejected: valid bootstraps
// whose plugin configuration the module must refuse, so Envoy fails closed).
func envoyCfgFiles(t *testing.T) (served, rejected []string) {
	t.Helper()
	root := envoyCfgRepoRoot()
	served = []string{"envoy.yaml"}
	err := filepath.WalkDir(filepath.Join(root, "e2e"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ok, _ := filepath.Match("envoy*.yaml", d.Name()); !ok || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if slices.Contains(strings.Split(rel, "/"), "testdata") {
			rejected = append(rejected, rel)
		} else {
			served = append(served, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return served, rejected
}

func envoyCfgRead(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(envoyCfgRepoRoot(), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// envoyCfgTypes resolves every typed_config @type: the registry holds the
// extension packages imported above.
var envoyCfgTypes = protoregistry.GlobalTypes

// envoyCfgParse loads an Envoy bootstrap as Envoy does: YAML to JSON, then
// proto JSON into envoy.config.bootstrap.v3.Bootstrap with unknown fields
// refused, then the protoc-gen-validate rules of the bootstrap and of every
// typed_config inside it (ValidateAll does not look inside Any).
func envoyCfgParse(data []byte) (*bootstrapv3.Bootstrap, error) {
	js, err := envoyCfgYAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	var b bootstrapv3.Bootstrap
	opts := protojson.UnmarshalOptions{Resolver: envoyCfgTypes, DiscardUnknown: false}
	if err := opts.Unmarshal(js, &b); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	err = envoyCfgWalk(&b, func(path string, m proto.Message, inAny bool) error {
		v, ok := m.(interface{ ValidateAll() error })
		if !inAny || !ok {
			return nil
		}
		if err := v.ValidateAll(); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// envoyCfgYAMLToJSON converts YAML (anchors and aliases expanded, as
// Envoy's yaml-cpp loader does) to JSON.
func envoyCfgYAMLToJSON(data []byte) ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	v, err := envoyCfgJSONValue(doc)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func envoyCfgJSONValue(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			c, err := envoyCfgJSONValue(e)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			c, err := envoyCfgJSONValue(e)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(k)] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			c, err := envoyCfgJSONValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case nil, string, bool, int, int64, uint64, float64:
		return v, nil
	}
	return nil, fmt.Errorf("yaml value of type %T has no JSON form", v)
}

// envoyCfgWalk calls visit for m and every message under it, depth first,
// including the contents of each google.protobuf.Any (inAny is true for the
// message an Any holds). path names the field path, with [i] and [key].
func envoyCfgWalk(m proto.Message, visit func(path string, m proto.Message, inAny bool) error) error {
	return envoyCfgWalkMessage("", m.ProtoReflect(), false, visit)
}

func envoyCfgWalkMessage(path string, m protoreflect.Message, inAny bool, visit func(string, proto.Message, bool) error) error {
	if err := visit(path, m.Interface(), inAny); err != nil {
		return err
	}
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return envoyCfgWalkMessage(path+"("+string(inner.ProtoReflect().Descriptor().FullName())+")", inner.ProtoReflect(), true, visit)
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := string(fd.Name())
		if path != "" {
			name = path + "." + name
		}
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = envoyCfgWalkMessage(name+"["+strconv.Itoa(i)+"]", l.Get(i).Message(), false, visit)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				err = envoyCfgWalkMessage(name+"["+k.String()+"]", mv.Message(), false, visit)
				return err == nil
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			err = envoyCfgWalkMessage(name, v.Message(), false, visit)
		}
		return err == nil
	})
	return err
}

// envoyCfgMutate returns data with the first occurrence of old replaced,
// failing the test when old is missing, so that a rewrite of the config that
// drops it does not quietly turn a regression test into a no-op.
func envoyCfgMutate(t *testing.T, data []byte, old, new string) []byte {
	t.Helper()
	s := string(data)
	if !strings.Contains(s, old) {
		t.Fatalf("mutation target %q not found in the config", old)
	}
	return []byte(strings.Replace(s, old, new, 1))
}
