package policies

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"slices"
)

// scanHeader records the placeholders in one header value. Matches are kept
// in the coordinates rewrite works in: the raw value for kindPlain and
// kindPath, the decoded credentials for kindAuthorization.
//
// What is scanned, so that no placeholder written in the raw bytes escapes:
//   - a query holding '%' is scanned decoded and raw. A decoded match counts
//     at the raw span it was decoded from; a raw match counts too unless it
//     overlaps such a span (a '%' before it swallowed its first bytes, as in
//     "%deadbeef…", so decoding hides it). Each is substituted at its raw
//     position, the value percent-encoded.
//   - Basic credentials are scanned raw first. If the raw value holds a
//     placeholder, the line is a plain line: it is substituted in the raw
//     bytes and its decoded form is not scanned. Otherwise, if the token
//     decodes, the decoded credentials are scanned, substituted and encoded
//     again.
func (r *Rewriter) scanHeader(header int32, kind headerKind, value []byte) {
	first := len(r.matches)
	sp := span{header: header, kind: kind}
	switch kind {
	case kindPlain:
		r.matches = r.index.appendMatches(r.matches, value)
	case kindPath:
		q := bytes.IndexByte(value, '?')
		if q < 0 {
			return
		}
		q++
		query := value[q:]
		r.matches = r.index.appendMatches(r.matches, query)
		if bytes.IndexByte(query, '%') >= 0 {
			r.addDecodedQueryMatches(first, query)
		}
		for k := first; k < len(r.matches); k++ {
			r.matches[k].start += int32(q)
			r.matches[k].end += int32(q)
		}
	case kindAuthorization:
		r.matches = r.index.appendMatches(r.matches, value)
		tok := basicToken(value)
		if len(r.matches) > first || tok < 0 || !r.decodeBasic(value[tok:]) {
			sp.kind = kindPlain
			break
		}
		sp.token = int32(tok)
		r.matches = r.index.appendMatches(r.matches, r.decoded)
	}
	if len(r.matches) > first {
		sp.first, sp.last = int32(first), int32(len(r.matches))
		r.spans = append(r.spans, sp)
	}
}

// addDecodedQueryMatches takes r.matches[first:], the raw matches of query,
// and merges in the matches of its percent-decoded form, each at the raw span
// it was decoded from. A raw match overlapping a decoded one is dropped: it is
// the same placeholder, or one overlapping another placeholder, which no
// substitution could keep whole. The result is sorted by start, without
// overlaps, as rewrite needs.
func (r *Rewriter) addDecodedQueryMatches(first int, query []byte) {
	r.percentDecode(query)
	r.rawMatches = append(r.rawMatches[:0], r.matches[first:]...)
	r.matches = r.index.appendMatches(r.matches[:first], r.decoded)
	decoded := len(r.matches)
	for k := first; k < decoded; k++ {
		m := &r.matches[k]
		m.start, m.end = r.decodedAt[m.start], r.decodedAt[m.end]
	}
	d := first // the first decoded match not ending before the raw match
	for _, m := range r.rawMatches {
		for d < decoded && r.matches[d].end <= m.start {
			d++
		}
		if d == decoded || m.end <= r.matches[d].start {
			r.matches = append(r.matches, m)
		}
	}
	if len(r.matches) > decoded && decoded > first {
		slices.SortFunc(r.matches[first:], func(a, b match) int { return cmp.Compare(a.start, b.start) })
	}
}

// rewrite returns headers with every allowed placeholder replaced by its
// value; lines without an allowed placeholder keep the caller's bytes.
func (r *Rewriter) rewrite(headers []Header) []Header {
	r.out = r.out[:0]
	for k := range r.spans {
		sp := &r.spans[k]
		ms := r.matches[sp.first:sp.last]
		if sp.rewritten = r.anyAllowed(ms); !sp.rewritten {
			continue
		}
		value := headers[sp.header].Value
		sp.out = int32(len(r.out))
		switch sp.kind {
		case kindPlain:
			r.out = r.appendSubstituted(r.out, value, ms, false)
		case kindPath:
			r.out = r.appendSubstituted(r.out, value, ms, true)
		case kindAuthorization:
			r.decodeBasic(value[sp.token:]) // decoded at scan time, so it decodes again
			r.cred = r.appendSubstituted(r.cred[:0], r.decoded, ms, false)
			r.out = append(r.out, value[:sp.token]...)
			r.out = basicEncoding(value[sp.token:]).AppendEncode(r.out, r.cred)
		}
		sp.outEnd = int32(len(r.out))
	}
	// r.out is final only now: earlier slices of it could have moved.
	r.headers = append(r.headers[:0], headers...)
	for _, sp := range r.spans {
		if sp.rewritten {
			r.headers[sp.header].Value = r.out[sp.out:sp.outEnd:sp.outEnd]
		}
	}
	return r.headers
}

