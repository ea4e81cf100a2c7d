package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/secretgate/secretgate/hostsim"
)

// devProxy is an HTTP forward proxy that runs each request through one
// proxy-wasm VM. Like an Envoy worker thread, the VM runs one callback at a
// time while many streams are open: mu serialises the callbacks, not the
// streams, so a slow upstream or a long event stream never blocks others.
type devProxy struct {
	// ctx is what guest callbacks run under; never a request's context, so
	// a client going away cannot abort a callback halfway.
	ctx      context.Context
	module   *hostsim.Module
	logger   *log.Logger
	resolve  resolveMap
	upstream upstreamSender
	echo     bool // -echo: CONNECT is refused too, so nothing leaves the machine
	dialer   net.Dialer

	mu sync.Mutex
	vm *hostsim.VM // nil once closed

	timers timerLoop // drives proxy_on_tick (timers.go)

	tunnelsMu sync.Mutex
	tunnels   map[net.Conn]struct{}
}

// newDevProxy starts a VM of module with cfg; the proxy owns module from
// then on. A configuration the module rejects is an error, as Envoy refuses
// to load it.
// upstreamSender sends a filtered request on: an http.Transport, or echoUpstream.
type upstreamSender interface {
	RoundTrip(*http.Request) (*http.Response, error)
	CloseIdleConnections()
}

func newDevProxy(ctx context.Context, module *hostsim.Module, cfg hostsim.PluginConfig, resolve resolveMap, echo bool, logger *log.Logger) (*devProxy, error) {
	p := &devProxy{
		ctx:     ctx,
		module:  module,
		logger:  logger,
		resolve: resolve,
		upstream: &http.Transport{
			Proxy:               nil, // never chain to $HTTP_PROXY, which may well be this proxy
			DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:   true,
			TLSHandshakeTimeout: 10 * time.Second,
			DisableCompression:  true, // forward bodies as the upstream sent them
			IdleConnTimeout:     90 * time.Second,
		},
		dialer:  net.Dialer{Timeout: 30 * time.Second},
		tunnels: map[net.Conn]struct{}{},
	}
	if echo {
		p.upstream, p.echo = echoUpstream{}, true
	}
	// Print as the guest logs, at or above the level it is told (as Envoy
	// filters by its own level); the VM keeps nothing, so memory stays flat.
	minLevel := cfg.LogLevel
	cfg.OnLog = func(e hostsim.LogEntry) {
		if e.Level >= minLevel {
			logger.Printf("[wasm %s] %s", e.Level, e.Message)
		}
	}
	var err error
	p.vm, err = module.NewVM(ctx, cfg)
	if err != nil {
		if p.vm != nil {
			_ = p.vm.Close(ctx)
		}
		_ = module.Close(ctx)
		return nil, err
	}
	p.timers.start(p)
	return p, nil
}

// Close closes open tunnels, then the VM and the module. Requests still in
// flight get 503 from then on.
func (p *devProxy) Close() error {
	p.tunnelsMu.Lock()
	for c := range p.tunnels {
		c.Close()
	}
	p.tunnels = nil
	p.tunnelsMu.Unlock()
	p.timers.stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.vm == nil {
		return nil
	}
	err := errors.Join(p.vm.Close(p.ctx), p.module.Close(p.ctx))
	p.vm = nil
	p.upstream.CloseIdleConnections()
	return err
}

// call runs fn, which calls into the VM, with the VM to itself. It reports
// false, without running fn, once the proxy is closed.
func (p *devProxy) call(fn func(vm *hostsim.VM)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.vm == nil {
		return false
	}
	fn(p.vm)
	return true
}

