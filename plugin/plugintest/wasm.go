// Package plugintest gives tests secretgate's module, built from this
// checkout's ./plugin (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, as
// `make build` does) once per test binary: a missing module is built, never
// skipped.
package plugintest

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// Wasm returns the module's bytes.
func Wasm(tb testing.TB) []byte {
	tb.Helper()
	return hostsimtest.BuildGo(tb, pluginDir())
}

// WasmPath returns the path of the module as a file, for tests of commands
// that take a path. The file is named by the module's hash in the temporary
// directory, so repeated runs reuse it instead of leaving copies behind.
func WasmPath(tb testing.TB) string {
	tb.Helper()
	wasm := Wasm(tb)
	sum := sha256.Sum256(wasm)
	path := filepath.Join(os.TempDir(), "secretgate-test-"+hex.EncodeToString(sum[:8])+".wasm")
	if existing, err := os.ReadFile(path); err == nil && string(existing) == string(wasm) {
		return path
	}
	// Write aside and rename, so that parallel test binaries never read a
	// half-written module.
	tmp, err := os.CreateTemp(os.TempDir(), "secretgate-test-*.tmp")
	if err != nil {
		tb.Fatalf("plugintest: %v", err)
	}
	_, werr := tmp.Write(wasm)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		tb.Fatalf("plugintest: writing the module: %v %v", werr, cerr)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		tb.Fatalf("plugintest: %v", err)
	}
	return path
}

// pluginDir is ../ from this source file, wherever the test runs from.
func pluginDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}
