package policies

import (
	"fmt"
	"slices"
	"testing"
)

// scanSecrets adds to the fixtures placeholders that share a 16-byte prefix
// (with each other and with OPENAI's), to exercise candidate lists.
var scanSecrets = append(slices.Clone(fixtureSecrets),
	fixtureSecret{"SHARED_A", "sgp_openai_00000AAAAAAAAAAAAAAAA", "a", nil},
	fixtureSecret{"SHARED_B", "sgp_openai_00000BBBBBBBBBBBBBBBBBBBBBB", "b", nil},
	fixtureSecret{"SHORT", "0123456789abcdef", "c", nil},
	fixtureSecret{"DOTTED", "x.y~z-w_0123456789", "d", nil},
)

func scanIndex(t testing.TB, secrets []fixtureSecret) (*placeholderIndex, []string) {
	t.Helper()
	s := newSession(t, Passthrough, secrets)
	x, err := newPlaceholderIndex(s.Secrets)
	if err != nil {
		t.Fatal(err)
	}
	phs := make([]string, len(s.Secrets))
	for i, sec := range s.Secrets {
		phs[i] = sec.Placeholder
	}
	return x, phs
}

// naiveMatches is the reference: at each position try every placeholder;
// after a match continue behind it.
func naiveMatches(text []byte, phs []string) []match {
	var ms []match
next:
	for p := 0; p < len(text); p++ {
		for i, ph := range phs {
			if len(text)-p >= len(ph) && string(text[p:p+len(ph)]) == ph {
				ms = append(ms, match{start: int32(p), end: int32(p + len(ph)), secret: int32(i)})
				p += len(ph) - 1
				continue next
			}
		}
	}
	return ms
}

func describe(ms []match, phs []string) []string {
	var d []string
	for _, m := range ms {
		d = append(d, fmt.Sprintf("%d-%d:%s", m.start, m.end, phs[m.secret]))
	}
	return d
}

func TestScan(t *testing.T) {
	x, phs := scanIndex(t, scanSecrets)
	idx := func(ph string) int32 { return int32(slices.Index(phs, ph)) }
	sharedA, sharedB := "sgp_openai_00000AAAAAAAAAAAAAAAA", "sgp_openai_00000BBBBBBBBBBBBBBBBBBBBBB"
	for _, tc := range []struct {
		text string
		want []match
	}{
		{"", nil},
		{"no placeholder here, 0123456789abcde only fifteen", nil},
		{phOpenAI, []match{{0, 32, idx(phOpenAI)}}},
		{"Bearer " + phOpenAI, []match{{7, 39, idx(phOpenAI)}}},
		{phOpenAI[:31], nil},
		{phOpenAI + phOpenAI, []match{{0, 32, idx(phOpenAI)}, {32, 64, idx(phOpenAI)}}},
		{"xx" + phOpenAI + "yy", []match{{2, 34, idx(phOpenAI)}}},
		{"a=" + phOpenAI + "; b=" + phOpenAIOrg, []match{{2, 34, idx(phOpenAI)}, {38, 71, idx(phOpenAIOrg)}}},
		{sharedA + " " + sharedB + " " + phOpenAI, []match{{0, 32, idx(sharedA)}, {33, 71, idx(sharedB)}, {72, 104, idx(phOpenAI)}}},
		{"sgp_openai_00000AAAAAAAAAAAAAAAB", nil},
		{"0123456789abcdef0123456789abcdef", []match{{0, 16, idx("0123456789abcdef")}, {16, 32, idx("0123456789abcdef")}}},
		{"00123456789abcdef", []match{{1, 17, idx("0123456789abcdef")}}},
		{"x.y~z-w_0123456789.", []match{{0, 18, idx("x.y~z-w_0123456789")}}},
		// A match ends where the run ends; a cut placeholder is no match.
		{"sgp_openai_00000000000000 0000001", nil},
	} {
		got := x.appendMatches(nil, []byte(tc.text))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q:\n got %q\nwant %q", tc.text, describe(got, phs), describe(tc.want, phs))
		}
		if ref := naiveMatches([]byte(tc.text), phs); !slices.Equal(got, ref) {
			t.Errorf("%q: reference disagrees: %q", tc.text, describe(ref, phs))
		}
	}
}

func TestPlaceholdersMustBePrefixFree(t *testing.T) {
	for _, tc := range []struct {
		secrets []fixtureSecret
		want    string
	}{
		{[]fixtureSecret{{"L", "sgp_dup_000000000000000001_more", "l", nil}, {"S", "sgp_dup_000000000000000001", "s", nil}},
			"secrets.L.placeholder: begins with the placeholder of secrets.S"},
		{[]fixtureSecret{{"A", "sgp_dup_000000000000000001", "a", nil}, {"B", "sgp_dup_000000000000000001", "b", nil}},
			"secrets.B.placeholder: begins with the placeholder of secrets.A"},
	} {
		_, err := newPlaceholderIndex(newSession(t, Passthrough, tc.secrets).Secrets)
		if err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %s", err, tc.want)
		}
	}
}

func TestScanManySecrets(t *testing.T) {
	secrets := benchSecrets(1000)
	x, phs := scanIndex(t, secrets)
	var text []byte
	var want []match
	for i := 0; i < len(phs); i += 37 {
		text = append(text, "k="...)
		want = append(want, match{int32(len(text)), int32(len(text) + len(phs[i])), int32(i)})
		text = append(text, phs[i]...)
		text = append(text, "; "...)
	}
	if got := x.appendMatches(nil, text); !slices.Equal(got, want) {
		t.Fatalf("got %d matches %q, want %d", len(got), describe(got, phs), len(want))
	}
}

func TestCheckPlaceholder(t *testing.T) {
	for ph, want := range map[string]string{
		phOpenAI:                   "",
		"0123456789abcdef":         "",
		"0123456789abcde":          "must be at least 16 bytes",
		"sgp_openai_000000000/001": "byte 20 is not one of [A-Za-z0-9_.~-]",
		"sgp_openai_00000000000é1": "byte 22 is not one of [A-Za-z0-9_.~-]",
	} {
		got := ""
		if err := checkPlaceholder(ph); err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("%q: got %q, want %q", ph, got, want)
		}
	}
}

func FuzzScan(f *testing.F) {
	for _, seed := range []string{
		"",
		"Bearer " + phOpenAI,
		"a=" + phOpenAI + "; b=" + phOpenAIOrg + "; c=" + phOpenAI,
		"sgp_openai_00000AAAAAAAAAAAAAAAAsgp_openai_00000BBBBBBBBBBBBBBBBBBBBBB",
		"0123456789abcdef0123456789abcdef0",
		"sgp_openai_00000000000000000000" + phOpenAI,
		"x.y~z-w_0123456789x.y~z-w_012345678",
	} {
		f.Add([]byte(seed))
	}
	x, phs := scanIndex(f, scanSecrets)
	f.Fuzz(func(t *testing.T, text []byte) {
		// Long inputs only slow the quadratic reference and minimisation.
		text = text[:min(len(text), 4096)]
		got := x.appendMatches(nil, text)
		if want := naiveMatches(text, phs); !slices.Equal(got, want) {
			t.Fatalf("%q:\n got %q\nwant %q", text, describe(got, phs), describe(want, phs))
		}
	})
}
