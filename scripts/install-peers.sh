#!/usr/bin/env bash
# install-peers.sh: install the real third-party MCP peers used by Switchboard's
# interop tests, with exact versions, into a git-ignored folder.
#
# Usage:
#   scripts/install-peers.sh            # install, or do nothing quickly if already installed
#   source .peers/env.sh                # then use the peers (see "env.sh" below)
#
# Environment:
#   SWITCHBOARD_PEERS_DIR   where to install (default: <repo root>/.peers, git-ignored)
#   SWITCHBOARD_PYTHON      interpreter that creates the venv (default: python3, must be >= 3.10)
#   SWITCHBOARD_PEERS_FORCE=1  reinstall everything even if the stamps match
#
# What it installs (the pins live in test-support/peers/, not in this script):
#   $SWITCHBOARD_PEERS_DIR/node/   npm project from test-support/peers/node/package.json
#                                  (+ package-lock.json, installed with `npm ci`):
#                                  node 22 (npm package `node`), server-everything, TS SDK v1,
#                                  TS SDK v2 client, ext-tasks (tasks client), conformance
#                                  suite, Inspector.
#                                  Node 22 is bootstrapped first and npm runs with it first on
#                                  PATH: under Node 20, npm silently resolves Inspector 0.15.0
#                                  and the conformance CLI crashes.
#   $SWITCHBOARD_PEERS_DIR/venv/   Python venv from test-support/peers/requirements.txt (full
#                                  freeze; the top-level pins are in requirements.in): mcp,
#                                  mcp-server-time, uvicorn.
#   $SWITCHBOARD_PEERS_DIR/env.sh  source it to get
#                                    SWITCHBOARD_PEERS_DIR, SWITCHBOARD_NODE22 (node 22 binary),
#                                    SWITCHBOARD_PY (venv python), and PATH with venv/bin and
#                                    node/node_modules/.bin in front. Note that this makes
#                                    `node` = node 22 and `python` = the venv python.
#
# Re-runs: each part keeps a stamp, keyed by a hash of this script, its pin files and the
# install dir. When every stamp matches and the key binaries exist, the script only
# rewrites env.sh and prints the cached version line (well under 1 s). Change a pin file
# and only that part is rebuilt from scratch.
#
# Regenerating pins: with no test-support/peers/node/package-lock.json, the node part runs
# `npm install` and leaves a fresh lock in $SWITCHBOARD_PEERS_DIR/node/; copy it back into
# test-support/peers/node/. For Python, see the header of requirements.txt.
#
# Network: only the npm registry and PyPI (as configured for npm and pip) are used. Per-request
# timeouts are short (npm 30 s, 1 retry; pip 30 s, 1 retry), so an unreachable registry gives
# a clear error instead of a hang. Output: progress goes to stderr; the last line on stdout is
#   peers: node v22.x, server-everything ..., ts-sdk ..., ts-client ..., ext-tasks ..., conformance ..., inspector ..., mcp ..., ...
set -euo pipefail

log() { printf 'install-peers: %s\n' "$*" >&2; }
die() { printf 'install-peers: error: %s\n' "$*" >&2; exit 1; }

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPT="$REPO_ROOT/scripts/install-peers.sh"
SPEC="$REPO_ROOT/test-support/peers"
PKG_JSON="$SPEC/node/package.json"
PKG_LOCK="$SPEC/node/package-lock.json"
REQS="$SPEC/requirements.txt"

PEERS="${SWITCHBOARD_PEERS_DIR:-$REPO_ROOT/.peers}"
mkdir -p "$PEERS"
PEERS=$(cd "$PEERS" && pwd)
NODE_DIR="$PEERS/node"
VENV="$PEERS/venv"
NODE22="$NODE_DIR/node_modules/node/bin/node"
VPY="$VENV/bin/python"
PYTHON_BIN="${SWITCHBOARD_PYTHON:-python3}"

NPM_NET=(--fetch-timeout=30000 --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=10000)
NPM_QUIET=(--no-fund --no-audit --no-update-notifier)
PIP_NET=(--timeout 30 --retries 1)

[[ -f "$PKG_JSON" ]] || die "missing $PKG_JSON"
[[ -f "$REQS" ]] || die "missing $REQS"

# One installer at a time (parallel test runners may all call this script).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$PEERS/.install.lock"
  flock -w 1200 9 || die "timed out waiting for another install-peers.sh ($PEERS/.install.lock)"