func (p *devProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var (
		stream *hostsim.Stream
		res    hostsim.Result
		err    error
	)
	// Envoy's codec answers these before any filter runs, and closes the
	// connection. The target is not logged: it may hold a placeholder.
	if !r.ProtoAtLeast(1, 1) {
		// accept_http_10 is false by default.
		p.logger.Printf("devproxy: %s over %s: 426", r.Method, r.Proto)
		w.Header().Set("Connection", "close")
		writeText(w, http.StatusUpgradeRequired, "devproxy: HTTP/1.0 is not accepted; use HTTP/1.1\n")
		return
	}
	headers, ok := requestHeaders(r)
	if !ok {
		p.logger.Printf("devproxy: %s with a request target that is neither origin-form, absolute-form with a host, nor valid for the method, or that has a #fragment: 400", r.Method)
		w.Header().Set("Connection", "close")
		writeText(w, http.StatusBadRequest, "devproxy: invalid request target\n")
		return
	}
	if isUpgrade(r.Header) {
		// Envoy without upgrade_configs answers an upgrade with 403
		// (upgrade_failed) before any filter runs. The Upgrade value is not
		// logged: it is the client's and may hold a placeholder.
		p.logger.Printf("devproxy: %s asking for a protocol upgrade: 403 (no upgrade is allowed)", r.Method)
		w.Header().Set("Connection", "close")
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if r.Method == http.MethodConnect {
		// Only a tunnel (which hijacks the connection) completes a CONNECT:
		// answered any other way, its stream stays open for bytes that never
		// come as a request, so Envoy resets it, which closes an HTTP/1
		// connection (conn_manager_impl.cc, doEndStream). Bytes written after
		// the CONNECT must not be served as a new request.
		w.Header().Set("Connection", "close")
	}
	endOfStream := r.Method != http.MethodConnect && r.ContentLength == 0
	if !p.call(func(vm *hostsim.VM) {
		stream = vm.NewStream(p.ctx)
		res, err = stream.RequestHeaders(headers, endOfStream)
	}) {
		writeText(w, http.StatusServiceUnavailable, "devproxy: shutting down\n")
		return
	}
	defer p.call(func(*hostsim.VM) {
		if err := stream.Close(); err != nil {
			p.logger.Printf("devproxy: closing the stream: %v", err)
		}
	})
	if !p.proceed(w, res, err, "request headers") {
		return
	}
	if r.Method == http.MethodConnect {
		if p.echo {
			authority, _ := pseudo(res.Headers, ":authority")
			p.relay(w, r, stream, connectRefused(), authority)
			return
		}
		p.tunnel(w, r, stream, res.Headers)
		return
	}
	p.forward(w, r, stream, res.Headers)
}

// proceed writes the filter's local reply, if any, and reports whether the
// stream goes on. Whatever stops the chain stops the request: a filter error
// never lets it through unfiltered, and the dev proxy cannot resume a paused
// stream (Envoy would hold it until the module resumes it or it times out).
func (p *devProxy) proceed(w http.ResponseWriter, res hostsim.Result, err error, phase string) bool {
	switch {
	case res.LocalReply != nil:
		writeLocalReply(w, res.LocalReply)
		return false
	case err != nil:
		p.logger.Printf("devproxy: filter failed on %s: %v", phase, err)
	case res.Reset:
		panic(http.ErrAbortHandler) // the module closed the stream: reset the connection
	case !res.Continue:
		p.logger.Printf("devproxy: filter paused on %s (returned %v) without a local reply; the dev proxy cannot resume it", phase, res.Action)
	default:
		return true
	}
	writeText(w, http.StatusInternalServerError, "devproxy: filter error\n")
	return false
}

// forward sends the request upstream with the headers the filter produced,
// streams the request body with the trailers the filter lets through, and
// relays the response.
func (p *devProxy) forward(w http.ResponseWriter, r *http.Request, stream *hostsim.Stream, h hostsim.Headers) {
	req, err := p.upstreamRequest(r, h)
	if err != nil {
		p.logger.Printf("devproxy: %v", err)
		writeText(w, http.StatusInternalServerError, "devproxy: filter error\n")
		return
	}
	var trailers *requestTrailers
	if req.Body != nil && r.ContentLength < 0 { // only a chunked body ends in trailers
		trailers = &requestTrailers{ReadCloser: req.Body, p: p, r: r, stream: stream, out: http.Header{}}
		req.Body, req.Trailer = trailers, trailers.out
	}
	resp, err := p.upstream.RoundTrip(req)
	if stopped := trailers.outcome(); stopped != nil {
		if err == nil {
			resp.Body.Close()
		}
		p.proceed(w, stopped.res, stopped.err, "request trailers")
		return
	}
	if err != nil {
		if r.Context().Err() == nil {
			p.logger.Printf("devproxy: upstream %s: %v", req.Host, err)
		}
		writeText(w, http.StatusBadGateway, "devproxy: upstream request failed\n")
		return
	}
	p.relay(w, r, stream, resp, req.Host)
}

// relay runs the response headers through the filter, then writes the
// response and streams its body back, flushing as it arrives.
func (p *devProxy) relay(w http.ResponseWriter, r *http.Request, stream *hostsim.Stream, resp *http.Response, authority string) {
	defer resp.Body.Close()

	var (
		res hostsim.Result
		err error
	)
	if !p.call(func(*hostsim.VM) {
		res, err = stream.ResponseHeaders(responseHeaders(resp), resp.Body == http.NoBody)
	}) {
		writeText(w, http.StatusServiceUnavailable, "devproxy: shutting down\n")
		return
	}
	if !p.proceed(w, res, err, "response headers") {
		return
	}
	statusText, _ := pseudo(res.Headers, ":status")
	status, err := strconv.Atoi(statusText)
	if err != nil || status < 100 || status > 999 {
		p.logger.Printf("devproxy: filter left :status %q", statusText)
		writeText(w, http.StatusInternalServerError, "devproxy: filter error\n")
		return
	}
	copyHeaders(w.Header(), res.Headers)
	keepContentType(w.Header())
	w.WriteHeader(status)

	flusher := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			_ = flusher.Flush()
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			if r.Context().Err() == nil {
				p.logger.Printf("devproxy: upstream %s: reading the response body: %v", authority, err)
			}
			// Abort the client connection so a cut body never looks complete.
			panic(http.ErrAbortHandler)
		}
	}
}

