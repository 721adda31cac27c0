"""The Python SDK peer of the benchmark: an echo server on the official Python SDK (PyPI `mcp`
2.3.0), wired the way the SDK documents it: `MCPServer` with one `@srv.tool()`, `srv.run("stdio")`
for stdio, and `streamable_http_app()` under uvicorn (default options: stateful sessions, SSE
answers) for Streamable HTTP.

Usage (with the venv from scripts/install-peers.sh):

    "$SWITCHBOARD_PY" bench/peers/py_echo.py --stdio
    "$SWITCHBOARD_PY" bench/peers/py_echo.py --http PORT     # http://127.0.0.1:PORT/mcp

The server keeps the SDK's default settings (2.3.0 logs nothing per request at its default
INFO level); only uvicorn's access log is off. In HTTP mode the process exits when its stdin
closes, so it cannot outlive the benchmark that started it (see `serving.py`).
"""

from __future__ import annotations

import argparse
import sys

from mcp.server.mcpserver import MCPServer
from serving import add_transport_arguments, serve


def build_server() -> MCPServer:
    srv = MCPServer(name="py-echo", version="1.0.0")

    @srv.tool(description="Send the text back unchanged.")
    def echo(text: str) -> str:
        return text

    return srv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_transport_arguments(parser)
    serve(build_server(), parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
