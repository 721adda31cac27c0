"""The Python SDK peer of the benchmark: an echo server on the official Python SDK (PyPI `mcp`
2.3.0), wired the way the SDK documents it: `MCPServer` with one `@srv.tool()`, `srv.run("stdio")`
for stdio, and `streamable_http_app()` under uvicorn (default options: stateful sessions, SSE
answers) for Streamable HTTP.

Usage (with the venv from scripts/install-peers.sh):

    "$SWITCHBOARD_PY" bench/peers/py_echo.py --stdio
    "$SWITCHBOARD_PY" bench/peers/py_echo.py --http PORT     # http://127.0.0.1:PORT/mcp

The server keeps the SDK's default settings (2.3.0 logs nothing per request at its default
INFO level); only uvicorn's access log is off. In HTTP mode the process exits when its stdin
closes, so it cannot outlive the benchmark that started it.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

from mcp.server.mcpserver import MCPServer


def build_server() -> MCPServer:
    srv = MCPServer(name="py-echo", version="1.0.0")

    @srv.tool(description="Send the text back unchanged.")
    def echo(text: str) -> str:
        return text

    return srv


def exit_when_stdin_closes() -> None:
    def watch() -> None:
        while sys.stdin.buffer.read(65536):
            pass
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--stdio", action="store_true", help="serve MCP over stdin/stdout")
    mode.add_argument("--http", metavar="PORT", type=int, help="serve Streamable HTTP at http://127.0.0.1:PORT/mcp")
    args = parser.parse_args(argv)

    srv = build_server()
    if args.stdio:
        srv.run("stdio")
        return 0

    import uvicorn

    exit_when_stdin_closes()
    host = "127.0.0.1"
    app = srv.streamable_http_app(host=host)
    uvicorn.run(app, host=host, port=args.http, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
