package hostsim

import (
	"bytes"
	"compress/zlib"
	"io"
)

// Foreign functions (proxy_call_foreign_function), as cpp-host src/exports.cc
// call_foreign_function runs those Envoy registers in
// source/extensions/common/wasm/foreign.cc. hostsim has the deterministic ones
// that need no Envoy state: compress, uncompress (zlib) and clear_route_cache
// (no route cache here). sign, verify_signature, set_envoy_filter_state,
// declare_property and the expr_* functions are NotFound.
var foreignFunctions = map[string]func(vm *VM, args []byte) ([]byte, Status){
	"compress":          foreignCompress,
	"uncompress":        foreignUncompress,
	"clear_route_cache": func(*VM, []byte) ([]byte, Status) { return nil, StatusOK },
}

// foreignCompress is zlib's compress() at its default level. The stream is
// valid zlib, though not byte-for-byte what C zlib writes.
func foreignCompress(_ *VM, args []byte) ([]byte, Status) {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	if _, err := w.Write(args); err != nil {
		return nil, StatusSerializationFailure
	}
	if err := w.Close(); err != nil {
		return nil, StatusSerializationFailure
	}
	return b.Bytes(), StatusOK
}

// foreignUncompress is zlib's uncompress(): anything but one whole zlib stream
// (empty or truncated input included) is SerializationFailure.
func foreignUncompress(_ *VM, args []byte) ([]byte, Status) {
	r, err := zlib.NewReader(bytes.NewReader(args))
	if err != nil {
		return nil, StatusSerializationFailure
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, StatusSerializationFailure
	}
	return out, StatusOK
}

func (vm *VM) proxyCallForeignFunction(s []uint64) {
	const fn = "proxy_call_foreign_function"
	name, okName := vm.readString(uint32(s[0]), uint32(s[1]))
	args, okArgs := vm.read(uint32(s[2]), uint32(s[3]))
	if !okName || !okArgs {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "name or arguments are outside memory")
		return
	}
	f := foreignFunctions[name]
	if f == nil {
		vm.misuse(s, fn, StatusNotFound, "no foreign function %q in hostsim", name)
		return
	}
	result, st := f(vm, bytes.Clone(args))
	// exports.cc writes the results (pointer 0 and size 0 when there are none)
	// whatever the function returned, and only to non-zero pointers.
	resultsPtr, sizePtr := uint32(s[4]), uint32(s[5])
	var p uint32
	if len(result) > 0 && resultsPtr != 0 {
		if p = vm.malloc(uint32(len(result))); p == 0 || !vm.write(p, result) {
			vm.misuse(s, fn, StatusInvalidMemoryAccess, "malloc(%d) failed", len(result))
			return
		}
	}
	if resultsPtr != 0 && !vm.writeU32(resultsPtr, p) || sizePtr != 0 && !vm.writeU32(sizePtr, uint32(len(result))) {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "return pointers are outside memory")
		return
	}
	if st != StatusOK {
		vm.misuse(s, fn, st, "%s failed", name)
		return
	}
	ok(s)
}
