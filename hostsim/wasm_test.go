package hostsim_test

import "encoding/binary"

// Tiny hand-assembled modules for load-time checks that a Go guest cannot
// express (unknown imports, missing exports).

type wasmFunc struct {
	params, results string // "i" = i32, "I" = i64
}

type wasmImport struct {
	module, name string
	typ          wasmFunc
}

type wasmExport struct {
	name string
	typ  wasmFunc
	body []byte // instructions without the final `end`
}

func valType(c byte) byte {
	if c == 'I' {
		return 0x7e
	}
	return 0x7f
}

func leb(n int) []byte { return binary.AppendUvarint(nil, uint64(n)) }

func name(s string) []byte { return append(leb(len(s)), s...) }

func section(id byte, entries ...[]byte) []byte {
	body := leb(len(entries))
	for _, e := range entries {
		body = append(body, e...)
	}
	return append(append([]byte{id}, leb(len(body))...), body...)
}

func funcType(f wasmFunc) []byte {
	b := []byte{0x60}
	b = append(b, leb(len(f.params))...)
	for i := range f.params {
		b = append(b, valType(f.params[i]))
	}
	b = append(b, leb(len(f.results))...)
	for i := range f.results {
		b = append(b, valType(f.results[i]))
	}
	return b
}

// buildWasm assembles a module with one memory ("memory"), the imports and the
// exported functions, each function with its own type.
func buildWasm(imports []wasmImport, exports []wasmExport) []byte {
	var types, imps, funcs, exps, codes [][]byte
	for i, im := range imports {
		types = append(types, funcType(im.typ))
		e := append(append(name(im.module), name(im.name)...), 0x00)
		imps = append(imps, append(e, leb(i)...))
	}
	for i, ex := range exports {
		types = append(types, funcType(ex.typ))
		funcs = append(funcs, leb(len(imports)+i))
		exps = append(exps, append(append(name(ex.name), 0x00), leb(len(imports)+i)...))
		body := append([]byte{0x00}, ex.body...) // no locals
		body = append(body, 0x0b)
		codes = append(codes, append(leb(len(body)), body...))
	}
	exps = append(exps, append(name("memory"), 0x02, 0x00))
	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	out = append(out, section(1, types...)...)
	if len(imps) > 0 {
		out = append(out, section(2, imps...)...)
	}
	out = append(out, section(3, funcs...)...)
	out = append(out, section(5, []byte{0x00, 0x01})...) // one memory, min 1 page
	out = append(out, section(7, exps...)...)
	out = append(out, section(10, codes...)...)
	return out
}

var (
	abi021 = wasmExport{name: "proxy_abi_version_0_2_1", typ: wasmFunc{}}
	abi020 = wasmExport{name: "proxy_abi_version_0_2_0", typ: wasmFunc{}}
	// proxy_on_memory_allocate that always answers 1024.
	allocator = wasmExport{name: "proxy_on_memory_allocate", typ: wasmFunc{"i", "i"},
		body: []byte{0x41, 0x80, 0x08}} // i32.const 1024
)
