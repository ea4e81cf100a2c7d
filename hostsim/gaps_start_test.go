package hostsim_test

import (
	"strconv"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// cpp-host ContextBase::onStart sets temp_plugin_ around the root context's
// proxy_on_context_create, so the plugin configuration is readable there;
// proxy_on_vm_start runs without it (NotFound), proxy_on_configure with it.
func TestRootContextCreateReadsThePluginConfiguration(t *testing.T) {
	cfg := baseConfig
	cfg.Environment = map[string]string{"GUEST_CREATE_READS_CONFIG": "1"}
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/")})
	assertLines(t, messages(vm.Logs())[:6], []string{
		"create 1 0",
		"create config status=0 config=cfg",
		"vm_start size=5 status=0 config=vmcfg",
		"vm_start plugin config status=" + strconv.Itoa(int(hostsim.StatusNotFound)),
		"configure size=3 status=0 config=cfg",
		"create 2 1", // a stream context reads nothing
	})
}
