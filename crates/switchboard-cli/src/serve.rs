//! `switchboard serve`: run one of our servers on stdio, or on Streamable HTTP with `--http`.
//!
//! The `switchboard` binary hands the command over to `switchboard-serve` when that is
//! installed beside it ([`hand_over`], before anything is parsed), so a server does not carry
//! the pages of the whole host side. `switchboard-serve` parses only what `serve` takes; any
//! other command line (a global flag, `--help`, a mistake) goes back to `switchboard`, which
//! handles it in-process ([`back_to_cli`]), so every answer and error is the CLI's own. Setting
//! `SWITCHBOARD_SERVE_IN_PROCESS` keeps `serve` in the `switchboard` process.

use std::{
    ffi::{OsStr, OsString},
    net::SocketAddr,
    path::PathBuf,
};

use clap::{Args, Parser, ValueEnum};
use switchboard_bookmarks::{Bookmarks, BookmarksError};
use switchboard_expenses::{Expenses, ExpensesError};
use switchboard_server::HttpConfig;
use switchboard_store::StoreError;

use crate::exit;

/// Default for --db: the database of servers that keep data (a postgres:// URL or a SQLite
/// path).
pub const DATABASE_URL: &str = "DATABASE_URL";

/// Filter for Switchboard's own diagnostics on stderr, in `tracing` syntax (e.g. `debug`).
pub const LOG: &str = "SWITCHBOARD_LOG";

/// Set (to anything) to serve in the `switchboard` process instead of `switchboard-serve`.
pub const IN_PROCESS: &str = "SWITCHBOARD_SERVE_IN_PROCESS";

/// The serve-only binary, installed beside `switchboard`.
pub const SERVE_BINARY: &str = "switchboard-serve";

/// The full CLI.
pub const CLI_BINARY: &str = "switchboard";

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ServerKind {
    /// One tool, echo(text): the benchmark workload.
    Echo,
    /// The expense tracker: add, list, summarise, update and delete expenses (uses --db).
    Expenses,
    /// The bookmark manager: add, search, tag, update and delete bookmarks (uses --db).
    Bookmarks,
}

/// Where a server that keeps data stores it.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// The database: a postgres:// URL, or a SQLite file path (created if missing). Default:
    /// expenses.sqlite3 (or bookmarks.sqlite3 for `serve bookmarks`) in the user's data
    /// directory.
    #[arg(long, env = DATABASE_URL, value_name = "URL|PATH")]
    pub db: Option<String>,
}

/// What `switchboard serve` takes.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Which server.
    #[arg(value_enum)]
    pub server: ServerKind,
    #[command(flatten)]
    pub db: DbArgs,
    /// Serve Streamable HTTP at http://ADDR/mcp instead of stdio, for both protocol eras.
    /// Bind to loopback unless the server must be reached from elsewhere.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// A host name the HTTP server answers to besides localhost, 127.0.0.1 and [::1]
    /// (the Host and Origin headers are checked against this list). Repeatable.
    #[arg(long = "allow-host", value_name = "NAME", requires = "http")]
    pub allow_host: Vec<String>,
}

/// The command line `switchboard-serve` takes: `switchboard serve`'s, and `--verbose`.
#[derive(Debug, Parser)]
#[command(name = "switchboard serve", disable_version_flag = true)]
pub struct ServeCommand {
    #[command(flatten)]
    pub args: ServeArgs,
    /// Debug logs on stderr.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Why a server could not run, with the exit code it maps to.
#[derive(Debug)]
pub enum ServeError {
    /// A wrong --db (exit 2).
    Usage(String),
    /// A database or address that cannot be used, or a broken stdio (exit 3).
    Connection(String),
    /// Anything else (exit 1).
    Internal(String),
}

impl ServeError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ServeError::Usage(_) => exit::USAGE,
            ServeError::Connection(_) => exit::CONNECTION,
            ServeError::Internal(_) => 1,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ServeError::Usage(message)
            | ServeError::Connection(message)
            | ServeError::Internal(message) => message,
        }
    }

    /// A store failure: a wrong location or an incompatible database is the user's to fix; a
    /// database that cannot be reached is a connection problem.
    fn store(error: &StoreError, message: String) -> Self {
        match error {
            StoreError::InvalidLocation { .. }
            | StoreError::NewerDatabase { .. }
            | StoreError::ChangedMigration { .. } => ServeError::Usage(message),
            _ => ServeError::Connection(message),
        }
    }
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ServeError {}

/// The file a server keeps its data in when neither --db nor $DATABASE_URL says: `name` in the
/// user's data directory.
pub fn default_db(name: &str) -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "switchboard", "switchboard")
        .map(|dirs| dirs.data_local_dir().join(name))
}

/// `db`, else the default file `name` (for the error: what lives there).
fn location(db: Option<&str>, name: &str, what: &str) -> Result<String, ServeError> {
    match db {
        Some(db) => Ok(db.to_owned()),
        None => default_db(name)
            .map(|path| path.display().to_string())
            .ok_or_else(|| {
                ServeError::Usage(format!(
                    "cannot find the user's data directory for the {what} database; give --db PATH or a postgres:// URL"
                ))
            }),
    }
}

