package main

import "github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

// ctxTable maps stream context ids to their contexts with open addressing,
// linear probing and backward-shift deletion: it never holds tombstones, so
// once grown to the peak number of open streams it neither allocates nor
// rehashes. In Go's wasm output a built-in map operation costs about as much
// as scanning a header line, and a stream makes four of them.
type ctxTable struct {
	keys  []uint32 // 0 marks an empty slot: the host never uses context id 0
	vals  []types.HttpContext
	count int
	shift uint32 // 32 - log2(len(keys))
}

func (t *ctxTable) slot(id uint32) int { return int(id * 0x9E3779B1 >> t.shift) }

func (t *ctxTable) get(id uint32) (types.HttpContext, bool) {
	if t.count == 0 {
		return nil, false
	}
	mask := len(t.keys) - 1
	for i := t.slot(id); t.keys[i] != 0; i = (i + 1) & mask {
		if t.keys[i] == id {
			return t.vals[i], true
		}
	}
	return nil, false
}

func (t *ctxTable) put(id uint32, v types.HttpContext) {
	if 2*(t.count+1) > len(t.keys) {
		t.grow()
	}
	mask := len(t.keys) - 1
	i := t.slot(id)
	for t.keys[i] != 0 && t.keys[i] != id {
		i = (i + 1) & mask
	}
	if t.keys[i] == 0 {
		t.count++
	}
	t.keys[i], t.vals[i] = id, v
}

// delete removes id and reports whether it was there.
func (t *ctxTable) delete(id uint32) bool {
	if t.count == 0 {
		return false
	}
	mask := len(t.keys) - 1
	i := t.slot(id)
	for t.keys[i] != id {
		if t.keys[i] == 0 {
			return false
		}
		i = (i + 1) & mask
	}
	// Shift later entries of the probe run back into the hole, so lookups
	// never need tombstones.
	for j := (i + 1) & mask; t.keys[j] != 0; j = (j + 1) & mask {
		home := t.slot(t.keys[j])
		if (j-home)&mask >= (j-i)&mask {
			t.keys[i], t.vals[i] = t.keys[j], t.vals[j]
			i = j
		}
	}
	t.keys[i], t.vals[i] = 0, nil
	t.count--
	return true
}

func (t *ctxTable) grow() {
	keys, vals := t.keys, t.vals
	size := max(16, 2*len(keys))
	t.keys, t.vals, t.count = make([]uint32, size), make([]types.HttpContext, size), 0
	t.shift = 32
	for s := size; s > 1; s >>= 1 {
		t.shift--
	}
	for i, k := range keys {
		if k != 0 {
			t.put(k, vals[i])
		}
	}
}
