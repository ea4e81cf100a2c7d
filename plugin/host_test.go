package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/secretgate/secretgate/policies"
)

func TestPairsRoundTrip(t *testing.T) {
	hs := []policies.Header{
		{Name: []byte(":authority"), Value: []byte("api.openai.com")},
		{Name: []byte("x-api-key"), Value: []byte("a")},
		{Name: []byte("x-api-key"), Value: []byte("")},
	}
	buf := encodePairs(nil, hs)
	// Exact serialisation: count, then (name, value) sizes, then NUL-terminated bytes.
	want := []byte{3, 0, 0, 0, 10, 0, 0, 0, 14, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0}
	want = append(want, ":authority\x00api.openai.com\x00x-api-key\x00a\x00x-api-key\x00\x00"...)
	if !bytes.Equal(buf, want) {
		t.Fatalf("encodePairs = %q\nwant %q", buf, want)
	}
	got, err := decodePairs(nil, buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || string(got[0].Value) != "api.openai.com" || string(got[1].Value) != "a" || string(got[2].Name) != "x-api-key" || len(got[2].Value) != 0 {
		t.Fatalf("decodePairs = %q", got)
	}
}

func TestDecodePairsRejectsMalformed(t *testing.T) {
	valid := encodePairs(nil, []policies.Header{{Name: []byte("a"), Value: []byte("b")}})
	huge := binary.LittleEndian.AppendUint32(nil, 1<<30)
	for name, buf := range map[string][]byte{
		"empty":           nil,
		"short count":     {1, 0},
		"count overruns":  huge,
		"truncated data":  valid[:len(valid)-1],
		"missing NUL":     append(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32([]byte{1, 0, 0, 0}, 1), 1), "a-b\x00"...),
		"sizes overrun":   append(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32([]byte{1, 0, 0, 0}, 5), 5), "a\x00b\x00"...),
		"size near 4 GiB": append(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32([]byte{1, 0, 0, 0}, 0xffffffff), 0), "\x00\x00"...),
	} {
		if _, err := decodePairs(nil, buf); !errors.Is(err, errPairs) {
			t.Errorf("%s: err = %v, want errPairs", name, err)
		}
	}
}

// FuzzDecodePairs: the decoder never panics, and whatever it accepts
// re-encodes to the same bytes.
func FuzzDecodePairs(f *testing.F) {
	f.Add(encodePairs(nil, []policies.Header{{Name: []byte(":path"), Value: []byte("/?key=sgp_x")}}))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{2, 0, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, buf []byte) {
		hs, err := decodePairs(nil, buf)
		if err != nil {
			return
		}
		if re := encodePairs(nil, hs); !bytes.HasPrefix(buf, re) {
			t.Fatalf("accepted %q but re-encodes to %q", buf, re)
		}
	})
}

// encodeRewritten must produce exactly encodePairs' bytes, whichever lines
// changed.
func TestEncodeRewrittenMatchesEncodePairs(t *testing.T) {
	in := []policies.Header{
		{Name: []byte(":authority"), Value: []byte("api.openai.com")},
		{Name: []byte("authorization"), Value: []byte("Bearer sgp_x")},
		{Name: []byte("x-empty"), Value: nil},
		{Name: []byte("x-api-key"), Value: []byte("sgp_x")},
		{Name: []byte("x-last"), Value: []byte("v")},
	}
	src := encodePairs(nil, in)
	decoded, err := decodePairs(nil, src)
	if err != nil {
		t.Fatal(err)
	}
	for mask := range 1 << len(decoded) {
		out := append([]policies.Header(nil), decoded...)
		for i := range out {
			if mask&(1<<i) != 0 {
				out[i].Value = append([]byte("new-"), out[i].Value...)
			}
		}
		got := encodeRewritten([]byte("prefix"), src, decoded, out)
		if want := encodePairs([]byte("prefix"), out); !bytes.Equal(got, want) {
			t.Fatalf("lines %05b changed:\n got %q\nwant %q", mask, got, want)
		}
	}
	// A rewrite with another line count falls back to encodePairs.
	short := decoded[:2]
	if got, want := encodeRewritten(nil, src, decoded, short), encodePairs(nil, short); !bytes.Equal(got, want) {
		t.Fatalf("fallback: got %q want %q", got, want)
	}
}
