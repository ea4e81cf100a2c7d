// Command upstream is the e2e suite's stand-in for every real API: it answers
// each request with a JSON record of exactly what arrived (method, target,
// every header line in order, body), and keeps the records so the tests can
// also see what reached it when the client got nothing back.
//
// It reads HTTP/1.1 itself rather than through net/http, whose header map
// would lose the order and the spelling of the lines. It offers only
// http/1.1 over TLS, so Envoy's upstream connection is HTTP/1.1.
package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
)

// Record is what one request looked like on the wire.
type Record struct {
	Listener      string      `json:"listener"`        // "http" or "https"
	TLSServerName string      `json:"tls_server_name"` // SNI, "" without TLS
	Method        string      `json:"method"`
	Target        string      `json:"target"` // the request-target as sent
	Proto         string      `json:"proto"`
	Headers       [][2]string `json:"headers"` // every line, in order, name as sent
	Body          string      `json:"body"`
}

// idHeader tags a request with the test that sent it; records are kept by it.
const idHeader = "x-e2e-id"

// maxBody keeps a runaway request from filling memory.
const maxBody = 1 << 20

type store struct {
	mu   sync.Mutex
	byID map[string][]Record
}

func (s *store) add(r Record) {
	id := ""
	for _, h := range r.Headers {
		if strings.EqualFold(h[0], idHeader) {
			id = h[1]
			break
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[id] = append(s.byID[id], r)
}

func (s *store) get(id string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Record{}, s.byID[id]...)
}

func main() {
	httpAddr := flag.String("http", ":80", "plain HTTP listener")
	httpsAddr := flag.String("https", ":443", "TLS listener")
	controlAddr := flag.String("control", ":8081", "records API: GET /records?id=ID")
	certFile := flag.String("cert", "/certs/server.crt", "certificate chain for the TLS listener")
	keyFile := flag.String("key", "/certs/server.key", "its key")
	flag.Parse()

	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatal(err)
	}
	s := &store{byID: map[string][]Record{}}

	plain, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		log.Fatal(err)
	}
	secure, err := tls.Listen("tcp", *httpsAddr, &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"http/1.1"},
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		log.Fatal(err)
	}
	go serve(plain, "http", s)
	go serve(secure, "https", s)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /records", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.get(r.URL.Query().Get("id")))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	log.Printf("upstream: http %s, https %s, control %s", *httpAddr, *httpsAddr, *controlAddr)
	log.Fatal(http.ListenAndServe(*controlAddr, mux))
}

func serve(l net.Listener, listener string, s *store) {
	for {
		conn, err := l.Accept()
		if err != nil {
			log.Printf("%s accept: %v", listener, err)
			return
		}
		go handle(conn, listener, s)
	}
}

// handle answers requests on one connection until the client closes it or
// asks to.
func handle(conn net.Conn, listener string, s *store) {
	defer conn.Close()
	serverName := ""
	if tc, ok := conn.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			log.Printf("%s handshake: %v", listener, err)
			return
		}
		serverName = tc.ConnectionState().ServerName
	}
	br := bufio.NewReader(conn)
	for {
		rec, closeAfter, err := readRequest(br)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				log.Printf("%s read: %v", listener, err)
				_, _ = io.WriteString(conn, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}
			return
		}
		rec.Listener, rec.TLSServerName = listener, serverName
		s.add(rec)
		body, err := json.Marshal(rec)
		if err != nil {
			return
		}
		header := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n"
		if closeAfter {
			header += "Connection: close\r\n"
		}
		if _, err := io.WriteString(conn, header+"\r\n"+string(body)); err != nil || closeAfter {
			return
		}
	}
}

// readRequest reads one HTTP/1.1 request, keeping every header line.
func readRequest(br *bufio.Reader) (rec Record, closeAfter bool, err error) {
	line, err := readLine(br)
	if err != nil {
		return rec, false, err
	}
	parts := strings.SplitN(line, " ", 3)
	if len(parts) != 3 {
		return rec, false, fmt.Errorf("malformed request line %q", line)
	}
	rec.Method, rec.Target, rec.Proto = parts[0], parts[1], parts[2]
	rec.Headers = [][2]string{}
	contentLength, chunked := int64(0), false
	for {
		line, err := readLine(br)
		if err != nil {
			return rec, false, err
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return rec, false, fmt.Errorf("malformed header line %q", line)
		}
		value = strings.Trim(value, " \t")
		rec.Headers = append(rec.Headers, [2]string{name, value})
		switch strings.ToLower(name) {
		case "content-length":
			if contentLength, err = strconv.ParseInt(value, 10, 64); err != nil || contentLength < 0 || contentLength > maxBody {
				return rec, false, fmt.Errorf("bad content-length %q", value)
			}
		case "transfer-encoding":
			chunked = strings.EqualFold(value, "chunked")
		case "connection":
			closeAfter = closeAfter || strings.EqualFold(value, "close")
		}
	}
	var b []byte
	if !chunked {
		// A body cut short is an error, not a shorter body.
		b = make([]byte, contentLength)
		if _, err := io.ReadFull(br, b); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return rec, false, err
		}
	} else {
		// One byte past maxBody tells a body that is too long from one that fits.
		if b, err = io.ReadAll(io.LimitReader(httputil.NewChunkedReader(br), maxBody+1)); err != nil {
			return rec, false, err
		}
		if len(b) > maxBody {
			return rec, false, fmt.Errorf("chunked body over %d bytes", maxBody)
		}
		// The chunked reader stops at the last chunk; the trailer section
		// and its blank line still precede the next request.
		for {
			line, err := readLine(br)
			if err != nil {
				return rec, false, err
			}
			if line == "" {
				break
			}
		}
	}
	rec.Body = string(b)
	return rec, closeAfter || rec.Proto == "HTTP/1.0", nil
}

func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		if line != "" && errors.Is(err, io.EOF) {
			return "", io.ErrUnexpectedEOF
		}
		return "", err
	}
	if len(line) > 64<<10 {
		return "", errors.New("line too long")
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}
