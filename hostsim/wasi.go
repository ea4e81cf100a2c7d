package hostsim

import (
	"crypto/rand"
	"encoding/binary"
	"slices"
)

// WASIProfile is the set of WASI functions the simulated Envoy links, which
// depends on the proxy-wasm-cpp-host version Envoy pins. Compile uses WASI2026
// unless WithWASI says otherwise.
type WASIProfile int

const (
	// WASI2025 is cpp-host before commit 94091cd (April 2026), e.g. beb8a4e of
	// January 2026: 18 functions; poll_oneoff fails with ENOSYS, which the Go
	// runtime turns into a fatal error when it sleeps.
	WASI2025 WASIProfile = iota
	// WASI2026 is cpp-host from 94091cd ("add all wasi hostcalls used by Go SDK"),
	// as in Envoy v1.40 (cpp-host f2db56a): every WASI preview1 function Go's syscall
	// package imports, poll_oneoff succeeds with no events, and more of them may run
	// during start-up and malloc. The default.
	WASI2026
)

// wasiFunctions is cpp-host FOR_ALL_WASI_FUNCTIONS with the behaviour of
// src/exports.cc; module is filled in by the caller.
func wasiFunctions(p WASIProfile) []hostFunc {
	fs := []hostFunc{
		// fd_write(fd, iovs, iovs_len, return_written): fd 1 logs at info, fd 2 at error,
		// one trailing newline removed; other fds EBADF.
		{name: "fd_write", sig: "iiii->i", impl: (*VM).wasiFdWrite, duringStart: true, duringMalloc: true},
		{name: "fd_read", sig: "iiii->i", impl: errno(errnoNosys)},
		// fd_seek and fd_close succeed without doing anything (Envoy logs them at trace).
		{name: "fd_seek", sig: "iIii->i", impl: errno(errnoSuccess)},
		{name: "fd_close", sig: "i->i", impl: errno(errnoSuccess)},
		{name: "fd_fdstat_get", sig: "ii->i", impl: (*VM).wasiFdFdstatGet, duringStart: true},
		{name: "fd_fdstat_set_flags", sig: "ii->i", impl: errno(errnoNosys), duringStart: true},
		{name: "environ_get", sig: "ii->i", impl: (*VM).wasiEnvironGet, duringStart: true},
		{name: "environ_sizes_get", sig: "ii->i", impl: (*VM).wasiEnvironSizesGet, duringStart: true},
		// args are always empty.
		{name: "args_get", sig: "ii->i", impl: errno(errnoSuccess), duringStart: true},
		{name: "args_sizes_get", sig: "ii->i", impl: (*VM).wasiArgsSizesGet, duringStart: true},
		// clock_time_get(id, precision, return_time): realtime (0) and monotonic (1) only.
		{name: "clock_time_get", sig: "iIi->i", impl: (*VM).wasiClockTimeGet, duringStart: true, duringMalloc: true},
		// random_get(buf, len): EINVAL above 64 KiB.
		{name: "random_get", sig: "ii->i", impl: (*VM).wasiRandomGet, duringStart: true},
		{name: "sched_yield", sig: "->i", impl: errno(errnoSuccess)},
		{name: "poll_oneoff", sig: "iiii->i", impl: errno(errnoNosys)},
		// proc_exit(code) returns to the module (Envoy only logs it).
		{name: "proc_exit", sig: "i->", impl: func(*VM, []uint64) {}},
		{name: "path_open", sig: "iiiiiIIii->i", impl: errno(errnoNoent)},
		{name: "fd_prestat_get", sig: "ii->i", impl: errno(errnoBadf), duringStart: true},
		{name: "fd_prestat_dir_name", sig: "iii->i", impl: errno(errnoNosys), duringStart: true},
	}
	if p != WASI2026 {
		return fs
	}
	for i := range fs {
		if fs[i].name == "poll_oneoff" {
			fs[i] = hostFunc{name: "poll_oneoff", sig: "iiii->i", impl: (*VM).wasiPollOneoff, duringStart: true, duringMalloc: true}
		}
	}
	// Signatures are cpp-host's, not WASI's: its path_link and path_symlink take one
	// argument fewer than WASI preview1, so modules importing those fail to link there too.
	stdio := stdioOnly(errnoSuccess)
	fs = append(fs,
		hostFunc{name: "fd_fdstat_set_rights", sig: "iII->i", impl: stdio},
		hostFunc{name: "clock_res_get", sig: "ii->i", impl: (*VM).wasiClockResGet},
		hostFunc{name: "fd_advise", sig: "iIIi->i", impl: errno(errnoSuccess)},
		hostFunc{name: "fd_allocate", sig: "iII->i", impl: stdio},
		hostFunc{name: "fd_datasync", sig: "i->i", impl: stdio},
		hostFunc{name: "fd_filestat_set_size", sig: "iI->i", impl: stdio},
		hostFunc{name: "fd_filestat_set_times", sig: "iIIi->i", impl: stdio},
		hostFunc{name: "fd_pread", sig: "iiiIi->i", impl: errno(errnoNosys)},
		hostFunc{name: "fd_pwrite", sig: "iiiIi->i", impl: (*VM).wasiFdWrite},
		hostFunc{name: "fd_readdir", sig: "iiiIi->i", impl: zeroWordThen(4, 20)},
		hostFunc{name: "fd_renumber", sig: "ii->i", impl: (*VM).wasiFdRenumber},
		hostFunc{name: "fd_sync", sig: "i->i", impl: stdio},
		hostFunc{name: "fd_tell", sig: "ii->i", impl: (*VM).wasiFdTell},
		hostFunc{name: "path_create_directory", sig: "iii->i", impl: errno(errnoNotsup)},
		hostFunc{name: "path_filestat_set_times", sig: "iiiiIIi->i", impl: errno(errnoNotsup)},
		hostFunc{name: "path_link", sig: "iiiiii->i", impl: errno(errnoNotsup)},
		hostFunc{name: "path_readlink", sig: "iiiiii->i", impl: zeroWordThen(5, errnoNotsup)},
		hostFunc{name: "path_remove_directory", sig: "iii->i", impl: errno(errnoNotsup)},
		hostFunc{name: "path_rename", sig: "iiiiii->i", impl: errno(errnoNotsup)},
		hostFunc{name: "path_symlink", sig: "iiii->i", impl: errno(errnoNotsup)},
		hostFunc{name: "path_unlink_file", sig: "iii->i", impl: errno(errnoNotsup)},
		hostFunc{name: "sock_accept", sig: "iii->i", impl: zeroU64Then(2, errnoNotsup)},
		hostFunc{name: "sock_recv", sig: "iiiiii->i", impl: (*VM).wasiSockRecv},
		hostFunc{name: "sock_send", sig: "iiiii->i", impl: zeroWordThen(4, errnoNotsup)},
		hostFunc{name: "sock_shutdown", sig: "ii->i", impl: errno(errnoNotsup)},
		hostFunc{name: "path_filestat_get", sig: "iiiii->i", impl: errno(errnoNotsup)},
		hostFunc{name: "fd_filestat_get", sig: "ii->i", impl: errno(errnoBadf)},
	)
	// cpp-host 94091cd lets every WASI function except sched_yield, fd_read, fd_seek,
	// fd_close, proc_exit and path_open run during start-up.
	notAtStart := []string{"sched_yield", "fd_read", "fd_seek", "fd_close", "proc_exit", "path_open"}
	for i := range fs {
		if !slices.Contains(notAtStart, fs[i].name) {
			fs[i].duringStart = true
		}
	}
	return fs
}

