package hostsim_test

import (
	"strings"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

func TestSharedQueueInOneVM(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", strings.Join([]string{
		"queue-resolve:|q1", // nobody registered it yet
		"queue-register:q1",
		"queue-register:q1", // again: same queue
		"queue-register:q2",
		"queue-resolve:|q1",     // empty vm_id: this VM's
		"queue-resolve:vm-a|q1", // baseConfig's vm_id
		"queue-resolve:vm-b|q1",
		"queue-dequeue:1", // empty
		"queue-enqueue:1|first",
		"queue-enqueue:1|second",
		"queue-enqueue:9|lost",
		"queue-dequeue:9",
	}, ";"))})
	// Each enqueue notifies the registering root context once, after the callback.
	assertLines(t, calloutLines(vm), []string{
		"op=queue-resolve status=1 token=57005",
		"op=queue-register status=0 token=1",
		"op=queue-register status=0 token=1",
		"op=queue-register status=0 token=2",
		"op=queue-resolve status=0 token=1",
		"op=queue-resolve status=0 token=1",
		"op=queue-resolve status=1 token=57005",
		"op=queue-dequeue status=7 data=",
		"op=queue-enqueue status=0",
		"op=queue-enqueue status=0",
		"op=queue-enqueue status=1",
		"op=queue-dequeue status=1 data=",
		"queue_ready id=1 token=1",
		"dequeue status=0 data=first",
		"dequeue status=0 data=second",
		"dequeue status=7 data=",
		"queue_ready id=1 token=1",
		"dequeue status=7 data=",
	})
}

func TestSharedQueueAcrossVMs(t *testing.T) {
	m := guest(t)
	owner := hostsimtest.NewVM(t, m, baseConfig)
	producer := hostsimtest.NewVM(t, m, baseConfig) // another worker, same vm_id
	otherCfg := baseConfig
	otherCfg.VMID = "vm-b"
	other := hostsimtest.NewVM(t, m, otherCfg)

	do(t, owner, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "queue-register:jobs")})
	do(t, other, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "queue-resolve:|jobs;queue-resolve:vm-a|jobs;queue-enqueue:1|from-b")})
	do(t, producer, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "queue-resolve:|jobs;queue-enqueue:1|from-a")})

	assertLines(t, calloutLines(other), []string{
		"op=queue-resolve status=1 token=57005",
		"op=queue-resolve status=0 token=1",
		"op=queue-enqueue status=0",
	})
	assertLines(t, calloutLines(producer), []string{
		"op=queue-resolve status=0 token=1",
		"op=queue-enqueue status=0",
	})
	// The owner hears of it on its dispatcher: its next callback, or RunPending.
	assertLines(t, calloutLines(owner), []string{"op=queue-register status=0 token=1"})
	owner.RunPending()
	assertLines(t, calloutLines(owner), []string{
		"op=queue-register status=0 token=1",
		"queue_ready id=1 token=1",
		"dequeue status=0 data=from-b",
		"dequeue status=0 data=from-a",
		"dequeue status=7 data=",
		"queue_ready id=1 token=1",
		"dequeue status=7 data=",
	})
}
