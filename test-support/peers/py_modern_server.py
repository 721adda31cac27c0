"""Tiny MCP server fixture written with the official Python SDK (PyPI `mcp` 2.3.0).

It speaks both the modern revision (2026-07-28: `server/discover`, per-request `_meta`)
and the legacy `initialize` handshake (2025-11-25), so it is a dual-era interop peer.

Usage (with the venv from scripts/install-peers.sh, e.g. `source .peers/env.sh`):

    "$SWITCHBOARD_PY" test-support/peers/py_modern_server.py --stdio
    "$SWITCHBOARD_PY" test-support/peers/py_modern_server.py --http 3902
        # Streamable HTTP at http://127.0.0.1:3902/mcp (loopback only)
        # optional: --json-response (plain JSON instead of SSE replies)
        #           --stateless     (no Mcp-Session-Id)

Surface:
    tools:    add(a: int, b: int) -> int      "Add two integers"
              greet(name: str) -> str         "Hello, {name}!"
              fail()                          always a tool error (result has isError: true)
    resource: fixture://hello                 text/plain "hello from python"
    prompt:   summarize(text)                 one user message asking to summarize `text`

Logs (SDK and uvicorn) go to stderr at level WARNING; stdout carries only protocol
traffic in stdio mode.
"""

from __future__ import annotations

import argparse
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

SERVER_NAME = "py-modern-server"
SERVER_VERSION = "1.0.0"
FAIL_MESSAGE = "this tool always fails (intentional)"


def build_server() -> MCPServer:
    srv = MCPServer(
        name=SERVER_NAME,
        version=SERVER_VERSION,
        instructions="Switchboard interop fixture (Python SDK).",
        log_level="WARNING",
    )

    @srv.tool(description="Add two integers")
    def add(a: int, b: int) -> int:
        return a + b

    @srv.tool(description="Greet someone by name")
    def greet(name: str) -> str:
        return f"Hello, {name}!"

    # structured_output=False: no outputSchema, as the tool never returns a value.
    @srv.tool(description="Always fails; the tool result has isError: true", structured_output=False)
    def fail() -> str:
        # ToolError is the SDK's "anticipated failure": the call returns
        # isError=true with this message as text content (not a JSON-RPC error).
        raise ToolError(FAIL_MESSAGE)

    @srv.resource(
        "fixture://hello",
        name="hello",
        description="A static text resource",
        mime_type="text/plain",
    )
    def hello() -> str:
        return "hello from python"

    @srv.prompt(description="Ask the model to summarize a text")
    def summarize(text: str) -> str:
        return f"Please summarize the following text:\n\n{text}"

    return srv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--stdio", action="store_true", help="serve MCP over stdin/stdout")
    mode.add_argument("--http", metavar="PORT", type=int, help="serve Streamable HTTP at http://127.0.0.1:PORT/mcp")
    parser.add_argument("--json-response", action="store_true", help="HTTP: answer POSTs with JSON, not SSE")
    parser.add_argument("--stateless", action="store_true", help="HTTP: stateless mode (no Mcp-Session-Id)")
    args = parser.parse_args(argv)

    srv = build_server()
    if args.stdio:
        srv.run("stdio")
        return 0

    import uvicorn

    host = "127.0.0.1"
    app = srv.streamable_http_app(
        host=host,  # loopback host also turns on the SDK's DNS-rebinding protection
        json_response=args.json_response,
        stateless_http=args.stateless,
    )
    # uvicorn's default log config writes to stderr; access logs are off so that
    # nothing at all is printed on stdout.
    uvicorn.run(app, host=host, port=args.http, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
