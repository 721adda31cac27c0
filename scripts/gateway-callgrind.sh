#!/usr/bin/env bash
# gateway-callgrind.sh: how many instructions the gateway spends in user space per forwarded
# tools/call, counted by valgrind's callgrind.
#
#   scripts/gateway-callgrind.sh [CALLS]                # default 2000 calls, after 200 to warm up
#   scripts/gateway-callgrind.sh --relay [CALLS]        # bench-floor --relay instead: the floor
#   scripts/gateway-callgrind.sh --axum-relay [CALLS]   # bench-floor --axum-relay: the HTTP stack's floor
#
# It builds `switchboard` in release mode, serves `switchboard serve echo --http` on a free
# loopback port, runs `switchboard gateway` in front of it under callgrind, and sends CALLS
# sequential `echo` calls on one keep-alive legacy session (a Python driver, stdlib only).
# Counting starts after the warm-up calls (`callgrind_control -z`) and the count is dumped
# after the last (`callgrind_control -d`), so start-up and shutdown are not in it.
#
# Instruction counts do not depend on what else the machine is doing: two runs of the same
# binary agree to within 0.1%, where timings on a shared VM spread by 5–10%. So this is the
# measure for changes too small for the benchmark's noise. It counts neither the kernel (the
# socket writes and the wake-ups, about a third of the gateway's CPU) nor how long each
# instruction takes: a large memcpy counts far more than it costs. `switchboard-bench
# --workload gateway` remains the measure of latency and throughput.
#
# With --relay or --axum-relay the forwarder counted is the benchmark's floor of that name
# (bench/src/bin/floor.rs) instead of the gateway, in front of the same upstream: what the
# gateway costs above `--axum-relay` is its own, not the HTTP stack's.
#
# The callgrind output stays in results/callgrind/ (git-ignored), for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
forwarder=gateway
case "${1:-}" in
    --relay|--axum-relay) forwarder="${1#--}"; shift ;;
    -*) echo "usage: scripts/gateway-callgrind.sh [--relay|--axum-relay] [CALLS]" >&2; exit 2 ;;
esac
calls="${1:-2000}"
warm=200

command -v valgrind >/dev/null || { echo "gateway-callgrind: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
cargo build --locked -q --release -p switchboard-cli --bin switchboard --bin switchboard-serve
if [ "$forwarder" != gateway ]; then
    cargo build --locked -q --release -p switchboard-bench --bin bench-floor
fi
bin="${CARGO_TARGET_DIR:-$root/target}/release"
out="$root/results/callgrind"
mkdir -p "$out"
rm -f "$out"/callgrind.out.*

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
upstream_port=$(free_port)
gateway_port=$(free_port)
config="$out/gateway.toml"
gateway_config "$config" echo "http://127.0.0.1:$upstream_port/mcp"

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

"$bin/switchboard" serve echo --http "127.0.0.1:$upstream_port" 2>"$out/upstream.log" &
pids+=($!)
case "$forwarder" in
    gateway) command=("$bin/switchboard" gateway --config "$config" --listen "127.0.0.1:$gateway_port") ;;
    *) command=("$bin/bench-floor" "--$forwarder" "127.0.0.1:$gateway_port" --to "127.0.0.1:$upstream_port") ;;
esac
# bench-floor exits when its stdin closes: its stdin is a FIFO this script holds open.
rm -f "$out/stdin" && mkfifo "$out/stdin" && exec 3<>"$out/stdin"
valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.%p" \
    "${command[@]}" <&3 2>"$out/$forwarder.log" >/dev/null &
gateway=$!
pids+=($gateway)

python3 - "$gateway_port" "$calls" "$warm" "$gateway" <<'EOF'
import http.client, json, subprocess, sys, time

port, calls, warm, pid = (int(a) for a in sys.argv[1:])
deadline = time.monotonic() + 120
while True:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/readyz")
        if connection.getresponse().read() is not None:
            break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("gateway-callgrind: the gateway did not start within 120 s")
        time.sleep(0.5)

headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}

def post(body, extra=None):
    connection.request("POST", "/mcp", json.dumps(body), {**headers, **(extra or {})})
    response = connection.getresponse()
    return response, response.read()

response, _ = post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {},
    "clientInfo": {"name": "gateway-callgrind", "version": "1"}}})
session = {"Mcp-Session-Id": response.getheader("Mcp-Session-Id"),
           "MCP-Protocol-Version": "2025-11-25"}
post({"jsonrpc": "2.0", "method": "notifications/initialized"}, session)

def call(i):
    response, body = post({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                           "params": {"name": "echo", "arguments": {"text": "hello"}}}, session)
    if response.status != 200 or b'"hello"' not in body:
        sys.exit(f"gateway-callgrind: call {i} was answered {response.status}: {body[:200]!r}")

for i in range(warm):
    call(1 + i)
subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
for i in range(calls):
    call(1 + warm + i)
subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
EOF

dump=$(ls "$out"/callgrind.out."$gateway".* | head -1)
total=$(awk '/^(summary|totals):/ { print $2; exit }' "$dump")
python3 -c "import sys; t, n = int(sys.argv[1]), int(sys.argv[2]); print(f'{t / n:,.0f} instructions per forwarded call ({n} calls; {sys.argv[3]})')" \
    "$total" "$calls" "$dump"
