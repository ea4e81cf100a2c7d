# secretgate: `make run` starts the local dev proxy, `make test` runs every test.
GO            ?= go
WASM          := build/secretgate.wasm
# Extra flags for the dev proxy, e.g. make run ARGS='-resolve api.openai.com=127.0.0.1:8080 -v'
ARGS          ?=
BENCHTIME     ?= 1s
FUZZTIME      ?= 30s
# The OCI image `make image` builds for Istio's WasmPlugin (an oci:// URL).
IMAGE         ?= ghcr.io/secretgate/secretgate:dev

.PHONY: build run test bench fuzz check wat e2e image push clean

## build: compile the proxy-wasm module (standard Go, WASI reactor) to build/secretgate.wasm
build:
	@mkdir -p build
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -o $(WASM) ./plugin

## run: build the module and start the local dev proxy on 127.0.0.1:10000 (config from envoy.yaml)
run: build
	$(GO) run ./hostsim/cmd/devproxy -envoy envoy.yaml -wasm $(WASM) $(ARGS)

## test: every unit, fuzz-seed, scenario (native and through the .wasm) and dev-proxy test
test: build
	$(GO) test -count=1 ./...

## bench: request-path costs natively and through the .wasm, module size, guest memory
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./policies/ ./plugin/...
	@ls -l $(WASM) | awk '{print "module size: " $$5 " bytes"}'

## fuzz: run every fuzz target of every package for FUZZTIME each
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg || exit 1; \
		done; \
	done

## check: formatting, vet for the host and for wasip1, tidy modules; fails if anything would change
check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./plugin/ ./policies/
	$(GO) mod tidy -diff

## e2e: the docker compose suite against Envoy v1.40.0 with the module (needs Docker with compose, and curl)
e2e: build
	GO=$(GO) sh e2e/run.sh

## image: build the module and an OCI image of it for Istio (e2e/image/Dockerfile); needs Docker
image: build
	docker build --platform linux/amd64 -f e2e/image/Dockerfile -t $(IMAGE) .

## push: push IMAGE to its registry (docker login first)
push: image
	docker push $(IMAGE)

## wat: rebuild hostsim/testdata/wat/*.wasm from their .wat sources (needs wabt's wat2wasm)
wat:
	for f in hostsim/testdata/wat/*.wat; do wat2wasm --output="$${f%.wat}.wasm" "$$f" || exit 1; done

clean:
	rm -rf build
