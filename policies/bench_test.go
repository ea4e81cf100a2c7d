package policies

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchSecrets returns OPENAI_API_KEY and n-1 more secrets with random-looking
// placeholders, each allowed at its own host.
func benchSecrets(n int) []fixtureSecret {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	rng := rand.New(rand.NewPCG(1, 2))
	secrets := []fixtureSecret{{"OPENAI_API_KEY", phOpenAI, valOpenAI, []string{"api.openai.com"}}}
	for i := 1; i < n; i++ {
		ph := []byte(fmt.Sprintf("sgp_bench%04d_", i))
		for range 20 {
			ph = append(ph, alphabet[rng.IntN(len(alphabet))])
		}
		secrets = append(secrets, fixtureSecret{
			name:        fmt.Sprintf("BENCH_%04d", i),
			placeholder: string(ph),
			value:       fmt.Sprintf("bench-test-value-%04d", i),
			hosts:       []string{fmt.Sprintf("api%04d.example.com", i)},
		})
	}
	return secrets
}

// typicalRequest is an SDK's chat request as Envoy hands it over: 20 lines,
// about 1.2 KB, with auth as given.
func typicalRequest(auth string) []Header {
	return hdrs(
		":method", "POST",
		":scheme", "https",
		":authority", "api.openai.com",
		":path", "/v1/chat/completions",
		"content-type", "application/json",
		"content-length", "1432",
		"accept", "application/json",
		"accept-encoding", "gzip, deflate, br",
		"accept-language", "en-US,en;q=0.9",
		"user-agent", "OpenAI/Python 1.54.3 (Linux x86_64; CPython 3.12.7) Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"authorization", auth,
		"x-stainless-lang", "python",
		"x-stainless-package-version", "1.54.3",
		"x-stainless-os", "Linux",
		"x-stainless-runtime-version", "3.12.7",
		"x-request-id", "3f2a9c1e-7b44-4d1a-9e0f-2b8c6d5a4e31",
		"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"cookie", "__cf_bm=Qm9ndXNDb29raWVWYWx1ZUZvckJlbmNobWFya2luZ09ubHkuMTIzNDU2Nzg5MA-1733241600-1.0.1.1-a8f3kL2pQz9xWv7Rt5Yb1Nc6Md4Je0Hg; _cfuvid=Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Ji0Hg9Fe8Dc7Ba6-1733241600000-0.0.1.1-604800000; session_hint=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJlLW5vdC1yZWFs",
		"x-forwarded-for", "10.0.3.17, 172.16.0.4",
		"x-sandbox-session", "sbx-7f3e2d1c-0b9a-4e8d-a7c6-5b4a3f2e1d0c",
	)
}

func headerBytes(h []Header) (n int64) {
	for _, l := range h {
		n += int64(len(l.Name) + len(l.Value))
	}
	return n
}

func BenchmarkDecide(b *testing.B) {
	run := func(b *testing.B, secrets []fixtureSecret, in []Header, want Verdict) {
		r := NewRewriter(newSession(b, Passthrough, secrets))
		if d := r.Decide(in); d.Verdict != want {
			b.Fatalf("verdict %v, want %v", d.Verdict, want)
		}
		b.SetBytes(headerBytes(in))
		b.ReportAllocs()
		for b.Loop() {
			r.Decide(in)
		}
	}
	injected := typicalRequest("Bearer " + phOpenAI)
	plain := typicalRequest("Bearer sk-proj-Xq7Lm2Rt9Vw4Yz1Ab3Cd5Ef6Gh8Ij0Kl2Mn4Op6Qr8St0Uv")
	b.Run("typical", func(b *testing.B) { run(b, fixtureSecrets, injected, Rewritten) })
	b.Run("no-placeholder", func(b *testing.B) { run(b, fixtureSecrets, plain, Unchanged) })
	// Both scanned twice: raw, then decoded.
	b.Run("basic", func(b *testing.B) {
		run(b, fixtureSecrets, typicalRequest(basic("x-access-token:"+phOpenAI)), Rewritten)
	})
	b.Run("basic-unpadded", func(b *testing.B) {
		run(b, fixtureSecrets, typicalRequest("Basic "+base64.RawStdEncoding.EncodeToString([]byte("x-access-token:"+phOpenAI))), Rewritten)
	})
	encoded := typicalRequest("Bearer sk-proj-Xq7Lm2Rt9Vw4Yz1Ab3Cd5Ef6Gh8Ij0Kl2Mn4Op6Qr8St0Uv")
	encoded[3].Value = []byte("/v1/models?api-version=2024-10-21&key=sgp%5Fopenai_000000000000000000001&filter=a%20b%2Cc")
	b.Run("encoded-query", func(b *testing.B) { run(b, fixtureSecrets, encoded, Rewritten) })
	for _, n := range []int{1, 10, 100, 1000} {
		secrets := benchSecrets(n)
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) { run(b, secrets, injected, Rewritten) })
	}
}

// BenchmarkContainsBaseline is the floor DESIGN.md measures against: one
// bytes.Contains per header value for a single fixed needle.
func BenchmarkContainsBaseline(b *testing.B) {
	in := typicalRequest("Bearer sk-proj-Xq7Lm2Rt9Vw4Yz1Ab3Cd5Ef6Gh8Ij0Kl2Mn4Op6Qr8St0Uv")
	b.SetBytes(headerBytes(in))
	found := false
	for b.Loop() {
		for _, h := range in {
			found = found || bytes.Contains(h.Value, []byte("sgp_"))
		}
	}
	if found {
		b.Fatal("needle found")
	}
}
