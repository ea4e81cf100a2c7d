package main

import (
	"fmt"
	"testing"

	"github.com/secretgate/secretgate/policies"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// fakeHost stands in for Envoy in native tests: it holds one stream's request
// headers and records what the filter does with them.
type fakeHost struct {
	config   []byte
	headers  []policies.Header
	reply    *localReply
	logs     []logEntry
	metrics  []metric
	level    logLevel
	failNext string // name of a host call that fails once, to test error paths
}

type localReply struct {
	status  uint32
	details string
	body    []byte
	headers []policies.Header
}

type logEntry struct {
	level logLevel
	msg   string
}

type metric struct {
	name  string
	value int64
}

var _ hostCalls = (*fakeHost)(nil)

func (h *fakeHost) fail(call string) error {
	if h.failNext == call {
		h.failNext = ""
		return fmt.Errorf("%s: injected failure", call)
	}
	return nil
}

func (h *fakeHost) pluginConfiguration(size int) ([]byte, error) {
	if size != len(h.config) {
		return nil, fmt.Errorf("configuration size %d, have %d", size, len(h.config))
	}
	return h.config, h.fail("pluginConfiguration")
}

func (h *fakeHost) requestHeaderPairs() ([]byte, error) {
	if err := h.fail("requestHeaderPairs"); err != nil {
		return nil, err
	}
	return encodePairs(nil, h.headers), nil
}

func (h *fakeHost) setRequestHeaderPairs(pairs []byte) error {
	if err := h.fail("setRequestHeaderPairs"); err != nil {
		return err
	}
	hs, err := decodePairs(nil, append([]byte(nil), pairs...))
	h.headers = hs
	return err
}

func (h *fakeHost) sendLocalReply(status uint32, details string, body []byte, headerPairs []byte) error {
	hs, err := decodePairs(nil, append([]byte(nil), headerPairs...))
	if err != nil {
		return err
	}
	h.reply = &localReply{status: status, details: details, body: append([]byte(nil), body...), headers: hs}
	return nil
}

func (h *fakeHost) log(level logLevel, msg []byte) {
	h.logs = append(h.logs, logEntry{level, string(msg)})
}

func (h *fakeHost) logLevel() logLevel { return h.level }

func (h *fakeHost) defineCounter(name string) (uint32, error) {
	h.metrics = append(h.metrics, metric{name: name})
	return uint32(len(h.metrics) - 1), h.fail("defineCounter")
}

func (h *fakeHost) incrementMetric(id uint32, delta int64) error {
	if int(id) >= len(h.metrics) {
		return fmt.Errorf("no metric %d", id)
	}
	h.metrics[id].value += delta
	return nil
}

// nativeVM starts the filter the way Envoy does (vm start, root context,
// configure) against a fake host.
func nativeVM(t testing.TB, host *fakeHost) (*dispatcher, bool) {
	t.Helper()
	d := newDispatcher(&vmContext{host: host})
	d.onContextCreate(1, 0)
	if !d.onVMStart(0) {
		t.Fatal("vm start failed")
	}
	d.onContextCreate(2, 0)
	return d, d.onConfigure(2, len(host.config))
}

// request runs one stream's request headers through a configured filter.
func request(d *dispatcher, id uint32) types.Action {
	d.onContextCreate(id, 2)
	defer d.onDelete(id)
	defer d.onDone(id)
	return d.onRequestHeaders(id, 0, true)
}
