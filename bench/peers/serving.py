"""What the benchmark's Python SDK peers share: the `--stdio` / `--http PORT` choice, and serving
an `MCPServer` on it the way the SDK documents (`srv.run("stdio")`, or `streamable_http_app()`
with its default options under uvicorn with the access log off). In HTTP mode the process exits
when its stdin closes, so it cannot outlive the benchmark that started it.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

from mcp.server.mcpserver import MCPServer


def add_transport_arguments(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--stdio", action="store_true", help="serve MCP over stdin/stdout")
    mode.add_argument("--http", metavar="PORT", type=int, help="serve Streamable HTTP at http://127.0.0.1:PORT/mcp")


def exit_when_stdin_closes() -> None:
    def watch() -> None:
        while sys.stdin.buffer.read(65536):
            pass
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def serve(srv: MCPServer, args: argparse.Namespace) -> None:
    if args.stdio:
        srv.run("stdio")
        return

    import uvicorn

    exit_when_stdin_closes()
    host = "127.0.0.1"
    app = srv.streamable_http_app(host=host)
    uvicorn.run(app, host=host, port=args.http, log_level="warning", access_log=False)
