package main

import (
	"errors"
	"flag"
	"io"
	"testing"
)

func TestParseFlagsDefaults(t *testing.T) {
	opts, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if opts.listen != "127.0.0.1:10000" || opts.envoyFile != "envoy.yaml" || opts.envoySet ||
		opts.configFile != "" || opts.wasmFile != "" || len(opts.resolve) != 0 || opts.verbose {
		t.Errorf("defaults = %+v", opts)
	}
}

func TestParseFlagsResolve(t *testing.T) {
	opts, err := parseFlags([]string{
		"-resolve", "API.OpenAI.com.=127.0.0.1:8080",
		"-resolve", "evil.example=[::1]:9",
		"-envoy", "other.yaml",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !opts.envoySet {
		t.Error("envoySet = false with -envoy given")
	}
	if got, want := opts.resolve.String(), "api.openai.com=127.0.0.1:8080,evil.example=[::1]:9"; got != want {
		t.Errorf("resolve = %q, want %q", got, want)
	}
	for authority, want := range map[string]string{
		"api.openai.com":      "127.0.0.1:8080",
		"api.openai.com:443":  "127.0.0.1:8080",
		"API.OPENAI.COM.:80":  "127.0.0.1:8080",
		"evil.example:1234":   "[::1]:9",
		"sub.api.openai.com":  "",
		"api.openai.com.evil": "",
	} {
		got, ok := opts.resolve.lookup(authority)
		if got != want || ok != (want != "") {
			t.Errorf("lookup(%q) = %q, %v; want %q", authority, got, ok, want)
		}
	}
}

func TestParseFlagsResolveErrors(t *testing.T) {
	for _, v := range []string{
		"api.openai.com",
		"=127.0.0.1:80",
		"api.openai.com:443=127.0.0.1:80",
		"api.openai.com=127.0.0.1",
		"api.openai.com=:80",
		"api.openai.com=127.0.0.1:0",
		"api.openai.com=127.0.0.1:65536",
		"api.openai.com=127.0.0.1:http",
	} {
		if _, err := parseFlags([]string{"-resolve", v}, io.Discard); err == nil {
			t.Errorf("-resolve %q: no error", v)
		}
	}
}

func TestParseFlagsRejectsArguments(t *testing.T) {
	if _, err := parseFlags([]string{"-v", "extra"}, io.Discard); err == nil || err.Error() != `unexpected argument "extra"` {
		t.Errorf("err = %v", err)
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: err = %v, want flag.ErrHelp", err)
	}
}
