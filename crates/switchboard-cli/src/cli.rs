//! The command line, as clap types. Nothing here does work: `main` resolves these into
//! settings once, then runs the command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::env;
pub use switchboard_cli::serve::{DbArgs, ServeArgs};

const AFTER_HELP: &str = "\
Servers come from an mcpServers config (the file Claude Desktop, Cursor or VS Code use) and from
--stdio/--url flags. The config is, in order: --config PATH, $SWITCHBOARD_CONFIG, or
~/.config/switchboard/mcp.json (on macOS ~/Library/Application Support/dev.switchboard.switchboard/mcp.json).

Examples:
  switchboard --config ~/.config/Claude/claude_desktop_config.json servers
  switchboard tools
  switchboard call time/get_current_time --arg timezone=Europe/Paris
  switchboard --stdio 'npx -y @modelcontextprotocol/server-everything' tools
  switchboard --url http://127.0.0.1:3000/mcp --header 'Authorization: Bearer $TOKEN' tools
  switchboard -v call everything/echo --arg message=hi     # show the JSON-RPC traffic

Exit codes:
  0  success
  1  the tool ran and reported an error (isError)
  2  usage or configuration error: bad flags, bad config, unknown server/tool, invalid arguments
  3  connection or protocol error: a server failed to start, crashed, timed out or broke the protocol
  4  ask: the model could not be used, or the agent stopped on a budget before answering
  130 interrupted (Ctrl-C)";

const AGENT_HELP: &str = "\
Models (--model provider/name, or $SWITCHBOARD_MODEL, or \"agent\": {\"model\": ...} in the config):
  anthropic/claude-sonnet-4-5          needs ANTHROPIC_API_KEY (ANTHROPIC_BASE_URL optional)
  openai/gpt-4.1-mini                  needs OPENAI_API_KEY (OPENAI_BASE_URL optional)
  ollama/qwen2.5:7b                    a local Ollama at $OLLAMA_HOST (default http://127.0.0.1:11434)
  openai-compatible/NAME --base-url URL   vLLM, llama.cpp server, LM Studio, ...

The model sees every connected server's tools as SERVER__TOOL. Before a tool that is not
read-only runs, you are asked (--approve writes, the default); --approve always asks before every
call, --approve never and --yes ask nothing. Ctrl-C stops the current answer and cancels the tool
calls still running; in chat it does not end the program (Ctrl-D or /exit does).";

/// An MCP host and inspector: list and call the tools, resources and prompts of every
/// MCP server in your config.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The mcpServers config file (Claude Desktop, Cursor, Windsurf, VS Code shapes).
    #[arg(long, global = true, env = env::CONFIG, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Add a stdio server from a command line, e.g. --stdio "uvx mcp-server-time". Repeatable.
    #[arg(long = "stdio", global = true, value_name = "COMMAND")]
    pub stdio: Vec<String>,

    /// Add a Streamable HTTP (or ws://) server by URL. Repeatable.
    #[arg(long = "url", global = true, value_name = "URL")]
    pub url: Vec<String>,

    /// An HTTP header for every --url server, as "Name: value". Repeatable.
    #[arg(long = "header", global = true, value_name = "NAME: VALUE")]
    pub header: Vec<String>,

    /// Print the exact MCP results as JSON instead of human-friendly text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Show every JSON-RPC message (with server, direction and time) and server stderr on stderr.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Seconds allowed for a server to start and finish the handshake.
    #[arg(long, global = true, env = env::CONNECT_TIMEOUT, value_name = "SECS", default_value_t = 30.0)]
    pub connect_timeout: f64,

    /// Seconds allowed for one request; progress notifications restart the clock of a tool call.
    #[arg(long, global = true, env = env::TIMEOUT, value_name = "SECS", default_value_t = 60.0)]
    pub timeout: f64,

    /// Protocol era: try the 2026-07-28 revision and fall back to legacy (auto), or force one.
    #[arg(long, global = true, value_enum, default_value_t = EraArg::Auto)]
    pub era: EraArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EraArg {
    Auto,
    Modern,
    Legacy,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to every server and show its status, era, protocol version and capabilities.
    #[command(after_help = "Example:\n  switchboard servers\n  switchboard servers --json")]
    Servers,

    /// List tools, of all servers or of one.
    #[command(
        after_help = "Examples:\n  switchboard tools\n  switchboard tools time\n  switchboard tools --json"
    )]
    Tools {
        /// Only this server.
        server: Option<String>,
    },

    /// Call a tool: SERVER/TOOL, a qualified name (server__tool), or a tool name only one server has.
    #[command(after_help = "\