func errno(code uint32) func(*VM, []uint64) {
	return func(_ *VM, s []uint64) { s[0] = uint64(code) }
}

// stdioOnly returns code for fds 1 and 2 and EBADF for any other fd.
func stdioOnly(code uint32) func(*VM, []uint64) {
	return func(_ *VM, s []uint64) {
		if fd := uint32(s[0]); fd != 1 && fd != 2 {
			s[0] = errnoBadf
			return
		}
		s[0] = uint64(code)
	}
}

func (vm *VM) wasiFdWrite(s []uint64) {
	fd, iovs, iovsLen, writtenPtr := uint32(s[0]), uint32(s[1]), uint32(s[2]), uint32(s[len(s)-1])
	var level LogLevel
	switch fd {
	case 1:
		level = LogInfo
	case 2:
		level = LogError
	default:
		s[0] = errnoBadf
		return
	}
	msg := vm.scratch[:0]
	for i := uint32(0); i < iovsLen; i++ {
		iov, ok := vm.read(iovs+i*8, 8)
		if !ok {
			s[0] = errnoFault
			return
		}
		buf, n := binary.LittleEndian.Uint32(iov), binary.LittleEndian.Uint32(iov[4:])
		if n == 0 {
			continue
		}
		data, ok := vm.read(buf, n)
		if !ok {
			s[0] = errnoFault
			return
		}
		msg = append(msg, data...)
	}
	vm.scratch = msg
	written := len(msg)
	if written > 0 {
		if msg[written-1] == '\n' {
			msg = msg[:written-1]
		}
		vm.log(level, string(msg))
	}
	if !vm.writeU32(writtenPtr, uint32(written)) {
		s[0] = errnoFault
		return
	}
	s[0] = errnoSuccess
}

