//go:build wasip1

package main

// Ops for root contexts: which plugin a stream belongs to, and proxy_done.
// Root contexts whose configuration lists "done-pending" or "done-calls-done"
// ("ops:done-pending;...") change proxy_on_done (rootDone).

import (
	"strconv"
	"strings"
)

//go:wasmimport env proxy_done
func proxyDone() uint32

// rootConfigs is each root context's configuration; parents maps each live
// stream context to its root context.
var (
	rootConfigs = map[uint32]string{}
	parents     = map[uint32]uint32{}
)

// rootDone is proxy_on_done's answer for context id: false for a root context
// whose configuration lists "done-pending". One that lists "done-calls-done"
// calls proxy_done from there.
func rootDone(id uint32) bool {
	ops, found := strings.CutPrefix(rootConfigs[id], "ops:")
	listed := func(op string) bool { return found && strings.Contains(";"+ops+";", ";"+op+";") }
	if listed("done-calls-done") {
		lifecycleOp("proxy-done", "")
	}
	return !listed("done-pending")
}

// lifecycleOp runs one op of this file.
func lifecycleOp(name, arg string) {
	switch name {
	case "root-config": // root-config:<stream id>: the configuration of that stream's root context
		v, _ := strconv.ParseUint(arg, 10, 32)
		id := uint32(v)
		logf(2, "op=root-config stream="+arg, "root="+itoa(parents[id]), "config="+rootConfigs[parents[id]])
	case "proxy-done":
		logf(2, "op=proxy-done status="+itoa(proxyDone()))
	}
}