// upstreamRequest builds the request to send upstream from the filter's
// headers: :method, :path (its bytes as they are) and :authority as Host. A
// -resolve mapping sends it over plain HTTP to a local address; otherwise it
// goes over TLS to the authority itself.
func (p *devProxy) upstreamRequest(r *http.Request, h hostsim.Headers) (*http.Request, error) {
	method, okMethod := pseudo(h, ":method")
	authority, okAuthority := pseudo(h, ":authority")
	path, okPath := pseudo(h, ":path")
	if !okMethod || !okAuthority || !okPath {
		return nil, errors.New("the filter left no :method, :authority or :path")
	}
	// The path may hold an injected value: errors here never quote it.
	if !strings.HasPrefix(path, "/") && path != "*" {
		return nil, errors.New("the filter left a :path that is neither origin-form nor *")
	}
	// Opaque is sent byte for byte.
	u := &url.URL{Scheme: "https", Host: authority, Opaque: path}
	if strings.HasPrefix(path, "//") {
		// As Opaque, a leading "//" would be sent as an authority; parsed as a
		// request target it stays a path, re-encoded only where net/http's
		// server would not have accepted it anyway.
		target, err := url.ParseRequestURI(path)
		if err != nil {
			return nil, errors.New("the filter left a :path that does not parse")
		}
		u.Opaque, u.Path, u.RawPath, u.RawQuery = "", target.Path, target.RawPath, target.RawQuery
	}
	if addr, ok := p.resolve.lookup(authority); ok {
		u.Scheme, u.Host = "http", addr
	}
	req := (&http.Request{
		Method:        method,
		URL:           u,
		Host:          authority,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        make(http.Header, len(h)),
		ContentLength: r.ContentLength,
	}).WithContext(r.Context())
	if r.ContentLength != 0 {
		req.Body = r.Body
	}
	// net/http writes Host and Content-Length from the fields above.
	copyHeaders(req.Header, h, "host", "content-length")
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header["User-Agent"] = []string{""} // an empty value stops net/http adding its own
	}
	return req, nil
}

