// Command gencerts writes the throwaway certificates of the e2e suite: a
// session CA with one interception leaf per allowed host (what Envoy presents
// on its TLS interception listener), and an upstream CA with one leaf for
// every network alias of the test upstream (what Envoy verifies when it
// originates TLS). `make e2e` runs it before `docker compose up`.
//
// Layout under -out (default build/e2e/certs):
//
//	envoy/tls/<host>.crt    interception leaf, then the session CA
//	envoy/tls/<host>.key
//	envoy/upstream-ca.crt   what Envoy trusts upstream
//	upstream/server.crt     upstream leaf for every alias, then the upstream CA
//	upstream/server.key
//	client/session-ca.crt   what the tests trust on the interception listener
//	client/upstream-ca.crt  what the tests trust for passed-through TLS
//
// The CAs' keys stay in memory: nothing can issue more certificates later.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// InterceptedHosts get a filter chain, and so a leaf, on Envoy's TLS
// interception listener in e2e/envoy.yaml.
var InterceptedHosts = []string{
	"api.openai.com",
	"api.anthropic.com",
	"github.com",
	"api.github.com",
	"generativelanguage.googleapis.com",
}

// UpstreamAliases are the network aliases of the upstream service in
// e2e/docker-compose.yaml: allowed hosts and attacker hosts alike.
var UpstreamAliases = []string{
	"api.openai.com",
	"api.anthropic.com",
	"github.com",
	"api.github.com",
	"generativelanguage.googleapis.com",
	"acme.atlassian.net",
	"evil.example",
	"attacker.test",
}

// validity is long enough for a debugging session, short enough that a
// forgotten copy is soon useless.
const validity = 7 * 24 * time.Hour

func main() {
	out := flag.String("out", "build/e2e/certs", "directory to write the certificates to")
	flag.Parse()
	if err := Generate(*out, time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, "gencerts:", err)
		os.Exit(1)
	}
}

// Generate writes the layout described in the package comment under dir,
// valid from an hour before now.
func Generate(dir string, now time.Time) error {
	sessionCA, err := newCA("secretgate e2e TEST session CA (not for production)", now)
	if err != nil {
		return err
	}
	upstreamCA, err := newCA("secretgate e2e TEST upstream CA (not for production)", now)
	if err != nil {
		return err
	}
	for _, host := range InterceptedHosts {
		leaf, err := sessionCA.issue("secretgate e2e TEST interception "+host, []string{host}, now)
		if err != nil {
			return err
		}
		if err := leaf.write(filepath.Join(dir, "envoy", "tls", host)); err != nil {
			return err
		}
	}
	leaf, err := upstreamCA.issue("secretgate e2e TEST upstream", UpstreamAliases, now)
	if err != nil {
		return err
	}
	if err := leaf.write(filepath.Join(dir, "upstream", "server")); err != nil {
		return err
	}
	for path, ca := range map[string]*authority{
		filepath.Join(dir, "envoy", "upstream-ca.crt"):  upstreamCA,
		filepath.Join(dir, "client", "upstream-ca.crt"): upstreamCA,
		filepath.Join(dir, "client", "session-ca.crt"):  sessionCA,
	} {
		if err := writeFile(path, pemBlock("CERTIFICATE", ca.der)); err != nil {
			return err
		}
	}
	return nil
}

type authority struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

type leafCert struct {
	der, caDER []byte
	key        *ecdsa.PrivateKey
}

func newCA(commonName string, now time.Time) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(commonName, now)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, der: der, key: key}, nil
}

func (ca *authority) issue(commonName string, dnsNames []string, now time.Time) (*leafCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(commonName, now)
	if err != nil {
		return nil, err
	}
	tmpl.DNSNames = dnsNames
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	return &leafCert{der: der, caDER: ca.der, key: key}, nil
}

// write stores base+".crt" (leaf, then its CA) and base+".key".
func (l *leafCert) write(base string) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(l.key)
	if err != nil {
		return err
	}
	chain := append(pemBlock("CERTIFICATE", l.der), pemBlock("CERTIFICATE", l.caDER)...)
	if err := writeFile(base+".crt", chain); err != nil {
		return err
	}
	return writeFile(base+".key", pemBlock("PRIVATE KEY", keyDER))
}

func template(commonName string, now time.Time) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"secretgate e2e TEST"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
	}, nil
}

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

// writeFile makes every file world-readable, keys included: they are
// throwaway test keys, and the containers read them under whatever uid
// the bind mount maps the host user to.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
