package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// W3: with -echo nothing leaves the machine, CONNECT included: it gets the
// 403 the shipped envoy.yaml answers CONNECT with (no body), and no
// connection is made.
func TestEchoRefusesConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialled := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			dialled <- struct{}{}
			c.Close()
		}
	}()
	p, up := startOpenAIProxy(t, passConfig, "-echo", "-resolve", "tunnel.example="+ln.Addr().String())
	conn, err := net.Dial("tcp", p.url.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = io.WriteString(conn, "CONNECT tunnel.example:443 HTTP/1.1\r\nHost: tunnel.example:443\r\n"+
		"Proxy-Authorization: Bearer "+placeholder+"\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	// Empty, as Envoy's direct_response without a body.
	wantResponse(t, resp, string(body), http.StatusForbidden, "", "")
	if _, ok := resp.Header["Content-Type"]; ok || resp.ContentLength != 0 {
		t.Errorf("Content-Type %q, Content-Length %d; want none and 0", resp.Header["Content-Type"], resp.ContentLength)
	}
	// A tunnel dials before it answers (with 200, which the check above
	// catches); this also catches a dial that was accepted by now.
	select {
	case <-dialled:
		t.Error("-echo opened a connection for CONNECT")
	default:
	}
	assertAbsent(t, up, resp, string(body))
}

// W4: the echo shows every header line that would go upstream, empty values
// included, as "name: ". The twin to a host the secret does not allow keeps
// the placeholder.
func TestEchoShowsEmptyHeaderValues(t *testing.T) {
	p, _ := startOpenAIProxy(t, passConfig, "-echo")
	for host, auth := range map[string]string{"api.openai.com": realValue, "evil.example": placeholder} {
		conn, err := net.Dial("tcp", p.url.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = io.WriteString(conn, "GET http://"+host+"/v1/models HTTP/1.1\r\nHost: "+host+"\r\n"+
			"X-Empty:\r\nX-Twice: \r\nX-Twice: b\r\nAuthorization: Bearer "+placeholder+"\r\nConnection: close\r\n\r\n")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if host == "evil.example" && strings.Contains(string(body), realValue) {
			t.Fatal("the real value reached a host the secret does not allow")
		}
		// No User-Agent line: the client sent none, and net/http would add none.
		want := "GET /v1/models\n" +
			"host: " + host + "\n" +
			"authorization: Bearer " + auth + "\n" +
			"x-empty: \n" +
			"x-twice: \n" +
			"x-twice: b\n"
		if resp.StatusCode != http.StatusOK || string(body) != want {
			hide := strings.NewReplacer(realValue, "<real value>")
			t.Errorf("%s: response = %d %q; want 200 %q", host, resp.StatusCode, hide.Replace(string(body)), hide.Replace(want))
		}
	}
}

// Found by a new-user review: the echo left out the content-length line that
// goes upstream with a body. It shows the framing line net/http's transport
// writes: the length, chunked for a body of unknown length, 0 for an empty
// POST, PUT or PATCH, and none for a GET or DELETE without a body.
func TestEchoShowsFraming(t *testing.T) {
	p, _ := startOpenAIProxy(t, passConfig, "-echo")
	for raw, want := range map[string]string{
		"POST /v1 HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 5\r\n\r\nhello":                            "POST /v1\nhost: evil.example\ncontent-length: 5\n",
		"POST /v1 HTTP/1.1\r\nHost: evil.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n": "POST /v1\nhost: evil.example\ntransfer-encoding: chunked\n",
		"PUT /v1 HTTP/1.1\r\nHost: evil.example\r\n\r\n":                                                       "PUT /v1\nhost: evil.example\ncontent-length: 0\n",
		"DELETE /v1 HTTP/1.1\r\nHost: evil.example\r\n\r\n":                                                    "DELETE /v1\nhost: evil.example\n",
		"GET /v1 HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 0\r\n\r\n":                                  "GET /v1\nhost: evil.example\n",
	} {
		resp, body := rawExchange(t, p, raw)
		if resp.StatusCode != http.StatusOK || body != want {
			t.Errorf("%q: response = %d %q; want 200 %q", raw, resp.StatusCode, body, want)
		}
	}
}
