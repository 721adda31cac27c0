# lib.sh: shell functions the scripts here share. Source it; it runs nothing by itself.

# free_port: a loopback TCP port that was free a moment ago.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# gateway_config FILE NAME URL: a gateway.toml with one upstream, NAME at URL, served without a
# prefix, so its tools, resources and prompts keep their own names.
gateway_config() {
    cat >"$1" <<TOML
# Written by ${0##*/}.
[upstreams.$2]
url = "$3"
prefix = false
TOML
}
