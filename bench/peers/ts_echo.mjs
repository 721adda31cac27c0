// The TypeScript SDK peer of the benchmark: an echo server on the official TypeScript SDK v1
// (@modelcontextprotocol/sdk 1.32.2), wired the way the SDK's README wires one: McpServer with
// registerTool, StdioServerTransport for stdio, and a stateful StreamableHTTPServerTransport per
// session (default options: SSE answers, no JSON-response mode) for Streamable HTTP.
//
// Usage (Node 22 from scripts/install-peers.sh; SWITCHBOARD_PEERS_DIR must be set):
//   node bench/peers/ts_echo.mjs --stdio
//   node bench/peers/ts_echo.mjs --http PORT     # http://127.0.0.1:PORT/mcp, loopback only
//
// The HTTP server is plain node:http rather than Express, so the SDK is measured without a web
// framework in front of it. In HTTP mode the process exits when its stdin closes, so it cannot
// outlive the benchmark that started it.
import { createRequire } from "node:module";
import { randomUUID } from "node:crypto";
import http from "node:http";
import path from "node:path";

// The SDK is installed under $SWITCHBOARD_PEERS_DIR/node; resolve it from there, not from this file.
const peers = process.env.SWITCHBOARD_PEERS_DIR;
if (!peers) {
  process.stderr.write("ts_echo.mjs: SWITCHBOARD_PEERS_DIR is not set\n");
  process.exit(2);
}
const require = createRequire(path.join(peers, "node", "package.json"));
const { McpServer } = require("@modelcontextprotocol/sdk/server/mcp.js");
const { StdioServerTransport } = require("@modelcontextprotocol/sdk/server/stdio.js");
const { StreamableHTTPServerTransport } = require("@modelcontextprotocol/sdk/server/streamableHttp.js");
const { isInitializeRequest } = require("@modelcontextprotocol/sdk/types.js");
const { z } = require("zod");

function buildServer() {
  const server = new McpServer({ name: "ts-echo", version: "1.0.0" });
  server.registerTool(
    "echo",
    { description: "Send the text back unchanged.", inputSchema: { text: z.string().describe("The text to send back.") } },
    async ({ text }) => ({ content: [{ type: "text", text }] }),
  );
  return server;
}

const MAX_BODY_BYTES = 4 * 1024 * 1024;

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error("body too large"));
        req.destroy();
      } else {
        chunks.push(chunk);
      }
    });
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch (error) {
        reject(error);
      }
    });
    req.on("error", reject);
  });
}

function refuse(res, status, message) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}

function serveHttp(port) {
  const transports = new Map();
  const server = http.createServer(async (req, res) => {
    try {
      if (new URL(req.url, "http://127.0.0.1").pathname !== "/mcp") return refuse(res, 404, "not found");
      const sessionId = req.headers["mcp-session-id"];
      const existing = sessionId ? transports.get(sessionId) : undefined;
      if (existing) return await existing.handleRequest(req, res);
      if (sessionId) return refuse(res, 404, "no such session");
      if (req.method !== "POST") return refuse(res, 400, "no session");
      const body = await readJson(req);
      if (!isInitializeRequest(body)) return refuse(res, 400, "no session; send initialize first");
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => transports.set(id, transport),
      });
      transport.onclose = () => {
        if (transport.sessionId) transports.delete(transport.sessionId);
      };
      await buildServer().connect(transport);
      await transport.handleRequest(req, res, body);
    } catch (error) {
      if (!res.headersSent) refuse(res, 500, String(error));
    }
  });
  server.listen(port, "127.0.0.1");
  // The benchmark holds our stdin open; when it goes away, so do we.
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
  process.stdin.resume();
}

const argv = process.argv.slice(2);
if (argv[0] === "--stdio" && argv.length === 1) {
  await buildServer().connect(new StdioServerTransport());
} else if (argv[0] === "--http" && argv.length === 2 && /^\d+$/.test(argv[1])) {
  serveHttp(Number(argv[1]));
} else {
  process.stderr.write("usage: ts_echo.mjs --stdio | --http PORT\n");
  process.exit(2);
}
