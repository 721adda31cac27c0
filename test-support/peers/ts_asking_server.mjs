// A legacy Streamable HTTP server on the official TypeScript SDK v1 whose one tool asks the
// user through the server object (`server.elicitInput`), not through the request's context.
// The SDK sends such a request on the session's standalone GET stream, and drops it when that
// stream is not open yet. Every GET is answered only after GET_DELAY_MS, so a client that calls
// the tool before its GET stream is open waits for an elicitation that never comes.
//
// Usage: PORT=0 GET_DELAY_MS=300 node ts_asking_server.mjs   (prints "listening PORT" on stdout)
import { createRequire } from "node:module";
import http from "node:http";
import path from "node:path";
import { randomUUID } from "node:crypto";

const peers = process.env.SWITCHBOARD_PEERS_DIR;
const require = createRequire(path.join(peers, "node", "package.json"));
const { McpServer } = require("@modelcontextprotocol/sdk/server/mcp.js");
const { StreamableHTTPServerTransport } = require("@modelcontextprotocol/sdk/server/streamableHttp.js");
const { isInitializeRequest } = require("@modelcontextprotocol/sdk/types.js");

const getDelay = Number(process.env.GET_DELAY_MS ?? "300");

function newServer() {
  const mcp = new McpServer({ name: "ts-asking", version: "1.0.0" });
  mcp.registerTool("ask", { description: "Asks the user for a name" }, async () => {
    const answer = await mcp.server.elicitInput({
      message: "What is your name?",
      requestedSchema: { type: "object", properties: { name: { type: "string", default: "Ada" } } },
    });
    return { content: [{ type: "text", text: `${answer.action}: ${answer.content?.name ?? ""}` }] };
  });
  return mcp;
}

const sessions = new Map();

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : undefined;
}

async function handle(req, res) {
  const id = req.headers["mcp-session-id"];
  const body = req.method === "POST" ? await readBody(req) : undefined;
  let transport = id ? sessions.get(id) : undefined;
  if (!transport && req.method === "POST" && isInitializeRequest(body)) {
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => sessions.set(sid, transport),
    });
    transport.onclose = () => transport.sessionId && sessions.delete(transport.sessionId);
    await newServer().connect(transport);
  }
  if (!transport) {
    res.writeHead(400, { "content-type": "application/json" });
    res.end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32000, message: "no session" } }));
    return;
  }
  await transport.handleRequest(req, res, body);
}

const server = http.createServer((req, res) => {
  const run = () => handle(req, res).catch((error) => {
    if (!res.headersSent) res.writeHead(500);
    res.end(String(error));
  });
  if (req.method === "GET") setTimeout(run, getDelay);
  else run();
});
server.listen(Number(process.env.PORT ?? "0"), "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
