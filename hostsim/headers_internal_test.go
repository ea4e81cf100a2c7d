package hostsim

import (
	"bytes"
	"reflect"
	"testing"
)

func TestUnmarshalPairs(t *testing.T) {
	good := marshalPairs(nil, []Header{{"a", "1"}, {"", ""}, {"bb", "22"}})
	tests := []struct {
		name string
		in   []byte
		want []Header
	}{
		{"round trip", good, []Header{{"a", "1"}, {"", ""}, {"bb", "22"}}},
		{"empty list", []byte{0, 0, 0, 0}, []Header{}},
		{"short count", []byte{1, 0}, nil},
		{"trailing byte", append(append([]byte(nil), good...), 0), nil},
		{"missing NUL", append(append([]byte(nil), good[:len(good)-1]...), 'x'), nil},
		{"sizes past the end", []byte{1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 'a', 0, 0}, nil},
		{"over the count limit", []byte{1, 4, 0, 0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unmarshalPairs(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("unmarshalPairs(%x) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzUnmarshalPairs(f *testing.F) {
	f.Add(marshalPairs(nil, []Header{{":path", "/"}, {"x", ""}}))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		pairs := unmarshalPairs(b)
		if pairs == nil {
			return
		}
		// Whatever parses is exactly what marshalling it gives back.
		if again := marshalPairs(nil, pairs); !bytes.Equal(again, b) {
			t.Fatalf("marshal(unmarshal(%x)) = %x", b, again)
		}
	})
}

func TestHeaderMapSetPairsKeepsPseudoHeadersFirst(t *testing.T) {
	m := newHeaderMap(MapRequestHeaders)
	m.setPairs([]Header{{"x-a", "1"}, {":path", "/"}, {"Host", "h"}, {"x-a", "2"}, {"User-Agent", "u1"}, {"user-agent", "u2"}})
	want := []Header{{":path", "/"}, {":authority", "h"}, {"x-a", "1"}, {"x-a", "2"}, {"user-agent", "u1,u2"}}
	if !reflect.DeepEqual(m.entries, want) {
		t.Errorf("entries = %q, want %q", m.entries, want)
	}
}
