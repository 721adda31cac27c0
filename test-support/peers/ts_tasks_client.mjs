// A tasks client written with the official TypeScript tasks package
// (@modelcontextprotocol/ext-tasks, on the TypeScript SDK v2 client @modelcontextprotocol/client),
// for interop tests against a 2026-07-28 server with the tasks extension
// (`io.modelcontextprotocol/tasks`, SEP-2663) over Streamable HTTP.
//
// It connects pinned to 2026-07-28 (`server/discover`, no legacy fallback), opens an ext-tasks
// session, calls the conformance server's task tools and prints one JSON object:
// {"protocolVersion", "era", "taskCapabilities", "cases": {NAME: {...}}, "rawMethods": [...], "seconds"}.
// Each case reports what ext-tasks produced: the execution kind ("immediate" | "task"), the
// outcome status, the result's text and isError, a failure's code, and the input requests the
// application handler saw. A case that throws reports {"exception": "..."} instead.
//
// ext-tasks sends its task traffic (tools/call, tasks/*) through a host-owned `rawDispatch`
// (the SDK Client's codecs do not carry the task shapes). Here that is the SDK's own
// Streamable HTTP transport: requests go out with `send` (which derives MCP-Protocol-Version,
// Mcp-Method and Mcp-Name from the body) and their responses are taken off the transport
// before the Client sees them.
//
// Usage: node ts_tasks_client.mjs URL
import path from "node:path";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const started = Date.now();
const url = process.argv[2];
if (!url) {
  process.stderr.write("usage: node ts_tasks_client.mjs URL\n");
  process.exit(2);
}
// The whole run is bounded: if anything hangs, say where and fail.
const report = { cases: {} };
const hardStop = setTimeout(() => {
  report.timedOut = `the script did not finish within 50 s (${((Date.now() - started) / 1000).toFixed(1)} s)`;
  process.stdout.write(JSON.stringify(report) + "\n");
  process.exit(1);
}, 50_000);

// The packages are ESM and installed under $SWITCHBOARD_PEERS_DIR/node, not next to this file:
// resolve an export's "import" target by hand, so that this script and ext-tasks load the same
// module instances (ext-tasks checks `instanceof ProtocolError`).
const nodeModules = path.join(process.env.SWITCHBOARD_PEERS_DIR, "node", "node_modules");
async function importPackage(name, subpath = ".") {
  const dir = path.join(nodeModules, name);
  const manifest = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
  let target = manifest.exports[subpath];
  while (target !== null && typeof target === "object") target = target.import ?? target.default;
  return import(pathToFileURL(path.join(dir, target)).href);
}
const sdk = await importPackage("@modelcontextprotocol/client");
const tasks = await importPackage("@modelcontextprotocol/ext-tasks", "./client");
const { Client, StreamableHTTPClientTransport } = sdk;
const { createTaskSessionFromClient, createApplicationInputHandler, DispatchError } = tasks;

const PROTOCOL_VERSION = "2026-07-28";
const CLIENT_INFO = { name: "switchboard-tasks-interop", version: "1.0.0" };
const CLIENT_CAPABILITIES = { elicitation: { form: {} }, extensions: { "io.modelcontextprotocol/tasks": {} } };
const RAW_ID_PREFIX = "ext-tasks-";
const REQUEST_TIMEOUT_MS = 10_000;

/** The SDK's Streamable HTTP transport plus the raw request path ext-tasks needs. */
class CoordinatedTransport extends StreamableHTTPClientTransport {
  #pending = new Map();
  #counter = 0;
  #onmessage;
  methods = new Set();

  constructor(serverUrl) {
    super(serverUrl);
    // Whatever handler the Client installs as `onmessage` (it may chain an earlier one) is
    // wrapped, so responses to raw requests are taken off before they reach it.
    Object.defineProperty(this, "onmessage", {
      configurable: true,
      enumerable: true,
      get: () => this.#onmessage,
      set: (handler) => {
        this.#onmessage =
          handler === undefined ? undefined : (message, extra) => this.#take(message) || handler(message, extra);
      },
    });
  }

  /** Settles the raw request `message` answers; false when it is not such a response. */
  #take(message) {
    const id = message?.id;
    if (typeof id !== "string" || !id.startsWith(RAW_ID_PREFIX) || "method" in message) return false;
    this.#pending.get(id)?.settle(
      "error" in message
        ? {
            kind: "error",
            error: {
              code: message.error.code,
              message: message.error.message,
              ...(message.error.data === undefined ? {} : { data: message.error.data }),
            },
          }
        : { kind: "result", result: message.result },
    );
    return true;
  }

  /** ext-tasks' `rawDispatch`: one JSON-RPC request, its response as {kind, result | error}. */
  dispatch = (request, options = {}) => {
    const id = `${RAW_ID_PREFIX}${(this.#counter += 1)}`;
    this.methods.add(request.method);
    const message = { jsonrpc: "2.0", id, method: request.method };
    if (request.params !== undefined) message.params = request.params;
    const timeoutMs = options.context?.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    const wire = new AbortController();
    return new Promise((resolve, reject) => {
      const finish = (settle) => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        this.#pending.delete(id);
        settle();
      };
      const timer = setTimeout(() => {
        wire.abort();
        finish(() => reject(new DispatchError(`${request.method} timed out after ${timeoutMs} ms`)));
      }, timeoutMs);
      const onAbort = () => {
        wire.abort(options.signal.reason);
        finish(() => reject(options.signal.reason ?? new Error("aborted")));
      };
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.#pending.set(id, { settle: (response) => finish(() => resolve(response)) });
      this.send(message, {
        ...(options.context?.headers === undefined ? {} : { headers: options.context.headers }),
        requestSignal: wire.signal,
      }).catch((error) => {
        if (this.#pending.has(id)) finish(() => reject(new DispatchError(`${request.method}: ${error}`, false, { cause: error })));
      });
    });
  };
}