Arguments are checked against the tool's inputSchema before they are sent.
--arg values are typed by the schema: --arg count=3 sends the number 3 if the schema says
integer, the string \"3\" if it says string.

Examples:
  switchboard call time/get_current_time --arg timezone=Europe/Paris
  switchboard call everything/add --args '{\"a\": 1, \"b\": 2}'
  echo '{\"message\": \"hi\"}' | switchboard call everything/echo --args -
  switchboard call everything/annotatedMessage --save ./out     # write images/audio to ./out")]
    Call {
        /// The tool to call.
        tool: String,
        #[command(flatten)]
        arguments: ArgumentArgs,
        /// Write image and audio content to files in this directory.
        #[arg(long, value_name = "DIR")]
        save: Option<PathBuf>,
    },

    /// List resources and resource templates.
    #[command(after_help = "Example:\n  switchboard resources everything")]
    Resources {
        /// Only this server.
        server: Option<String>,
    },

    /// Read a resource by URI.
    #[command(
        after_help = "Examples:\n  switchboard read file:///tmp/notes.txt\n  switchboard read demo://resource/static/document/1 --server everything"
    )]
    Read {
        uri: String,
        /// The server to ask (needed when the URI is not in any server's list).
        #[arg(long)]
        server: Option<String>,
        /// Write binary contents to files in this directory.
        #[arg(long, value_name = "DIR")]
        save: Option<PathBuf>,
    },

    /// List prompts.
    Prompts {
        /// Only this server.
        server: Option<String>,
    },

    /// Run one of Switchboard's own MCP servers on stdio (for Claude Desktop, Cursor, or any host).
    #[command(after_help = "\
Stdout carries the protocol; logs go to stderr.

A Claude Desktop config entry:
  \"echo\": {\"command\": \"switchboard\", \"args\": [\"serve\", \"echo\"]}

Try it:
  switchboard --stdio 'switchboard serve echo' call echo --arg text=hello
  switchboard --stdio 'switchboard serve expenses --db ./expenses.sqlite3' \\
      call expenses/add_expense --arg amount=12.50 --arg category=food --arg description=lunch")]
    Serve(ServeArgs),

    /// Serve every server of a gateway.toml as one MCP endpoint (both eras), or write an example.
    #[command(after_help = "\
Examples:
  switchboard gateway init                         # writes a commented gateway.toml
  switchboard gateway --config gateway.toml        # http://127.0.0.1:8787/mcp, /healthz, /readyz, /metrics
  switchboard gateway --config gateway.toml --front stdio   # as one stdio server (Claude Desktop)

Upstream tools and prompts appear as UPSTREAM__NAME, resources as gateway://UPSTREAM/URI.
--stdio COMMAND and --url URL add upstreams; logs are JSON lines on stderr.")]
    Gateway(crate::gateway::GatewayArgs),

    /// Import or export the expense tracker's expenses (the data of `serve expenses`).
    #[command(after_help = "\
Examples:
  switchboard expenses import expenses.json          # the tutorial server's file
  switchboard expenses export --format csv --output expenses.csv
  switchboard expenses export --db postgres://me@db.example/money")]
    Expenses {
        #[command(subcommand)]
        command: ExpensesCommand,
    },

    /// List the servers of an MCP Registry and add them to your config.
    #[command(after_help = "\
Entries become mcpServers entries: remote URLs as they are, npm packages via npx, PyPI packages
via uvx, OCI images via docker run. Values the registry says you must supply (API keys, tokens)
are written as ${NAME} references, never as values. Comments in the config file are kept.

Examples:
  switchboard discover https://registry.modelcontextprotocol.io --search weather
  switchboard discover http://127.0.0.1:8787 --all          # a Switchboard gateway's upstreams
  switchboard discover https://registry.example.com --add io.github.me/weather --dry-run")]
    Discover(crate::discover::DiscoverArgs),

    /// Read the gateway's audit log: the newest records, or those matching a query.
    #[command(after_help = "\
