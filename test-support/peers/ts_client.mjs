// A small MCP client written with the official TypeScript SDK v1 (@modelcontextprotocol/sdk),
// for interop tests. It connects (legacy handshake: SDK v1 speaks only the legacy era), lists
// tools, optionally calls one, and prints one JSON object:
// {"serverInfo", "tools": [names], "result" | "error"}.
//
// Usage:
//   node ts_client.mjs [--call TOOL --args JSON] --url URL
//   node ts_client.mjs [--call TOOL --args JSON] --stdio COMMAND [ARG...]
import { createRequire } from "node:module";
import path from "node:path";

// The SDK is installed under .peers/node; resolve it from there, not from this file.
const peers = process.env.SWITCHBOARD_PEERS_DIR;
const require = createRequire(path.join(peers, "node", "package.json"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");

const argv = process.argv.slice(2);
let call, args = "{}", url, stdio;
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--call") call = argv[++i];
  else if (argv[i] === "--args") args = argv[++i];
  else if (argv[i] === "--url") url = argv[++i];
  else if (argv[i] === "--stdio") { stdio = argv.slice(i + 1); break; }
}
const transport = url
  ? new StreamableHTTPClientTransport(new URL(url))
  : new StdioClientTransport({ command: stdio[0], args: stdio.slice(1), stderr: "inherit" });
const client = new Client({ name: "switchboard-interop", version: "1.0.0" });
await client.connect(transport);
const report = { serverInfo: client.getServerVersion() ?? null };
report.tools = (await client.listTools()).tools.map((tool) => tool.name);
if (call) {
  try {
    report.result = await client.callTool({ name: call, arguments: JSON.parse(args) });
  } catch (error) {
    report.error = `${error.name}: ${error.message}`;
  }
}
process.stdout.write(JSON.stringify(report) + "\n");
await client.close();