// tunnel answers a CONNECT the filter let through: it connects to the
// authority (or its -resolve address) and copies bytes both ways, uninspected.
func (p *devProxy) tunnel(w http.ResponseWriter, r *http.Request, stream *hostsim.Stream, h hostsim.Headers) {
	authority, _ := pseudo(h, ":authority")
	addr := authority
	if mapped, ok := p.resolve.lookup(authority); ok {
		addr = mapped
	}
	upstream, err := p.dialer.DialContext(r.Context(), "tcp", addr)
	if err != nil {
		p.logger.Printf("devproxy: tunnel to %s: %v", authority, err)
		writeText(w, http.StatusBadGateway, "devproxy: upstream connect failed\n")
		return
	}
	defer upstream.Close()

	var res hostsim.Result
	if !p.call(func(*hostsim.VM) {
		res, err = stream.ResponseHeaders(hostsim.Headers{{Name: ":status", Value: "200"}}, false)
	}) {
		writeText(w, http.StatusServiceUnavailable, "devproxy: shutting down\n")
		return
	}
	if !p.proceed(w, res, err, "response headers") {
		return
	}
	client, buffered, err := http.NewResponseController(w).Hijack()
	if err != nil {
		p.logger.Printf("devproxy: tunnel to %s: %v", authority, err)
		writeText(w, http.StatusInternalServerError, "devproxy: cannot tunnel on this connection\n")
		return
	}
	defer client.Close()
	if !p.track(client, upstream) {
		return
	}
	defer p.untrack(client, upstream)
	if _, err := io.WriteString(client, "HTTP/1.1 200 OK\r\n\r\n"); err != nil {
		return
	}
	pipe(client, buffered.Reader, upstream)
}

// pipe copies both ways until both directions end, passing each end-of-stream on.
func pipe(client net.Conn, fromClient *bufio.Reader, upstream net.Conn) {
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(client, upstream)
		closeWrite(client)
		close(done)
	}()
	_, _ = io.Copy(upstream, fromClient)
	closeWrite(upstream)
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// track registers open tunnel connections so Close can end them; it reports
// false once the proxy is closed.
func (p *devProxy) track(conns ...net.Conn) bool {
	p.tunnelsMu.Lock()
	defer p.tunnelsMu.Unlock()
	if p.tunnels == nil {
		return false
	}
	for _, c := range conns {
		p.tunnels[c] = struct{}{}
	}
	return true
}

func (p *devProxy) untrack(conns ...net.Conn) {
	p.tunnelsMu.Lock()
	defer p.tunnelsMu.Unlock()
	for _, c := range conns {
		delete(p.tunnels, c)
	}
}

// writeLocalReply writes a local reply in the form hostsim gave it, Envoy's:
// :status comes from the headers (a gRPC request gets 200 and grpc-status),
// and a nil body means the headers end the stream (gRPC, HEAD, empty body),
// where a HEAD reply still declares the length of the body it leaves out.
func writeLocalReply(w http.ResponseWriter, reply *hostsim.LocalReply) {
	copyHeaders(w.Header(), reply.Headers, "content-length")
	keepContentType(w.Header())
	status := reply.Status
	if v, _ := reply.Headers.Get(":status"); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s >= 100 && s <= 999 {
			status = s
		}
	}
	length := len(reply.Body)
	if reply.Body == nil {
		v, _ := reply.Headers.Get("content-length")
		length, _ = strconv.Atoi(v)
	}
	w.Header().Set("Content-Length", strconv.Itoa(max(length, 0)))
	w.WriteHeader(status)
	_, _ = w.Write(reply.Body)
}

// writeText writes the dev proxy's own short replies. They never echo
// anything from the request.
func writeText(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// keepContentType stops net/http from sniffing a Content-Type the filter or
// the upstream did not send.
func keepContentType(h http.Header) {
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil
	}
}
