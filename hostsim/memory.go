package hostsim

import "encoding/binary"

// Guest memory access, bounds-checked like cpp-host's WasmVm::getMemory/setWord:
// a range past the end of memory is an error, never a partial access.

// read returns a view of guest memory; it is invalidated by the next malloc.
func (vm *VM) read(ptr, size uint32) ([]byte, bool) {
	if uint64(ptr)+uint64(size) > uint64(vm.mem.Size()) {
		return nil, false
	}
	if size == 0 {
		return []byte{}, true
	}
	return vm.mem.Read(ptr, size)
}

// readString copies guest memory into a string.
func (vm *VM) readString(ptr, size uint32) (string, bool) {
	b, ok := vm.read(ptr, size)
	if !ok {
		return "", false
	}
	return string(b), true
}

func (vm *VM) write(ptr uint32, b []byte) bool {
	if uint64(ptr)+uint64(len(b)) > uint64(vm.mem.Size()) {
		return false
	}
	return vm.mem.Write(ptr, b)
}

func (vm *VM) writeU32(ptr, v uint32) bool {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return vm.write(ptr, b[:])
}

func (vm *VM) writeU64(ptr uint32, v uint64) bool {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return vm.write(ptr, b[:])
}

// copyOut is cpp-host WasmBase::copyToPointerSize: allocate len(b) bytes in the
// module (none for empty data, which yields pointer 0), copy b there and write
// the pointer and size. False means InvalidMemoryAccess.
func (vm *VM) copyOut(b []byte, ptrPtr, sizePtr uint32) bool {
	var p uint32
	if len(b) > 0 {
		if p = vm.malloc(uint32(len(b))); p == 0 || !vm.write(p, b) {
			return false
		}
	}
	return vm.writeU32(ptrPtr, p) && vm.writeU32(sizePtr, uint32(len(b)))
}

func (vm *VM) copyOutString(s string, ptrPtr, sizePtr uint32) bool {
	var p uint32
	if len(s) > 0 {
		if p = vm.malloc(uint32(len(s))); p == 0 || !vm.mem.WriteString(p, s) {
			return false
		}
	}
	return vm.writeU32(ptrPtr, p) && vm.writeU32(sizePtr, uint32(len(s)))
}
