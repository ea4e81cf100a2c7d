package main

import (
	"bufio"
	"strings"
	"testing"
)

func TestReadRequestKeepsEveryLineInOrder(t *testing.T) {
	raw := "GET http://api.openai.com/v1/models?key=a%2Bb HTTP/1.1\r\n" +
		"host: api.openai.com\r\n" +
		"X-Api-Key: one\r\n" +
		"x-api-key:  two \r\n" +
		"Host: evil.example\r\n" +
		"\r\n"
	rec, closeAfter, err := readRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Method != "GET" || rec.Target != "http://api.openai.com/v1/models?key=a%2Bb" || rec.Proto != "HTTP/1.1" || closeAfter {
		t.Errorf("got %s %s %s close=%v", rec.Method, rec.Target, rec.Proto, closeAfter)
	}
	want := [][2]string{{"host", "api.openai.com"}, {"X-Api-Key", "one"}, {"x-api-key", "two"}, {"Host", "evil.example"}}
	if len(rec.Headers) != len(want) {
		t.Fatalf("headers %q, want %q", rec.Headers, want)
	}
	for i := range want {
		if rec.Headers[i] != want[i] {
			t.Errorf("line %d = %q, want %q", i, rec.Headers[i], want[i])
		}
	}
}

func TestReadRequestBodies(t *testing.T) {
	for name, tc := range map[string]struct {
		raw, body string
		close     bool
	}{
		"content-length": {"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET", "hello", false},
		"chunked":        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n", "hello", false},
		"close":          {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "", true},
		"http/1.0":       {"GET / HTTP/1.0\r\n\r\n", "", true},
	} {
		rec, closeAfter, err := readRequest(bufio.NewReader(strings.NewReader(tc.raw)))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if rec.Body != tc.body || closeAfter != tc.close {
			t.Errorf("%s: body %q close=%v, want %q close=%v", name, rec.Body, closeAfter, tc.body, tc.close)
		}
	}
}

// After a chunked body (with or without trailers) the next request on the
// connection is read from its request line.
func TestReadRequestAfterChunkedBody(t *testing.T) {
	for _, trailer := range []string{"", "X-Trailer: t\r\n"} {
		br := bufio.NewReader(strings.NewReader("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"5\r\nhello\r\n0\r\n" + trailer + "\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n"))
		first, _, err := readRequest(br)
		if err != nil || first.Body != "hello" {
			t.Fatalf("trailer %q: first request body %q, %v", trailer, first.Body, err)
		}
		second, _, err := readRequest(br)
		if err != nil || second.Method != "GET" || second.Target != "/b" {
			t.Errorf("trailer %q: second request %s %s, %v; want GET /b", trailer, second.Method, second.Target, err)
		}
	}
}

func TestReadRequestRejectsMalformed(t *testing.T) {
	for _, raw := range []string{
		"GET /\r\n\r\n",
		"GET / HTTP/1.1\r\nno colon\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a",
	} {
		if _, _, err := readRequest(bufio.NewReader(strings.NewReader(raw))); err == nil {
			t.Errorf("%q: accepted", raw)
		}
	}
}

func TestStoreKeepsRecordsByID(t *testing.T) {
	s := &store{byID: map[string][]Record{}}
	s.add(Record{Target: "/a", Headers: [][2]string{{"X-E2E-Id", "one"}}})
	s.add(Record{Target: "/b", Headers: [][2]string{{"x-e2e-id", "two"}}})
	s.add(Record{Target: "/c", Headers: [][2]string{{"x-e2e-id", "one"}, {"x-e2e-id", "two"}}})
	got := s.get("one")
	if len(got) != 2 || got[0].Target != "/a" || got[1].Target != "/c" {
		t.Errorf("records for one: %+v", got)
	}
	if len(s.get("none")) != 0 {
		t.Error("records for an unknown id")
	}
}
