package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGenerateInterceptionLeavesVerifyOnlyForTheirHost(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if err := Generate(dir, now); err != nil {
		t.Fatal(err)
	}
	sessionRoots := certPool(t, filepath.Join(dir, "client", "session-ca.crt"))
	upstreamRoots := certPool(t, filepath.Join(dir, "client", "upstream-ca.crt"))
	for _, host := range InterceptedHosts {
		base := filepath.Join(dir, "envoy", "tls", host)
		leaf := loadLeaf(t, base)
		if err := verify(leaf, sessionRoots, host, now); err != nil {
			t.Errorf("%s: leaf does not verify for its own name: %v", host, err)
		}
		for _, other := range []string{"evil.example", host + ".evil.example", "x" + host, "sub." + host} {
			if err := verify(leaf, sessionRoots, other, now); err == nil {
				t.Errorf("%s: leaf verifies for %s", host, other)
			}
		}
		for _, other := range InterceptedHosts {
			if other != host && verify(leaf, sessionRoots, other, now) == nil {
				t.Errorf("%s: leaf verifies for another intercepted host %s", host, other)
			}
		}
		if err := verify(leaf, upstreamRoots, host, now); err == nil {
			t.Errorf("%s: interception leaf verifies against the upstream CA", host)
		}
		if !strings.Contains(leaf.Subject.CommonName, "TEST") || !strings.Contains(leaf.Issuer.CommonName, "TEST") {
			t.Errorf("%s: subject %q issuer %q do not say TEST", host, leaf.Subject.CommonName, leaf.Issuer.CommonName)
		}
	}
}

func TestGenerateUpstreamLeafVerifiesForEveryAliasOnly(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if err := Generate(dir, now); err != nil {
		t.Fatal(err)
	}
	upstreamRoots := certPool(t, filepath.Join(dir, "client", "upstream-ca.crt"))
	envoyRoots := certPool(t, filepath.Join(dir, "envoy", "upstream-ca.crt"))
	sessionRoots := certPool(t, filepath.Join(dir, "client", "session-ca.crt"))
	leaf := loadLeaf(t, filepath.Join(dir, "upstream", "server"))
	for _, alias := range UpstreamAliases {
		if err := verify(leaf, upstreamRoots, alias, now); err != nil {
			t.Errorf("%s: upstream leaf does not verify: %v", alias, err)
		}
		if err := verify(leaf, envoyRoots, alias, now); err != nil {
			t.Errorf("%s: upstream leaf does not verify against envoy/upstream-ca.crt: %v", alias, err)
		}
		if err := verify(leaf, sessionRoots, alias, now); err == nil {
			t.Errorf("%s: upstream leaf verifies against the session CA", alias)
		}
	}
	for _, other := range []string{"example.com", "openai.com", "b.acme.atlassian.net", "evil.example.com"} {
		if err := verify(leaf, upstreamRoots, other, now); err == nil {
			t.Errorf("upstream leaf verifies for %s", other)
		}
	}
	if err := verify(leaf, upstreamRoots, "api.openai.com", now.Add(validity+time.Hour)); err == nil {
		t.Error("upstream leaf still verifies after its validity")
	}
}

func TestGenerateWritesNoCAKey(t *testing.T) {
	dir := t.TempDir()
	if err := Generate(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	var keys []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".key") {
			rel, _ := filepath.Rel(dir, path)
			keys = append(keys, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"envoy/tls/api.anthropic.com.key", "envoy/tls/api.github.com.key", "envoy/tls/api.openai.com.key",
		"envoy/tls/generativelanguage.googleapis.com.key", "envoy/tls/github.com.key", "upstream/server.key"}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Errorf("key files = %v, want %v", keys, want)
	}
}

// loadLeaf checks that base.crt and base.key pair up and that base.crt holds
// the leaf then its CA, and returns the leaf.
func loadLeaf(t *testing.T, base string) *x509.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(base+".crt", base+".key")
	if err != nil {
		t.Fatalf("%s: %v", base, err)
	}
	if len(pair.Certificate) != 2 {
		t.Fatalf("%s.crt holds %d certificates, want leaf then CA", base, len(pair.Certificate))
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(pair.Certificate[1])
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA || leaf.IsCA {
		t.Fatalf("%s.crt: leaf IsCA=%v, second IsCA=%v", base, leaf.IsCA, ca.IsCA)
	}
	return leaf
}

func certPool(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("%s: no certificate", path)
	}
	return pool
}

func verify(leaf *x509.Certificate, roots *x509.CertPool, name string, at time.Time) error {
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}
