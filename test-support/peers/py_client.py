"""A small MCP client written with the official Python SDK (mcp 2.x), for interop tests.

It connects to a server, lists its tools, optionally calls one, and prints one JSON object:
{"protocolVersion", "serverInfo", "tools": [names], "result": <call result or error>}.

Usage:
  py_client.py [--mode auto|legacy] [--call TOOL --args JSON] --url URL
  py_client.py [--mode auto|legacy] [--call TOOL --args JSON] --stdio COMMAND [ARG...]
"""

import argparse
import asyncio
import json
import sys

from mcp import Client
from mcp.client.stdio import StdioServerParameters


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="auto", choices=["auto", "legacy"])
    parser.add_argument("--call")
    parser.add_argument("--args", default="{}")
    parser.add_argument("--url")
    parser.add_argument("--stdio", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    if options.url:
        target = options.url
    elif options.stdio:
        target = StdioServerParameters(command=options.stdio[0], args=options.stdio[1:])
    else:
        parser.error("give --url or --stdio")

    report: dict = {}
    async with Client(target, mode=options.mode, read_timeout_seconds=20) as client:
        report["protocolVersion"] = client.protocol_version
        info = client.server_info
        report["serverInfo"] = info.model_dump(exclude_none=True) if info else None
        tools = await client.list_tools()
        report["tools"] = [tool.name for tool in tools.tools]
        if options.call:
            try:
                result = await client.call_tool(options.call, json.loads(options.args))
                report["result"] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
            except Exception as error:  # the error is the observation
                report["error"] = f"{type(error).__name__}: {error}"
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