fi

key() { # key <file>...: short hash of the install dir, this script and the given files
  { printf '%s\n%s\n' "$PEERS" "$(uname -sm)"; cat "$SCRIPT" "$@"; } | sha256sum | cut -c1-32
}
node_files=("$PKG_JSON")
[[ -f "$PKG_LOCK" ]] && node_files+=("$PKG_LOCK")
NODE_KEY=$(key "${node_files[@]}")
VENV_KEY=$(key "$REQS")

stamp_ok() { # stamp_ok <stampfile> <key> <file that must be executable>...
  local stamp=$1 want=$2 got f
  shift 2
  [[ -z "${SWITCHBOARD_PEERS_FORCE:-}" && -f "$stamp" ]] || return 1
  read -r got <"$stamp" || return 1
  [[ "$got" == "$want" ]] || return 1
  for f in "$@"; do [[ -x "$f" ]] || return 1; done
}

registry_hint_npm() {
  local reg
  reg=$(npm config get registry 2>/dev/null || echo "the npm registry")
  if timeout 10 npm ping "${NPM_NET[@]}" >/dev/null 2>&1; then
    die "npm failed (see output above); the registry $reg answers npm ping, so this is not a network problem"
  fi
  die "npm failed: the npm registry $reg is unreachable (npm ping failed). Check network/proxy settings or the 'registry' npm config."
}

registry_hint_pip() {
  local idx
  idx=${PIP_INDEX_URL:-$("$VPY" -m pip config get global.index-url 2>/dev/null || true)}
  idx=${idx:-https://pypi.org/simple/}
  if "$VPY" - "$idx" >/dev/null 2>&1 <<'EOF'
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=15).close()
EOF
  then
    die "pip install failed (see output above); the index $idx is reachable, so this is not a network problem"
  fi
  die "pip install failed: the package index $idx is unreachable. Check network/proxy settings or PIP_INDEX_URL."
}

node_version_ok() { # node_version_ok <node binary>: true if >= 22.19 (Inspector 2.x needs it)
  "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=19)?0:1)' 2>/dev/null
}

install_node() {
  command -v npm >/dev/null 2>&1 || die "npm not found on PATH (needed to install the node peers)"
  command -v node >/dev/null 2>&1 || die "node not found on PATH (needed to run npm)"
  local node_pin boot="" node22_dir
  node_pin=$(node -p 'require(process.argv[1]).dependencies.node' "$PKG_JSON")
  [[ "$node_pin" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "package.json must pin node exactly (got '$node_pin')"

  # 1. A node >= 22.19 to run npm with: the system one if it is new enough, else node@<pin> from npm.
  if node_version_ok "$(command -v node)"; then
    node22_dir=$(dirname "$(command -v node)")
  else
    boot="$PEERS/.bootstrap"
    log "bootstrapping node $node_pin from the npm registry (system node is $(node --version))"
    rm -rf "$boot" && mkdir -p "$boot"
    printf '{"private":true}\n' >"$boot/package.json"
    (cd "$boot" && npm install --prefix "$boot" --no-save --no-package-lock "${NPM_QUIET[@]}" "${NPM_NET[@]}" \
      --loglevel=error "node@$node_pin" >&2) || registry_hint_npm
    node22_dir="$boot/node_modules/node/bin"
    node_version_ok "$node22_dir/node" || die "bootstrapped node is not >= 22.19: $("$node22_dir/node" --version 2>&1)"
  fi

  # 2. The npm project, installed with that node first on PATH.
  rm -rf "$NODE_DIR" && mkdir -p "$NODE_DIR"
  cp "$PKG_JSON" "$NODE_DIR/package.json"
  local cmd=(ci)
  if [[ -f "$PKG_LOCK" ]]; then
    cp "$PKG_LOCK" "$NODE_DIR/package-lock.json"
  else
    cmd=(install --save-exact)
    log "no $PKG_LOCK: resolving with npm install (copy $NODE_DIR/package-lock.json back to pin the tree)"
  fi
  log "npm ${cmd[0]} in $NODE_DIR (node $("$node22_dir/node" --version))"
  (cd "$NODE_DIR" && PATH="$node22_dir:$PATH" npm "${cmd[@]}" "${NPM_QUIET[@]}" "${NPM_NET[@]}" >&2) \
    || registry_hint_npm
  if [[ -n "$boot" ]]; then rm -rf "$boot"; fi

  [[ -x "$NODE22" ]] || die "node 22 binary missing after install: $NODE22"
  node_version_ok "$NODE22" || die "$NODE22 is not node >= 22.19: $("$NODE22" --version)"
  printf '%s\n' "$NODE_KEY" >"$NODE_DIR/.switchboard-stamp"
}

install_venv() {
  command -v "$PYTHON_BIN" >/dev/null 2>&1 || die "$PYTHON_BIN not found (set SWITCHBOARD_PYTHON)"
  "$PYTHON_BIN" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$PYTHON_BIN is $("$PYTHON_BIN" --version 2>&1); mcp 2.x needs Python >= 3.10"
  log "creating venv in $VENV ($("$PYTHON_BIN" --version 2>&1))"
  rm -rf "$VENV"
  "$PYTHON_BIN" -m venv "$VENV" || die "python -m venv failed (on Debian: apt-get install python3-venv)"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$VPY" -m pip install --no-input --progress-bar off -q "${PIP_NET[@]}" \
    -r "$REQS" >&2 || registry_hint_pip
  [[ -x "$VENV/bin/mcp-server-time" ]] || die "mcp-server-time missing after pip install"
  printf '%s\n' "$VENV_KEY" >"$VENV/.switchboard-stamp"
}

write_env() {
  local tmp="$PEERS/.env.sh.tmp"
  cat >"$tmp" <<EOF
# Generated by scripts/install-peers.sh; do not edit. Usage: source $PEERS/env.sh
export SWITCHBOARD_PEERS_DIR='$PEERS'
export SWITCHBOARD_NODE22='$NODE22'
export SWITCHBOARD_PY='$VPY'
# venv/bin: mcp-server-time, python; node_modules/.bin: mcp-server-everything, conformance,
# mcp-inspector, and node (= node 22). Prepended once, even if sourced repeatedly.
case ":\$PATH:" in *":$NODE_DIR/node_modules/.bin:"*) ;; *) export PATH="$NODE_DIR/node_modules/.bin:\$PATH" ;; esac
case ":\$PATH:" in *":$VENV/bin:"*) ;; *) export PATH="$VENV/bin:\$PATH" ;; esac
EOF
  if cmp -s "$tmp" "$PEERS/env.sh"; then rm -f "$tmp"; else mv -f "$tmp" "$PEERS/env.sh"; fi
}

