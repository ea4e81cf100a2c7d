#!/bin/sh
# make e2e: run the e2e suite against Envoy in Docker Compose.
# Expects build/secretgate.wasm (make build). Generates the test certificates,
# brings the stack up, waits for Envoy's admin /ready, runs the e2e tests,
# prints the containers' logs if anything failed, and always tears down.
set -eu

cd "$(dirname "$0")/.."
GO=${GO:-go}
compose="docker compose -f e2e/docker-compose.yaml"
admin=${SECRETGATE_E2E_ENVOY_ADMIN:-127.0.0.1:9901}
records=${SECRETGATE_E2E_RECORDS:-127.0.0.1:18081}
ready_timeout=${E2E_READY_TIMEOUT:-90}

fail() {
	echo "e2e: $*" >&2
	exit 1
}

command -v docker >/dev/null 2>&1 ||
	fail "docker not found: the e2e suite runs Envoy and a test upstream in Docker Compose. Install Docker with the compose plugin, then run make e2e again."
docker info >/dev/null 2>&1 ||
	fail "the Docker engine is not reachable (docker info failed): start a local engine (the bind mounts name files in this checkout), then run make e2e again."
docker compose version >/dev/null 2>&1 ||
	fail "docker compose is not available: install the Docker Compose plugin (docker compose, v2), then run make e2e again."
command -v curl >/dev/null 2>&1 || fail "curl not found: it is used to wait for Envoy's admin /ready."
[ -f build/secretgate.wasm ] || fail "build/secretgate.wasm is missing: run make build (make e2e does)."

"$GO" run ./e2e/gencerts -out build/e2e/certs

teardown() {
	$compose --profile badconfig down -v --remove-orphans >/dev/null 2>&1 || true
}
trap teardown EXIT
trap 'exit 130' INT TERM

show_logs() {
	echo "e2e: docker compose logs:" >&2
	$compose logs --no-color >&2 || true
}

$compose up -d --build || { show_logs; fail "docker compose up failed"; }

waited=0
until curl -fsS "http://$admin/ready" >/dev/null 2>&1 && curl -fsS "http://$records/healthz" >/dev/null 2>&1; do
	if [ "$waited" -ge "$ready_timeout" ]; then
		show_logs
		fail "Envoy (http://$admin/ready) or the upstream (http://$records/healthz) not ready after ${ready_timeout}s"
	fi
	sleep 1
	waited=$((waited + 1))
done

status=0
SECRETGATE_E2E_REQUIRE=1 "$GO" test -tags e2e -count=1 ./e2e/... || status=$?
if [ "$status" -ne 0 ]; then
	show_logs
	echo "e2e: tests failed" >&2
fi
exit "$status"