const transport = new CoordinatedTransport(new URL(url));
const client = new Client(CLIENT_INFO, {
  capabilities: CLIENT_CAPABILITIES,
  versionNegotiation: { mode: { pin: PROTOCOL_VERSION } },
});
await client.connect(transport, { timeout: REQUEST_TIMEOUT_MS });
report.protocolVersion = client.getNegotiatedProtocolVersion() ?? null;
report.era = client.getProtocolEra() ?? null;

// What the application was asked, per case, in the order asked.
const asked = [];
const answers = {
  confirm: { action: "accept", content: { confirm: true } },
  first: { action: "accept", content: { name: "Ann" } },
  second: { action: "accept", content: { name: "Bo" } },
};
const session = createTaskSessionFromClient(client, {
  endpointId: `switchboard-interop:${url}`,
  rawDispatch: transport.dispatch,
  v2RequestFraming: {
    protocolVersion: PROTOCOL_VERSION,
    clientInfo: CLIENT_INFO,
    clientCapabilities: CLIENT_CAPABILITIES,
  },
  maxInputRounds: 5,
  onInputRequest: createApplicationInputHandler({
    elicitation: (request, context) => {
      asked.push({
        kind: request.kind,
        inputId: context.inputId ?? null,
        delivery: context.delivery,
        message: request.params.message ?? null,
      });
      return answers[context.inputId] ?? { action: "decline" };
    },
    sampling: () => {
      throw new Error("no sampling in this test");
    },
    roots: () => ({ roots: [] }),
  }),
  onError: (error) => {
    (report.backgroundErrors ??= []).push(`${error.name}: ${error.message}`);
  },
});
// What ext-tasks made of the server: the tasks generation it speaks and what it may do.
report.taskCapabilities = session.capabilities;

function describe(result) {
  const text = (result?.content ?? []).filter((block) => block.type === "text").map((block) => block.text);
  return { text: text.join("\n"), isError: result?.isError === true, resultType: result?.resultType ?? null };
}

function describeOutcome(outcome) {
  switch (outcome.status) {
    case "completed":
      return { status: "completed", ...describe(outcome.result) };
    case "failed":
      return { status: "failed", code: outcome.error.code ?? null, message: outcome.error.message };
    default:
      return { status: outcome.status };
  }
}

/** Runs one case within `ms`; records its report or the exception. */
async function runCase(name, ms, body) {
  const signal = AbortSignal.timeout(ms);
  const from = asked.length;
  try {
    report.cases[name] = await body(signal);
  } catch (error) {
    report.cases[name] = { exception: `${error?.name}: ${error?.message}${error?.cause ? ` (cause: ${error.cause})` : ""}` };
  }
  const inputs = asked.slice(from);
  if (inputs.length > 0) report.cases[name].inputs = inputs;
}

/** callTool, then settle; reports kind + outcome. */
async function callAndSettle(tool, args, signal, preference) {
  const execution = await session.callTool(tool, args, {
    signal,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    task: { preference },
  });
  const { outcome } = await execution.settle({ signal });
  return { kind: execution.kind, ...describeOutcome(outcome) };
}

await runCase("greet", 10_000, (signal) => callAndSettle("greet", { name: "Ann" }, signal, "allow"));
await runCase("slow_compute", 10_000, (signal) =>
  callAndSettle("slow_compute", { seconds: 0.3, label: "quick" }, signal, "require"),
);
await runCase("confirm_delete", 10_000, (signal) =>
  callAndSettle("confirm_delete", { filename: "x.txt" }, signal, "require"),
);
await runCase("multi_input", 10_000, (signal) => callAndSettle("multi_input", {}, signal, "require"));
await runCase("failing_job", 10_000, (signal) => callAndSettle("failing_job", {}, signal, "require"));
await runCase("protocol_error_job", 10_000, (signal) => callAndSettle("protocol_error_job", {}, signal, "require"));
await runCase("cancel", 10_000, async (signal) => {
  const execution = await session.callTool("slow_compute", { seconds: 60, label: "long" }, {
    signal,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    task: { preference: "require" },
  });
  const before = execution.kind === "task" ? (await session.task(execution.handle.taskId).snapshot(signal)).status : null;
  await execution.cancel(signal);
  const { outcome } = await execution.settle({ signal });
  return { kind: execution.kind, statusBeforeCancel: before, ...describeOutcome(outcome) };
});

report.rawMethods = [...transport.methods].sort();
report.seconds = Number(((Date.now() - started) / 1000).toFixed(1));
await session.close();
await client.close();
clearTimeout(hardStop);
process.stdout.write(JSON.stringify(report) + "\n");