summary() { # the version line, from what is actually installed
  local n p
  n=$("$NODE22" -e '
    const d = process.argv[1] + "/node_modules/@modelcontextprotocol/";
    const v = (p) => require(d + p + "/package.json").version;
    console.log(`node ${process.version}, server-everything ${v("server-everything")}, ts-sdk ${v("sdk")}, ` +
      `ts-client ${v("client")}, ext-tasks ${v("ext-tasks")}, ` +
      `conformance ${v("conformance")}, inspector ${v("inspector")}`);' "$NODE_DIR")
  p=$("$VPY" -c '
from importlib.metadata import version as v
print(", ".join(f"{n} {v(n)}" for n in ("mcp", "mcp-server-time", "uvicorn")))')
  printf 'peers: %s, %s\n' "$n" "$p"
}

did=0
if ! stamp_ok "$NODE_DIR/.switchboard-stamp" "$NODE_KEY" "$NODE22" "$NODE_DIR/node_modules/.bin/mcp-server-everything"; then
  t0=$SECONDS; install_node; did=1; log "node peers installed in $((SECONDS - t0)) s"
fi
if ! stamp_ok "$VENV/.switchboard-stamp" "$VENV_KEY" "$VPY" "$VENV/bin/mcp-server-time"; then
  t0=$SECONDS; install_venv; did=1; log "python peers installed in $((SECONDS - t0)) s"
fi
write_env

SUMMARY_FILE="$PEERS/.summary"
want="$NODE_KEY $VENV_KEY"
line=""
if [[ $did == 0 && -f "$SUMMARY_FILE" ]]; then
  { read -r got && read -r line; } <"$SUMMARY_FILE" || line=""
  [[ "$got" == "$want" ]] || line=""
fi
if [[ -z "$line" ]]; then
  line=$(summary)
  printf '%s\n%s\n' "$want" "$line" >"$SUMMARY_FILE"
fi
if [[ $did == 0 ]]; then log "already installed in $PEERS (delete it or set SWITCHBOARD_PEERS_FORCE=1 to reinstall)"; fi
printf '%s\n' "$line"