Examples:
  switchboard audit tail -n 50                              # ./audit.jsonl (and its rotated files)
  switchboard audit tail --file /var/log/switchboard/audit.jsonl
  switchboard audit query --client ci-bot --tool add_expense --since 1h
  switchboard audit query --outcome refused --since 7d --db postgres://me@db.example/audit --json")]
    Audit {
        #[command(subcommand)]
        command: crate::audit::AuditCommand,
    },

    /// Get a prompt: SERVER/PROMPT or a prompt name only one server has.
    #[command(
        after_help = "Example:\n  switchboard prompt everything/simple_prompt\n  switchboard prompt everything/args_prompt --arg city=Paris"
    )]
    Prompt {
        name: String,
        #[command(flatten)]
        arguments: ArgumentArgs,
    },

    /// Ask a model one question; it answers by calling the tools of your servers.
    #[command(after_help = format!("{AGENT_HELP}\n\nExamples:
  switchboard ask \"add a 12.50 lunch expense in food\" --model anthropic/claude-sonnet-4-5
  switchboard ask \"what did I spend on food this month?\" --json | jq .answer
  echo \"summarise my bookmarks tagged rust\" | switchboard ask - --model ollama/qwen2.5:7b"))]
    Ask {
        /// The question, or - to read it from stdin.
        question: String,
        #[command(flatten)]
        agent: AgentArgs,
    },

    /// Chat with a model that uses the tools of your servers.
    #[command(after_help = format!("{AGENT_HELP}\n\nIn chat: /tools, /servers, /model, /history, /clear, /help, /exit.

Examples:
  switchboard chat --model anthropic/claude-sonnet-4-5
  switchboard chat --session budget      # continue the saved conversation \"budget\""))]
    Chat {
        #[command(flatten)]
        agent: AgentArgs,
    },
}

/// Choices of `ask` and `chat`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The model, as provider/name (see below).
    #[arg(long, env = env::MODEL, value_name = "PROVIDER/NAME")]
    pub model: Option<String>,

    /// The provider's API endpoint, e.g. http://127.0.0.1:8000/v1 for vLLM.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// The name of the environment variable that holds the API key (default: the provider's
    /// usual one). Keys are never taken on the command line, where other users could see them.
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,

    /// Most model turns for one question.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_steps: u32,

    /// Most tokens (input and output, as the provider counts them) for one question.
    #[arg(long, value_name = "N", default_value_t = 400_000)]
    pub max_tokens: u64,

    /// Most output tokens of one model turn.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_output_tokens: u32,

    /// Roughly how many tokens of conversation to send; older exchanges are left out to fit.
    /// Lower it for models with small context windows.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub context_tokens: usize,

    /// Most seconds for one question, tool calls included.
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    pub time_limit: f64,

    /// When to ask before a tool runs: before tools that are not read-only (writes), before
    /// every call (always), or never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ApproveArg::Writes)]
    pub approve: ApproveArg,

    /// Approve every tool call and sampling request without asking (same as --approve never).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Keep the conversation under this name, and continue it next time.
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,

    /// Where saved sessions are kept: a SQLite path or a postgres:// URL (default: agent.sqlite3
    /// in the user's data directory).
    #[arg(long, value_name = "URL|PATH")]
    pub history_db: Option<String>,

    /// A directory the servers may work in, offered as a root. Repeatable.
    #[arg(long = "root", value_name = "DIR")]
    pub roots: Vec<PathBuf>,

    /// Replace the default system prompt.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApproveArg {
    Never,
    Writes,
    Always,
}

#[derive(Debug, Subcommand)]
pub enum ExpensesCommand {
    /// Import expenses from a JSON or CSV file, all or nothing; ids in the file are kept.
    Import {
        /// A JSON array of {"id", "amount", "category", "description", "date"[, "currency"]}
        /// objects, or CSV with the header id,date,amount,currency,category,description.
        file: PathBuf,
        /// The file's format (default: from its extension).
        #[arg(long, value_enum)]
        format: Option<TransferFormat>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Export every expense as JSON or CSV.
    Export {
        #[arg(long, value_enum, default_value_t = TransferFormat::Json)]
        format: TransferFormat,
        /// Write to this file instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TransferFormat {
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct ArgumentArgs {
    /// An argument as key=value, typed by the schema. Repeatable.
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    pub arg: Vec<String>,

    /// All arguments as one JSON object, or - to read it from stdin.
    #[arg(long = "args", value_name = "JSON", conflicts_with = "arg")]
    pub args: Option<String>,
}
