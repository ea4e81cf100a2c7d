package main

import (
	"math/rand/v2"
	"testing"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// The table must agree with a Go map under any sequence of operations,
// including deletions inside long probe runs.
func TestCtxTableAgreesWithMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var table ctxTable
	ref := map[uint32]types.HttpContext{}
	contexts := []types.HttpContext{&types.DefaultHttpContext{}, &types.DefaultHttpContext{}}
	for step := range 200_000 {
		id := uint32(rng.IntN(300) + 1) // few ids: long runs, many collisions
		switch rng.IntN(3) {
		case 0:
			v := contexts[rng.IntN(2)]
			table.put(id, v)
			ref[id] = v
		case 1:
			table.delete(id)
			delete(ref, id)
		}
		got, ok := table.get(id)
		want, wantOK := ref[id]
		if ok != wantOK || got != want || table.count != len(ref) {
			t.Fatalf("step %d id %d: get = %v %v, want %v %v; count %d, want %d", step, id, got, ok, want, wantOK, table.count, len(ref))
		}
	}
	for id, want := range ref {
		if got, ok := table.get(id); !ok || got != want {
			t.Fatalf("id %d lost", id)
		}
	}
}

// Streams come and go with ever larger ids; the table stays at its peak size.
func TestCtxTableSteadyStateDoesNotAllocate(t *testing.T) {
	var table ctxTable
	h := &types.DefaultHttpContext{}
	id := uint32(1)
	cycle := func() {
		table.put(id, h)
		table.put(id+1, h)
		table.get(id)
		table.delete(id)
		table.delete(id + 1)
		id += 2
	}
	cycle()
	if allocs := testing.AllocsPerRun(10_000, cycle); allocs != 0 {
		t.Fatalf("%v allocations per stream", allocs)
	}
}
