package hostsim

import (
	"sync"
	"sync/atomic"
)

// Shared queues, as cpp-host src/shared_queue.cc and src/context.cc
// (registerSharedQueue, lookupSharedQueue, enqueueSharedQueue,
// dequeueSharedQueue): queues are named per vm_id and shared by every VM of the
// Module with that vm_id (Envoy: of the process); tokens count from 1. A queue
// notifies the root context of the VM that registered it last: Envoy posts
// proxy_on_queue_ready to that worker's dispatcher, so hostsim delivers it
// after the callback that enqueued returns when that VM is the enqueuer's, else
// at that VM's next callback or VM.RunPending.

type sharedQueues struct {
	// inUse spares every callback the lock while no queue exists.
	inUse     atomic.Bool
	mu        sync.Mutex
	lastToken uint32
	tokens    map[queueKey]uint32
	queues    map[uint32]*sharedQueue
}

type queueKey struct{ vmID, name string }

type sharedQueue struct {
	items     [][]byte
	owner     *VM
	contextID uint32
}

type queueNotice struct{ contextID, token uint32 }

func (vm *VM) proxyRegisterSharedQueue(s []uint64) {
	const fn = "proxy_register_shared_queue"
	name, okName := vm.readString(uint32(s[0]), uint32(s[1]))
	if !okName {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "queue name is outside memory")
		return
	}
	sq := &vm.m.queues
	sq.mu.Lock()
	if sq.tokens == nil {
		sq.tokens, sq.queues = map[queueKey]uint32{}, map[uint32]*sharedQueue{}
		sq.inUse.Store(true)
	}
	key := queueKey{vm.cfg.VMID, name}
	token, found := sq.tokens[key]
	if !found {
		sq.lastToken++
		token = sq.lastToken
		sq.tokens[key] = token
		sq.queues[token] = &sharedQueue{}
	}
	// Registering again keeps the items and moves the notifications here. A
	// stream context registers for its root context, where onQueueReady runs.
	q := sq.queues[token]
	q.owner, q.contextID = vm, vm.targetPlugin().rootID
	sq.mu.Unlock()
	if !vm.writeU32(uint32(s[2]), token) {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "return_token %d is outside memory", uint32(s[2]))
		return
	}
	ok(s)
}

func (vm *VM) proxyResolveSharedQueue(s []uint64) {
	const fn = "proxy_resolve_shared_queue"
	vmID, okVMID := vm.readString(uint32(s[0]), uint32(s[1]))
	name, okName := vm.readString(uint32(s[2]), uint32(s[3]))
	if !okVMID || !okName {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "vm_id or queue name is outside memory")
		return
	}
	if vmID == "" {
		vmID = vm.cfg.VMID
	}
	sq := &vm.m.queues
	sq.mu.Lock()
	token := sq.tokens[queueKey{vmID, name}]
	sq.mu.Unlock()
	if token == 0 {
		vm.misuse(s, fn, StatusNotFound, "no queue %q in vm_id %q", name, vmID)
		return
	}
	if !vm.writeU32(uint32(s[4]), token) {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "return_token %d is outside memory", uint32(s[4]))
		return
	}
	ok(s)
}

func (vm *VM) proxyEnqueueSharedQueue(s []uint64) {
	const fn = "proxy_enqueue_shared_queue"
	token := uint32(s[0])
	data, okData := vm.read(uint32(s[1]), uint32(s[2]))
	if !okData {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "data is outside memory")
		return
	}
	sq := &vm.m.queues
	sq.mu.Lock()
	defer sq.mu.Unlock()
	q := sq.queues[token]
	if q == nil {
		vm.misuse(s, fn, StatusNotFound, "no queue with token %d", token)
		return
	}
	q.items = append(q.items, append([]byte(nil), data...))
	q.owner.async.queueReady = append(q.owner.async.queueReady, queueNotice{q.contextID, token})
	ok(s)
}

func (vm *VM) proxyDequeueSharedQueue(s []uint64) {
	const fn = "proxy_dequeue_shared_queue"
	token := uint32(s[0])
	sq := &vm.m.queues
	sq.mu.Lock()
	q := sq.queues[token]
	var item []byte
	st := StatusOK
	switch {
	case q == nil:
		st = StatusNotFound
	case len(q.items) == 0:
		st = StatusEmpty
	default:
		item = q.items[0]
		q.items[0] = nil
		q.items = q.items[1:]
	}
	sq.mu.Unlock()
	switch st {
	case StatusNotFound:
		vm.misuse(s, fn, st, "no queue with token %d", token)
		return
	case StatusEmpty:
		s[0] = uint64(StatusEmpty) // an empty queue is not misuse
		return
	}
	if !vm.copyOut(item, uint32(s[1]), uint32(s[2])) {
		vm.misuse(s, fn, StatusInvalidMemoryAccess, "return pointers are outside memory or malloc failed")
		return
	}
	ok(s)
}

// nextQueueNotice takes the oldest proxy_on_queue_ready notice for this VM.
func (vm *VM) nextQueueNotice() (queueNotice, bool) {
	sq := &vm.m.queues
	if !sq.inUse.Load() {
		return queueNotice{}, false
	}
	sq.mu.Lock()
	defer sq.mu.Unlock()
	if len(vm.async.queueReady) == 0 {
		return queueNotice{}, false
	}
	n := vm.async.queueReady[0]
	vm.async.queueReady = vm.async.queueReady[1:]
	return n, true
}

// deliverQueueReady is ContextBase::onQueueReady: proxy_on_queue_ready(root id,
// token); a root context already deleted gets nothing (WasmBase::queueReady).
func (vm *VM) deliverQueueReady(n queueNotice) {
	fn := vm.mod.ExportedFunction(exportQueueReady)
	p := vm.roots[n.contextID]
	if fn == nil || p == nil {
		return
	}
	vm.stack[0], vm.stack[1] = uint64(n.contextID), uint64(n.token)
	vm.callRoot(p, fn, exportQueueReady)
}