func (r *Rewriter) anyAllowed(ms []match) bool {
	for _, m := range ms {
		if r.allowed[m.secret] {
			return true
		}
	}
	return false
}

// appendSubstituted appends text to dst with each allowed match replaced by
// its secret's value, percent-encoded if percent; disallowed matches stay.
func (r *Rewriter) appendSubstituted(dst, text []byte, ms []match, percent bool) []byte {
	at := int32(0)
	for _, m := range ms {
		if !r.allowed[m.secret] {
			continue
		}
		dst = append(dst, text[at:m.start]...)
		v := r.s.Secrets[m.secret].Value.bytes()
		if percent {
			dst = escapeDanglingPercent(dst, len(dst)-int(m.start-at))
			dst = appendPercentEncoded(dst, v)
		} else {
			dst = append(dst, v...)
		}
		at = m.end
	}
	return append(dst, text[at:]...)
}

// escapeDanglingPercent writes as %25 a '%' in dst[from:] whose two escape
// digits would reach past the end of dst into the value appended next: a
// '%' at the end, or one followed by a single hex digit. A stray '%' before
// a placeholder ("key=%a" then the placeholder) would otherwise take the
// value's first bytes as its digits, and the server would decode "%aA"
// instead of the value. A server reads "%25" as the '%' the client sent.
// Only the bytes copied since the last substitution (from on) are looked
// at: an encoded value always ends in a whole escape.
func escapeDanglingPercent(dst []byte, from int) []byte {
	n := len(dst)
	switch {
	case n-1 >= from && dst[n-1] == '%':
		return append(dst, '2', '5')
	case n-2 >= from && dst[n-2] == '%' && unhex[dst[n-1]] >= 0:
		digit := dst[n-1]
		dst[n-1] = '2'
		return append(dst, '5', digit)
	}
	return dst
}

// percentDecode decodes each valid %XX of q into r.decoded and records in
// r.decodedAt where each decoded byte starts in q, then len(q). Any other
// byte, a stray '%' included, stands for itself.
func (r *Rewriter) percentDecode(q []byte) {
	r.decoded, r.decodedAt = r.decoded[:0], r.decodedAt[:0]
	for i := 0; i < len(q); {
		r.decodedAt = append(r.decodedAt, int32(i))
		if q[i] == '%' && i+2 < len(q) && unhex[q[i+1]] >= 0 && unhex[q[i+2]] >= 0 {
			r.decoded = append(r.decoded, byte(unhex[q[i+1]]<<4|unhex[q[i+2]]))
			i += 3
			continue
		}
		r.decoded = append(r.decoded, q[i])
		i++
	}
	r.decodedAt = append(r.decodedAt, int32(len(q)))
}

// hexDigits writes %XX and \u00XX escapes, uppercase as RFC 3986 advises;
// unhex reads either case.
const hexDigits = "0123456789ABCDEF"

var unhex = func() (t [256]int8) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9':
			t[c] = int8(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = int8(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			t[c] = int8(c - 'A' + 10)
		default:
			t[c] = -1
		}
	}
	return t
}()

// unreserved marks the bytes RFC 3986 lets a query carry unencoded.
var unreserved = func() (t [256]bool) {
	for c := range t {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~'
	}
	return t
}()

// appendPercentEncoded appends v with every byte but the unreserved ones as
// %XX, so a value holding '+', '/', '=' or '&' stays one query parameter.
func appendPercentEncoded(dst, v []byte) []byte {
	for _, c := range v {
		if unreserved[c] {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	return dst
}

// basicToken returns where the credentials start in an Authorization value
// of the Basic scheme (any case, one or more spaces), or -1.
func basicToken(v []byte) int {
	if len(v) < 6 || !equalFoldASCII(v[:5], "basic") || v[5] != ' ' {
		return -1
	}
	i := 6
	for i < len(v) && v[i] == ' ' {
		i++
	}
	return i
}

// decodeBasic decodes Basic credentials into r.decoded: standard base64,
// padded as RFC 7617 asks, or without the padding, which some clients leave
// out and servers accept.
func (r *Rewriter) decodeBasic(tok []byte) bool {
	enc := basicEncoding(tok)
	n := enc.DecodedLen(len(tok))
	if cap(r.decoded) < n {
		r.decoded = make([]byte, n, 2*n)
	}
	n, err := enc.Decode(r.decoded[:n], tok)
	if err != nil {
		return false
	}
	r.decoded = r.decoded[:n]
	return true
}

// basicEncoding is the form a Basic token is written in, which its
// rewritten credentials keep: unpadded when its length shows the padding
// was left out, padded otherwise.
func basicEncoding(tok []byte) *base64.Encoding {
	if len(tok)%4 != 0 {
		return base64.RawStdEncoding
	}
	return base64.StdEncoding
}
