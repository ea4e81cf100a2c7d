// Command devproxy is the local dev proxy behind `make run`: an HTTP forward
// proxy that runs every request through a proxy-wasm HTTP filter, hosted by
// hostsim the way Envoy hosts it, and forwards what the filter lets through.
// It is for development and demos; production runs the module in Envoy.
//
//	devproxy [-listen 127.0.0.1:10000] [-envoy envoy.yaml] [-config FILE] [-wasm FILE] [-resolve HOST=ADDR:PORT]... [-echo] [-v]
//
// The plugin configuration and module path come from the first Wasm HTTP
// filter in the Envoy bootstrap file, unless -config and -wasm override them;
// the names and the failure policy (fail_open, or failure_policy and
// reload_config.backoff.base_interval) still come from that file when it
// exists. -echo answers each request the filter lets through with the
// request itself, and each CONNECT with 403, as the shipped envoy.yaml does:
// nothing leaves the machine.
// Requests for a host mapped with -resolve go to that address over plain
// HTTP; others go to the host itself over TLS, as the Envoy forward proxy
// originates TLS. CONNECT requests pass the filter's request headers, then
// tunnel bytes uninspected. As in Envoy by default, a request target Envoy
// refuses (e.g. "http:/path", with no authority, or one with a #fragment)
// gets 400, an HTTP/1.0 request 426 and an upgrade request (h2c aside) 403,
// before the filter runs. A CONNECT answered without a tunnel closes the
// connection, as in Envoy.
//
// One VM serves every connection; its callbacks are serialised, as on one
// Envoy worker thread, while streams interleave. Limits, against Envoy:
// net/http hands over headers as a map, so lines with different names reach
// the filter sorted by name (lines sharing a name keep their order and count);
// only header and request trailer callbacks run (bodies stream through
// unfiltered; response trailers are dropped); downstream HTTP/2 is not
// supported; a stream the module pauses without a local reply gets 500,
// since nothing resumes it; an absolute-form HTTP/1.1 request without a Host
// line, or one with two Host lines, gets net/http's 400 (Envoy takes the host
// from the target, and folds two into one authority no host matches).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/secretgate/secretgate/hostsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errFlags):
		os.Exit(2) // the flag package has printed the problem and the usage
	default:
		fmt.Fprintf(os.Stderr, "devproxy: %v\n", err)
		os.Exit(1)
	}
}

var errFlags = errors.New("bad flags")

// shutdownGrace is how long in-flight requests get to finish on SIGINT or
// SIGTERM before their connections are closed.
const shutdownGrace = 5 * time.Second

// run starts the proxy and serves until ctx is done, then shuts down
// gracefully. The one line announcing the address goes to stdout; logs go to
// stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errFlags, err)
	}
	cfg, wasmPath, source, err := pluginSetup(opts)
	if err != nil {
		return err
	}
	logger := log.New(stderr, "", 0)
	// Guest callbacks must not see the shutdown signal as a cancellation.
	vmCtx := context.WithoutCancel(ctx)
	module, err := hostsim.CompileFile(vmCtx, wasmPath)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("module %s: %w (build it first, or pass -wasm)", wasmPath, err)
	}
	if err != nil {
		return fmt.Errorf("module %s: %w", wasmPath, err)
	}
	p, err := newDevProxy(vmCtx, module, cfg, opts.resolve, opts.echo, logger)
	if err != nil {
		return fmt.Errorf("%s: module %s refused the plugin configuration: %w", source, wasmPath, err)
	}
	defer p.Close()

	ln, err := net.Listen("tcp", opts.listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "secretgate dev proxy listening on http://%s (module %s, config from %s)\n", ln.Addr(), wasmPath, source)

	srv := &http.Server{
		Handler: p,
		// OPTIONS * goes through the filter, as in Envoy, instead of getting
		// net/http's own 200.
		DisableGeneralOptionsHandler: true,
		ReadHeaderTimeout:            30 * time.Second,
		ErrorLog:                     log.New(stderr, "devproxy: ", 0),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
	}
	return nil
}

// pluginSetup gathers the plugin configuration, the module path and where
// the configuration came from, for the startup line and error messages.
func pluginSetup(opts options) (cfg hostsim.PluginConfig, wasmPath, source string, err error) {
	cfg, wasmPath, err = loadEnvoyConfig(opts.envoyFile)
	source = opts.envoyFile
	switch {
	case err == nil:
	case !errors.Is(err, fs.ErrNotExist) || opts.envoySet:
		return cfg, "", "", err
	case opts.configFile == "":
		return cfg, "", "", fmt.Errorf("%w (run from the repository root, or pass -envoy or -config)", err)
	default:
		// -config alone is enough when the default envoy.yaml is absent.
	}
	if opts.configFile != "" {
		if cfg.Configuration, err = os.ReadFile(opts.configFile); err != nil {
			return cfg, "", "", err
		}
		source = opts.configFile
	}
	if opts.wasmFile != "" {
		wasmPath = opts.wasmFile
	}
	if wasmPath == "" {
		wasmPath = defaultWasm
	}
	cfg.LogLevel = hostsim.LogInfo
	if opts.verbose {
		cfg.LogLevel = hostsim.LogDebug
	}
	return cfg, wasmPath, source, nil
}