func (vm *VM) wasiFdFdstatGet(s []uint64) {
	fd, out := uint32(s[0]), uint32(s[1])
	if fd != 1 && fd != 2 {
		s[0] = errnoBadf
		return
	}
	var stat [24]byte
	binary.LittleEndian.PutUint64(stat[8:], 64) // fs_rights_base = FD_WRITE
	// Envoy ignores a failed write here and still reports success.
	vm.write(out, stat[:])
	s[0] = errnoSuccess
}

func (vm *VM) environ() []string {
	keys := make([]string, 0, len(vm.cfg.Environment))
	for k := range vm.cfg.Environment {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (vm *VM) wasiEnvironGet(s []uint64) {
	ptrs, buf := uint32(s[0]), uint32(s[1])
	for _, k := range vm.environ() {
		entry := k + "=" + vm.cfg.Environment[k] + "\x00"
		if !vm.writeU32(ptrs, buf) || !vm.write(buf, []byte(entry)) {
			s[0] = errnoFault
			return
		}
		buf += uint32(len(entry))
		ptrs += 4
	}
	s[0] = errnoSuccess
}

func (vm *VM) wasiEnvironSizesGet(s []uint64) {
	countPtr, sizePtr := uint32(s[0]), uint32(s[1])
	size := 0
	for k, v := range vm.cfg.Environment {
		size += len(k) + len(v) + 2
	}
	if !vm.writeU32(countPtr, uint32(len(vm.cfg.Environment))) || !vm.writeU32(sizePtr, uint32(size)) {
		s[0] = errnoFault
		return
	}
	s[0] = errnoSuccess
}

func (vm *VM) wasiArgsSizesGet(s []uint64) {
	if !vm.writeU32(uint32(s[0]), 0) || !vm.writeU32(uint32(s[1]), 0) {
		s[0] = errnoFault
		return
	}
	s[0] = errnoSuccess
}

func (vm *VM) wasiClockTimeGet(s []uint64) {
	var t uint64
	switch uint32(s[0]) {
	case 0:
		t = uint64(vm.now().UnixNano())
	case 1:
		t = uint64(vm.monotonic())
	default:
		s[0] = errnoNotsup
		return
	}
	if !vm.writeU64(uint32(s[2]), t) {
		s[0] = errnoFault
		return
	}
	s[0] = errnoSuccess
}

func (vm *VM) wasiClockResGet(s []uint64) {
	if id := uint32(s[0]); id != 0 && id != 1 {
		s[0] = errnoNotsup
		return
	}
	if !vm.writeU64(uint32(s[1]), 1) {
		s[0] = errnoFault
		return
	}
	s[0] = errnoSuccess
}

func (vm *VM) wasiRandomGet(s []uint64) {
	buf, n := uint32(s[0]), uint32(s[1])
	switch {
	case n > randomGetMaxBytes:
		s[0] = errnoInval
		return
	case n == 0:
		s[0] = errnoSuccess
		return
	}
	b := make([]byte, n)
	_, _ = rand.Read(b)
	if !vm.write(buf, b) {
		s[0] = errnoFault
		return
	}
	s[0] = errnoSuccess
}

func (vm *VM) wasiPollOneoff(s []uint64) {
	if !vm.writeU32(uint32(s[3]), 0) {
		s[0] = errnoFault
		return
	}
	s[0] = errnoSuccess
}

func (vm *VM) wasiFdRenumber(s []uint64) {
	from, to := uint32(s[0]), uint32(s[1])
	if (from != 1 && from != 2) || (to != 1 && to != 2) {
		s[0] = errnoBadf
		return
	}
	s[0] = errnoNotsup
}

func (vm *VM) wasiFdTell(s []uint64) {
	if fd := uint32(s[0]); fd != 1 && fd != 2 {
		s[0] = errnoBadf
		return
	}
	if !vm.writeU64(uint32(s[1]), 0) {
		s[0] = errnoFault
		return
	}
	s[0] = errnoSuccess
}

func (vm *VM) wasiSockRecv(s []uint64) {
	if !vm.writeU32(uint32(s[4]), 0) || !vm.write(uint32(s[5]), []byte{0, 0}) {
		s[0] = errnoFault
		return
	}
	s[0] = errnoNotsup
}

// zeroWordThen writes a zero u32 to the pointer at argument i, then returns code.
func zeroWordThen(i int, code uint32) func(*VM, []uint64) {
	return func(vm *VM, s []uint64) {
		if !vm.writeU32(uint32(s[i]), 0) {
			s[0] = errnoFault
			return
		}
		s[0] = uint64(code)
	}
}

// zeroU64Then writes a zero u64 to the pointer at argument i, then returns code.
func zeroU64Then(i int, code uint32) func(*VM, []uint64) {
	return func(vm *VM, s []uint64) {
		if !vm.writeU64(uint32(s[i]), 0) {
			s[0] = errnoFault
			return
		}
		s[0] = uint64(code)
	}
}
