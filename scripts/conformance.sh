#!/usr/bin/env bash
# conformance.sh: run the official MCP conformance suite (pinned to the version in
# test-support/peers/node/package.json) against Switchboard, with conformance-baseline.yml.
#
#   scripts/conformance.sh            # both server requirement sets
#
# It installs the suite and Node 22 through scripts/install-peers.sh (into .peers/, or
# $SWITCHBOARD_PEERS_DIR), builds conformance-server, serves it on a free loopback port and
# runs `conformance server --requirements 2025-11-25` and `--requirements 2026-07-28`.
# Results go to results/conformance/<set>/ (git-ignored). The exit code is non-zero when a
# scenario fails that the baseline does not list, or a listed one now passes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
peers="${SWITCHBOARD_PEERS_DIR:-$root/.peers}"

scripts/install-peers.sh >/dev/null
export PATH="$peers/node/node_modules/node/bin:$PATH"
cargo build --locked -q -p switchboard-conformance --bin conformance-server
target="${CARGO_TARGET_DIR:-$root/target}"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$root/results"
PORT=$port "$target/debug/conformance-server" 2>"$root/results/conformance-server.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
done

status=0
summary=()
for set in 2025-11-25 2026-07-28; do
    out="$root/results/conformance/server-$set"
    rm -rf "$out"
    log=$(mktemp)
    if (cd "$peers/node" && npx --no-install conformance server \
            --url "http://localhost:$port/mcp" --requirements "$set" \
            --expected-failures "$root/conformance-baseline.yml" -o "$out") >"$log" 2>&1; then
        verdict="ok"
    else
        verdict="FAILED"
        status=1
    fi
    # The suite's own lines: per-scenario results, the total and the baseline verdict.
    grep -E '✓|✗|Total:|Baseline|Expected failures|~ |Unexpected|stale|now pass' "$log" | sed "s/^/[$set] /" || true
    total=$(grep -E '^Total:' "$log" | tail -n 1)
    summary+=("server $set: $total ($verdict)")
    rm -f "$log"
done
printf '\nconformance summary:\n'
printf '  %s\n' "${summary[@]}"
exit $status
