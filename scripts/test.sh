#!/usr/bin/env bash
# test.sh: the whole test suite, as CI runs it. From a fresh clone:
#
#   ./scripts/test.sh
#
# It installs what the tests need (the pinned third-party MCP peers, into .peers/), then runs:
# rustfmt, clippy with warnings as errors, every test with cargo-nextest (or cargo test when
# nextest is absent), the doc tests, the official MCP conformance suite, and a smoke run of
# the benchmark.
#
# Environment:
#   CARGO_TARGET_DIR                 reuse a build directory (CI keeps one outside the clone)
#   SWITCHBOARD_PEERS_DIR            where the peers live (default: .peers)
#   SWITCHBOARD_TEST_POSTGRES_URL    set automatically when PostgreSQL answers on 127.0.0.1:5432
#   SWITCHBOARD_TEST_REDIS_URL       set automatically when Redis answers on 127.0.0.1:6379
#   SWITCHBOARD_REQUIRE_PEERS=1      fail (not skip) tests whose peer is missing; default in CI
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

answers() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

if [[ "${CI:-}" == "true" ]]; then
    export SWITCHBOARD_REQUIRE_PEERS="${SWITCHBOARD_REQUIRE_PEERS:-1}"
fi
if [[ -z "${SWITCHBOARD_TEST_POSTGRES_URL:-}" ]] && answers 5432; then
    export SWITCHBOARD_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/test"
fi
if [[ -z "${SWITCHBOARD_TEST_REDIS_URL:-}" ]] && answers 6379; then
    export SWITCHBOARD_TEST_REDIS_URL="redis://127.0.0.1:6379"
fi
echo "services: postgres=${SWITCHBOARD_TEST_POSTGRES_URL:-absent} redis=${SWITCHBOARD_TEST_REDIS_URL:-absent}" >&2

step "installing the interop peers (npm and PyPI, pinned)"
scripts/install-peers.sh

step "rustfmt"
cargo fmt --all --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build (the tests run the built binaries)"
cargo build --workspace --bins --locked

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
else
    cargo test --workspace --locked --no-fail-fast
fi

step "doc tests"
cargo test --workspace --doc --locked

step "conformance (official MCP suite, with conformance-baseline.yml)"
scripts/conformance.sh

step "benchmark smoke (every peer answers correctly; no timings asserted; see docs/performance.md)"
cargo run -q -p switchboard-bench --locked -- --smoke --no-build