/// Open (creating and migrating) the expense database: `db`, else the default file.
pub async fn open_expenses(db: Option<&str>) -> Result<Expenses, ServeError> {
    let db = location(db, "expenses.sqlite3", "expense")?;
    switchboard_expenses::open(&db)
        .await
        .map_err(|error| match &error {
            ExpensesError::Store(store) => ServeError::store(store, error.to_string()),
            _ => ServeError::Internal(error.to_string()),
        })
}

/// Open (creating and migrating) the bookmark database: `db`, else the default file.
pub async fn open_bookmarks(db: Option<&str>) -> Result<Bookmarks, ServeError> {
    let db = location(db, "bookmarks.sqlite3", "bookmark")?;
    switchboard_bookmarks::open(&db)
        .await
        .map_err(|error| match &error {
            BookmarksError::Store(store) => ServeError::store(store, error.to_string()),
            _ => ServeError::Internal(error.to_string()),
        })
}

/// Serve until the client leaves (stdio) or forever (HTTP); storage is closed cleanly after
/// the last answer.
pub async fn serve(args: ServeArgs) -> Result<(), ServeError> {
    let mut expenses = None;
    let mut bookmarks = None;
    let server = match args.server {
        ServerKind::Echo => switchboard_echo::server(),
        ServerKind::Expenses => {
            let opened = open_expenses(args.db.db.as_deref()).await?;
            expenses = Some(opened.clone());
            switchboard_expenses::server(opened)
        }
        ServerKind::Bookmarks => {
            let opened = open_bookmarks(args.db.db.as_deref()).await?;
            bookmarks = Some(opened.clone());
            switchboard_bookmarks::server(opened)
        }
    };
    let served = match args.http {
        None => {
            tracing::debug!(server = server.name(), "serving on stdio");
            switchboard_server::serve_stdio(server)
                .await
                .map_err(|error| ServeError::Connection(format!("stdio failed: {error}")))
        }
        Some(address) => {
            let mut config = HttpConfig::default();
            config.allowed_hosts.extend(args.allow_host);
            tracing::info!(server = server.name(), %address, "serving Streamable HTTP at http://{address}/mcp");
            switchboard_server::serve_http(server, address, config)
                .await
                .map_err(|error| {
                    ServeError::Connection(format!("cannot serve HTTP on {address}: {error}"))
                })
        }
    };
    if let Some(expenses) = expenses {
        expenses.close().await;
    }
    if let Some(bookmarks) = bookmarks {
        bookmarks.close().await;
    }
    served
}

/// Logs on stderr (stdout may belong to the protocol): warnings, or debug logs of our own
/// crates with `verbose`; `SWITCHBOARD_LOG` (a `tracing` filter) overrides both.
///
/// Without `verbose`, rmcp's transport worker is quiet: when a connection fails (a declined
/// sign-in, a server that went away) it logs the failure at error level as it ends, and the
/// command then reports the same failure in its own words, with the server's name.
pub fn init_logs(verbose: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if verbose {
        "warn,switchboard=debug"
    } else {
        "warn,rmcp::transport::worker=off"
    };
    let filter = EnvFilter::try_from_env(LOG).unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// `name` in the directory of the running program, if it is there.
fn beside_this_program(name: &str) -> Option<PathBuf> {
    let path = std::env::current_exe().ok()?.with_file_name(name);
    path.is_file().then_some(path)
}

/// In `switchboard`, first thing: when the command is `serve` and `switchboard-serve` is
/// installed beside this program, become it (`exec`: same process id, same stdin and stdout),
/// with the arguments after `serve`. Returns when it did not: another command,
/// `SWITCHBOARD_SERVE_IN_PROCESS` set, no `switchboard-serve`, not Unix, or an `exec` that
/// failed; `serve` then runs in this process.
pub fn hand_over() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(OsStr::new("serve")) || std::env::var_os(IN_PROCESS).is_some()
    {
        return;
    }
    if let Some(sibling) = beside_this_program(SERVE_BINARY) {
        let _ = exec(std::process::Command::new(sibling).args(args));
    }
}

/// In `switchboard-serve`: the command line was not one it takes (`args`, after the program
/// name). Become `switchboard serve ARGS` in-process, so the answer is exactly the CLI's. Returns
/// only when that failed (no `switchboard` beside this program, or not Unix).
pub fn back_to_cli(args: impl IntoIterator<Item = OsString>) {
    if let Some(cli) = beside_this_program(CLI_BINARY) {
        let _ = exec(
            std::process::Command::new(cli)
                .arg("serve")
                .args(args)
                .env(IN_PROCESS, "1"),
        );
    }
}

#[cfg(unix)]
fn exec(command: &mut std::process::Command) -> std::io::Error {
    use std::os::unix::process::CommandExt as _;
    command.exec()
}

#[cfg(not(unix))]
fn exec(_command: &mut std::process::Command) -> std::io::Error {
    std::io::Error::other("replacing the process needs Unix")
}
