package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
)

const (
	defaultListen = "127.0.0.1:10000"
	defaultEnvoy  = "envoy.yaml"
	defaultWasm   = "build/secretgate.wasm"
)

type options struct {
	listen     string
	envoyFile  string
	envoySet   bool // -envoy given: a missing file is an error even with -config
	configFile string
	wasmFile   string
	resolve    resolveMap
	verbose    bool
	echo       bool
}

func parseFlags(args []string, output io.Writer) (options, error) {
	opts := options{resolve: resolveMap{}}
	fs := flag.NewFlagSet("devproxy", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprintf(output, "usage: devproxy [flags]\n\n"+
			"A local HTTP forward proxy that runs every request through a proxy-wasm\n"+
			"HTTP filter, for development only (production runs in Envoy).\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&opts.listen, "listen", defaultListen, "`address` to listen on")
	fs.StringVar(&opts.envoyFile, "envoy", defaultEnvoy, "Envoy bootstrap YAML whose first Wasm HTTP filter gives the plugin configuration and module")
	fs.StringVar(&opts.configFile, "config", "", "plugin configuration JSON `file` (overrides the one in -envoy)")
	fs.StringVar(&opts.wasmFile, "wasm", "", "module `file` (default: the filename in -envoy, else "+defaultWasm+")")
	fs.Var(opts.resolve, "resolve", "send requests for a host (any port) to another address over plain HTTP, given as `HOST=ADDR:PORT`; repeatable")
	fs.BoolVar(&opts.verbose, "v", false, "print the module's debug logs too")
	fs.BoolVar(&opts.echo, "echo", false, "answer every request the filter lets through with the request as it would go upstream, instead of sending it, and CONNECT with 403 (for demos; shows injected values)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { opts.envoySet = opts.envoySet || f.Name == "envoy" })
	return opts, nil
}

// resolveMap maps a lowercase host name (no port) to the ADDR:PORT that
// serves it over plain HTTP, like curl's --resolve but for any port.
type resolveMap map[string]string

func (m resolveMap) String() string {
	pairs := make([]string, 0, len(m))
	for host, addr := range m {
		pairs = append(pairs, host+"="+addr)
	}
	slices.Sort(pairs)
	return strings.Join(pairs, ",")
}

func (m resolveMap) Set(v string) error {
	host, addr, ok := strings.Cut(v, "=")
	if !ok || host == "" {
		return fmt.Errorf("%q: want HOST=ADDR:PORT", v)
	}
	if _, _, err := net.SplitHostPort(host); err == nil {
		return fmt.Errorf("%q: HOST takes no port (it matches every port)", v)
	}
	ip, port, err := net.SplitHostPort(addr)
	if err != nil || ip == "" {
		return fmt.Errorf("%q: want HOST=ADDR:PORT", v)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%q: port %q: want 1 to 65535", v, port)
	}
	m[canonicalHost(host)] = addr
	return nil
}

// lookup returns the address an authority (host[:port]) is mapped to.
func (m resolveMap) lookup(authority string) (string, bool) {
	host := authority
	if h, _, err := net.SplitHostPort(authority); err == nil {
		host = h
	}
	addr, ok := m[canonicalHost(host)]
	return addr, ok
}

func canonicalHost(host string) string {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.ToLower(strings.TrimSuffix(host, "."))
}
