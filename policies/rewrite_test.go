package policies

import (
	"net/url"
	"slices"
	"testing"
)

func TestPercentDecodeKeepsRawOffsets(t *testing.T) {
	for _, tc := range []struct {
		raw, decoded string
		at           []int32
	}{
		{"", "", []int32{0}},
		{"a=b", "a=b", []int32{0, 1, 2, 3}},
		{"k=%5F%5f_", "k=___", []int32{0, 1, 2, 5, 8, 9}},
		{"%zz%4%", "%zz%4%", []int32{0, 1, 2, 3, 4, 5, 6}},
		{"%41%4", "A%4", []int32{0, 3, 4, 5}},
		{"+%2B%00", "++\x00", []int32{0, 1, 4, 7}},
	} {
		var r Rewriter
		r.percentDecode([]byte(tc.raw))
		if string(r.decoded) != tc.decoded || !slices.Equal(r.decodedAt, tc.at) {
			t.Errorf("%q: got %q %v, want %q %v", tc.raw, r.decoded, r.decodedAt, tc.decoded, tc.at)
		}
	}
}

func TestAppendPercentEncoded(t *testing.T) {
	if got := string(appendPercentEncoded([]byte("key="), []byte(valGemini))); got != "key=AIza%2Btest%2FDDDD%3D4444" {
		t.Fatalf("got %q", got)
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	enc := appendPercentEncoded(nil, all)
	for _, c := range enc {
		if !unreserved[c] && c != '%' && !('A' <= c && c <= 'F') {
			t.Fatalf("byte %q left unencoded in %q", c, enc)
		}
	}
	back, err := url.QueryUnescape(string(enc))
	if err != nil || back != string(all) {
		t.Fatalf("does not decode back: %v", err)
	}
}

func TestBasicToken(t *testing.T) {
	for v, want := range map[string]int{
		"Basic dXNlcjpwYXNz":   6,
		"basic dXNlcjpwYXNz":   6,
		"BASIC   dXNlcjpwYXNz": 8,
		"Basic ":               6,
		"Basic":                -1,
		"Basicx dXNl":          -1,
		"Basic\tdXNl":          -1,
		"Bearer dXNlcjpwYXNz":  -1,
		" Basic dXNl":          -1,
	} {
		if got := basicToken([]byte(v)); got != want {
			t.Errorf("%q: got %d, want %d", v, got, want)
		}
	}
}

func TestDecodeBasic(t *testing.T) {
	for tok, want := range map[string]string{
		"dXNlcjpwYXNz":             "user:pass",
		"":                         "",
		"Z2hwX3Rlc3RDQ0NDMzMzMzo=": "ghp_testCCCC3333:",
		// Unpadded, as some clients send it: the length tells.
		"Z2hwX3Rlc3RDQ0NDMzMzMzo": "ghp_testCCCC3333:",
		"dXNlcjpwYXM":             "user:pas",
		"dXNlcjpwYQ":              "user:pa",
	} {
		var r Rewriter
		if !r.decodeBasic([]byte(tok)) || string(r.decoded) != want {
			t.Errorf("%q: got %q", tok, r.decoded)
		}
	}
	for _, tok := range []string{"!!!not-base64!!!", "dXNl cjpwYXNz", "dXNlcjpwYXNz==", "dXNlcjpwYXNz=", "dXNlc",
		"Z2hwX3Rlc3RDQ0NDMzMzMzo==", "dXNlcjpwYX=", "dXNlcjpwYXNz_-"} {
		var r Rewriter
		if r.decodeBasic([]byte(tok)) {
			t.Errorf("%q decoded to %q", tok, r.decoded)
		}
	}
}

func TestRewriteKeepsUntouchedLinesAliased(t *testing.T) {
	r := NewRewriter(newSession(t, Passthrough, fixtureSecrets))
	in := hdrs(req("api.openai.com", "x-a", "plain", "authorization", "Bearer "+phOpenAI, "x-b", phAnthropic)...)
	d := r.Decide(in)
	if d.Verdict != Rewritten {
		t.Fatalf("verdict %v", d.Verdict)
	}
	for i := range in {
		same := &d.Headers[i].Value[0] == &in[i].Value[0] && &d.Headers[i].Name[0] == &in[i].Name[0]
		if want := string(in[i].Name) != "authorization"; same != want {
			t.Errorf("line %q: aliases input %v, want %v", in[i].Name, same, want)
		}
	}
}

func TestRewriteLongValuesAndManyLines(t *testing.T) {
	// Values longer than the buffers so far, so the output buffer grows
	// while earlier rewritten lines are already placed.
	r := NewRewriter(newSession(t, Passthrough, fixtureSecrets))
	pairs := []string{":authority", "api.openai.com"}
	want := []string{":authority", "api.openai.com"}
	for i := range 50 {
		filler := string(make([]byte, i*37))
		pairs = append(pairs, "x-k", filler+phOpenAI+filler+phOpenAIOrg)
		want = append(want, "x-k", filler+valOpenAI+filler+valOpenAIOrg)
	}
	d := r.Decide(hdrs(pairs...))
	if got := pairsOf(d.Headers); !slices.Equal(got, want) {
		t.Fatalf("rewritten lines differ")
	}
}

// Whatever the client wrote before a query placeholder, a server that
// decodes the rewritten query as leniently as percentDecode (a stray '%'
// stands for itself) reads what the client's bytes meant, then the value.
func TestQueryValueSurvivesAPercentBefore(t *testing.T) {
	// Values that open with hex digits, which a dangling '%' would take.
	values := []string{"ae-test+FFFF1111", "4-test/GGGG2222", valGemini, "+test-HHHH3333"}
	prefixes := []string{"", "%", "%a", "%4", "%F", "%%", "%%a", "%z", "%41", "%4z", "x%", "%25", "%a%", "%%%"}
	for _, v := range values {
		r := NewRewriter(newSession(t, Passthrough, []fixtureSecret{{"HEX_TOKEN", phHex, v, []string{"api.hex.example"}}}))
		for _, p := range prefixes {
			for _, ph := range []string{phHex, "%64eadbeef%5Fplaceholder_00000000002"} {
				d := r.Decide(hdrs(":authority", "api.hex.example", ":path", "/m?key="+p+ph))
				if d.Verdict != Rewritten {
					t.Fatalf("value %q, prefix %q: verdict %v", v, p, d.Verdict)
				}
				query := string(d.Headers[1].Value[len("/m?key="):])
				var dec Rewriter
				dec.percentDecode([]byte(p))
				want := string(dec.decoded) + v
				dec.percentDecode([]byte(query))
				if got := string(dec.decoded); got != want {
					t.Errorf("value %q, query key=%s%s: forwarded %q, which decodes to %q, want %q", v, p, ph, query, got, want)
				}
			}
		}
	}
}

func TestEscapeDanglingPercent(t *testing.T) {
	for _, tc := range []struct {
		dst  string
		from int
		want string
	}{
		{"k=%", 0, "k=%25"},
		{"k=%a", 0, "k=%25a"},
		{"k=%A", 0, "k=%25A"},
		{"k=%9", 0, "k=%259"},
		{"k=%z", 0, "k=%z"},
		{"k=%41", 0, "k=%41"},
		{"k=a", 0, "k=a"},
		{"%", 0, "%25"},
		{"", 0, ""},
		{"%a", 1, "%a"}, // the '%' belongs to an earlier, whole escape
		{"v%", 1, "v%25"},
		{"%2B%", 4, "%2B%"},
	} {
		if got := string(escapeDanglingPercent([]byte(tc.dst), tc.from)); got != tc.want {
			t.Errorf("escapeDanglingPercent(%q, %d) = %q, want %q", tc.dst, tc.from, got, tc.want)
		}
	}
}
