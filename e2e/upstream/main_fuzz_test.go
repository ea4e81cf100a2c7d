package main

import (
	"bufio"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzReadRequest checks what the upstream records against the bytes it read:
// the header lines of an accepted request are those of the wire, in order,
// names as sent and values without their surrounding blanks; written out
// again they read back to the same record; and a Content-Length body is
// exactly that long.
func FuzzReadRequest(f *testing.F) {
	for _, seed := range []string{
		"GET http://api.openai.com/v1/models?key=a%2Bb HTTP/1.1\r\nhost: api.openai.com\r\nX-Api-Key: one\r\nx-api-key:  two \r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhi",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\nX-Trailer: t\r\n\r\n",
		"GET / HTTP/1.0\nHost: h\n\n",
		"GET / HTTP/1.1\r\n: empty name\r\nx:\t\r\n\r\n",
		"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.1\r\nno colon\r\n\r\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		rec, closeAfter, err := readRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return
		}
		// The head is the lines up to the first empty one, CR or not.
		lines := strings.Split(raw, "\n")[1:]
		for i, line := range lines {
			if strings.TrimSuffix(line, "\r") == "" {
				lines = lines[:i]
				break
			}
		}
		if len(lines) != len(rec.Headers) {
			t.Fatalf("%q: %d header lines recorded, %d sent", raw, len(rec.Headers), len(lines))
		}
		for i, line := range lines {
			name, value, _ := strings.Cut(strings.TrimSuffix(line, "\r"), ":")
			if name != rec.Headers[i][0] || strings.Trim(value, " \t") != rec.Headers[i][1] {
				t.Fatalf("%q: line %d recorded as %q", raw, i, rec.Headers[i])
			}
		}

		again, againClose, err := readRequest(bufio.NewReader(strings.NewReader(serialize(rec))))
		if err != nil || !reflect.DeepEqual(again, rec) || againClose != closeAfter {
			t.Fatalf("%q: written out as %q it reads back as %+v, %v (%v); want %+v, %v", raw, serialize(rec), again, againClose, err, rec, closeAfter)
		}
		if n, chunked := framing(rec); !chunked && int64(len(rec.Body)) != n {
			t.Fatalf("%q: body of %d bytes accepted for Content-Length %d", raw, len(rec.Body), n)
		}
	})
}

// framing is how rec's headers frame its body: the last Content-Length, and
// whether the last Transfer-Encoding is chunked.
func framing(rec Record) (contentLength int64, chunked bool) {
	for _, h := range rec.Headers {
		switch strings.ToLower(h[0]) {
		case "content-length":
			contentLength, _ = strconv.ParseInt(h[1], 10, 64)
		case "transfer-encoding":
			chunked = strings.EqualFold(h[1], "chunked")
		}
	}
	return contentLength, chunked
}

// serialize writes rec as a request with the same lines, its body framed as
// its headers say.
func serialize(rec Record) string {
	var b strings.Builder
	b.WriteString(rec.Method + " " + rec.Target + " " + rec.Proto + "\r\n")
	for _, h := range rec.Headers {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	if _, chunked := framing(rec); chunked {
		if rec.Body != "" {
			b.WriteString(strconv.FormatInt(int64(len(rec.Body)), 16) + "\r\n" + rec.Body + "\r\n")
		}
		b.WriteString("0\r\n\r\n")
	} else {
		b.WriteString(rec.Body)
	}
	return b.String()
}

// Found by FuzzReadRequest: a body cut short by the connection closing was
// recorded as a shorter body, and a chunked body past maxBody was cut to
// maxBody, the rest read as its trailers.
func TestReadRequestWholeBodyOrError(t *testing.T) {
	chunk := func(n int) string {
		return strconv.FormatInt(int64(n), 16) + "\r\n" + strings.Repeat("x", n) + "\r\n0\r\n\r\n"
	}
	for raw, wantErr := range map[string]string{
		"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhi":                            "unexpected EOF",
		"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n":                              "unexpected EOF",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(maxBody+10): "chunked body over 1048576 bytes",
	} {
		if _, _, err := readRequest(bufio.NewReader(strings.NewReader(raw))); err == nil || err.Error() != wantErr {
			t.Errorf("%.60q: error %v, want %q", raw, err, wantErr)
		}
	}
	rec, _, err := readRequest(bufio.NewReader(strings.NewReader("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(maxBody))))
	if err != nil || len(rec.Body) != maxBody {
		t.Errorf("a chunked body of exactly maxBody: %d bytes, %v", len(rec.Body), err)
	}
}
