//! The servers under test, how each is started, and why one may be missing.
//!
//! Every peer serves the echo workload; ours and the Python SDK also serve the expenses
//! workload (`switchboard serve expenses` and `bench/peers/expenses_server.py`).

use std::{
    fmt,
    path::{Path, PathBuf},
};

/// The two transports every server is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Stdio,
    Http,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
        })
    }
}

/// One server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// `switchboard serve echo`.
    Ours,
    /// The same server from its own small binary, `switchboard-echo` (stdio only), to tell the
    /// kit's memory from the full CLI binary's.
    OursLean,
    /// rmcp as usually wired; over HTTP with axum's defaults (no `TCP_NODELAY`).
    Rmcp,
    /// The same rmcp server over HTTP with `TCP_NODELAY` on accepted connections.
    RmcpNodelay,
    /// The TypeScript SDK v1 (`@modelcontextprotocol/sdk`).
    TypeScript,
    /// The Python SDK (`mcp`).
    Python,
    /// No MCP: parse the message, write a fixed reply.
    Floor,
}

/// What a server serves.
#[derive(Debug, Clone, Copy)]
pub enum App<'a> {
    /// `echo(text)`.
    Echo,
    /// The expense tracker, on a SQLite file.
    Expenses { db: &'a Path },
}

/// The peers with an expense tracker, in the order of the table.
pub const EXPENSES_PEERS: [Peer; 2] = [Peer::Ours, Peer::Python];

/// The order of the table.
pub const ALL_PEERS: [Peer; 7] = [
    Peer::Ours,
    Peer::OursLean,
    Peer::Rmcp,
    Peer::RmcpNodelay,
    Peer::TypeScript,
    Peer::Python,
    Peer::Floor,
];

impl Peer {
    pub fn label(self) -> &'static str {
        match self {
            Peer::Ours => "ours",
            Peer::OursLean => "ours-lean",
            Peer::Rmcp => "rmcp",
            Peer::RmcpNodelay => "rmcp+nodelay",
            Peer::TypeScript => "ts",
            Peer::Python => "python",
            Peer::Floor => "floor",
        }
    }

    /// The name used in `--peers` (rmcp+nodelay is selected with rmcp, ours-lean with ours).
    pub fn selector(self) -> &'static str {
        match self {
            Peer::RmcpNodelay => "rmcp",
            Peer::OursLean => "ours",
            other => other.label(),
        }
    }

    pub fn runs_on(self, transport: Transport) -> bool {
        match self {
            Peer::RmcpNodelay => transport == Transport::Http,
            Peer::OursLean => transport == Transport::Stdio,
            _ => true,
        }
    }
}

/// Where the binaries and the installed peers are.
#[derive(Debug, Clone)]
pub struct Locations {
    /// The directory holding `switchboard`, `bench-rmcp-echo` and `bench-floor`.
    pub bin_dir: PathBuf,
    /// The workspace root (for `bench/peers/*`).
    pub repo_root: PathBuf,
    /// `$SWITCHBOARD_PEERS_DIR`, by default `<repo>/.peers`.
    pub peers_dir: PathBuf,
}

impl Locations {
    pub fn switchboard(&self) -> PathBuf {
        self.bin_dir.join("switchboard")
    }
    pub fn switchboard_echo(&self) -> PathBuf {
        self.bin_dir.join("switchboard-echo")
    }
    pub fn rmcp_echo(&self) -> PathBuf {
        self.bin_dir.join("bench-rmcp-echo")
    }
    pub fn floor(&self) -> PathBuf {
        self.bin_dir.join("bench-floor")
    }
    pub fn node(&self) -> PathBuf {
        self.peers_dir.join("node/node_modules/node/bin/node")
    }
    pub fn ts_sdk_package(&self) -> PathBuf {
        self.peers_dir
            .join("node/node_modules/@modelcontextprotocol/sdk/package.json")
    }
    pub fn python(&self) -> PathBuf {
        self.peers_dir.join("venv/bin/python")
    }
    pub fn ts_echo_script(&self) -> PathBuf {
        self.repo_root.join("bench/peers/ts_echo.mjs")
    }
    pub fn py_echo_script(&self) -> PathBuf {
        self.repo_root.join("bench/peers/py_echo.py")
    }
    pub fn py_expenses_script(&self) -> PathBuf {
        self.repo_root.join("bench/peers/expenses_server.py")
    }
}

/// How to start one server on one transport.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub envs: Vec<(String, String)>,
}

/// Why a server cannot run here.
#[derive(Debug, Clone)]
pub struct Unavailable(pub String);

fn require(path: &Path, what: &str) -> Result<(), Unavailable> {
    if path.is_file() {
        Ok(())
    } else {
        Err(Unavailable(format!(
            "{what} not found at {}",
            path.display()
        )))
    }
}

/// Whether `switchboard serve` has `--http` (it is being added; until then ours has no HTTP row).
pub async fn ours_has_http(switchboard: &Path) -> bool {
    crate::environment::command_stdout(switchboard, &["serve", "--help"])
        .await
        .is_some_and(|help| {
            help.lines()
                .any(|line| line.trim_start().starts_with("--http"))
        })
}

/// The command for `peer` serving `app` on `transport`, or why it cannot run. `port` is used
/// by HTTP.
pub fn launch(
    peer: Peer,
    app: App<'_>,
    transport: Transport,
    places: &Locations,
    ours_http: bool,
    port: u16,
) -> Result<Launch, Unavailable> {
    let http_addr = format!("127.0.0.1:{port}");
    if let App::Expenses { db } = app {
        return launch_expenses(peer, db, transport, places, ours_http, &http_addr, port);
    }
    let native = |program: PathBuf, what: &str, stdio: Vec<&str>, http: Vec<&str>| {
        require(&program, what)?;
        let args = match transport {
            Transport::Stdio => stdio.into_iter().map(str::to_owned).collect(),
            Transport::Http => http.into_iter().map(str::to_owned).collect(),
        };
        Ok(Launch {
            program,
            args,
            envs: Vec::new(),
        })
    };
    match peer {
        Peer::Ours => {
            if transport == Transport::Http && !ours_http {
                return Err(Unavailable(
                    "not available (`switchboard serve` has no --http yet)".into(),
                ));
            }
            native(
                places.switchboard(),
                "the switchboard binary",
                vec!["serve", "echo"],
                vec!["serve", "echo", "--http", &http_addr],
            )
        }
        Peer::OursLean => native(
            places.switchboard_echo(),
            "the switchboard-echo binary",
            Vec::new(),
            Vec::new(),
        ),
        Peer::Rmcp => native(
            places.rmcp_echo(),
            "bench-rmcp-echo",
            vec!["--stdio"],
            vec!["--http", &http_addr],
        ),
        Peer::RmcpNodelay => native(
            places.rmcp_echo(),
            "bench-rmcp-echo",
            vec!["--stdio"],
            vec!["--http", &http_addr, "--nodelay"],
        ),
        Peer::Floor => native(
            places.floor(),
            "bench-floor",
            vec!["--stdio"],
            vec!["--http", &http_addr],
        ),
        Peer::TypeScript => {
            require(&places.node(), "Node 22 (run scripts/install-peers.sh)")?;
            require(
                &places.ts_sdk_package(),
                "@modelcontextprotocol/sdk (run scripts/install-peers.sh)",
            )?;
            require(&places.ts_echo_script(), "bench/peers/ts_echo.mjs")?;
            script(
                places.node(),
                places.ts_echo_script(),
                Vec::new(),
                transport,
                port,
                places,
            )
        }
        Peer::Python => {
            require_python_sdk(places)?;
            require(&places.py_echo_script(), "bench/peers/py_echo.py")?;
            script(
                places.python(),
                places.py_echo_script(),
                Vec::new(),
                transport,
                port,
                places,
            )
        }
    }
}

/// The expense tracker of `peer` on the SQLite file `db`.
fn launch_expenses(
    peer: Peer,
    db: &Path,
    transport: Transport,
    places: &Locations,
    ours_http: bool,
    http_addr: &str,
    port: u16,
) -> Result<Launch, Unavailable> {
    let db = db.display().to_string();
    match peer {
        Peer::Ours => {
            if transport == Transport::Http && !ours_http {
                return Err(Unavailable(
                    "not available (`switchboard serve` has no --http yet)".into(),
                ));
            }
            require(&places.switchboard(), "the switchboard binary")?;
            let mut args: Vec<String> = ["serve", "expenses", "--db", &db]
                .into_iter()
                .map(str::to_owned)
                .collect();
            if transport == Transport::Http {
                args.extend(["--http".to_owned(), http_addr.to_owned()]);
            }
            Ok(Launch {
                program: places.switchboard(),
                args,
                envs: Vec::new(),
            })
        }
        Peer::Python => {
            require_python_sdk(places)?;
            require(
                &places.py_expenses_script(),
                "bench/peers/expenses_server.py",
            )?;
            script(
                places.python(),
                places.py_expenses_script(),
                vec!["--db".into(), db],
                transport,
                port,
                places,
            )
        }
        other => Err(Unavailable(format!(
            "{} has no expense tracker",
            other.label()
        ))),
    }
}

/// The peers venv with the `mcp` package in it.
fn require_python_sdk(places: &Locations) -> Result<(), Unavailable> {
    require(
        &places.python(),
        "the peers venv (run scripts/install-peers.sh)",
    )?;
    if python_sdk_installed(&places.peers_dir) {
        Ok(())
    } else {
        Err(Unavailable(
            "the `mcp` package is not in the peers venv (run scripts/install-peers.sh)".into(),
        ))
    }
}

/// Whether `venv/lib/python*/site-packages/mcp` exists.
fn python_sdk_installed(peers_dir: &Path) -> bool {
    let Ok(versions) = std::fs::read_dir(peers_dir.join("venv/lib")) else {
        return false;
    };
    versions.flatten().any(|version| {
        version
            .path()
            .join("site-packages/mcp/__init__.py")
            .is_file()
    })
}

/// `program script [extra...] --stdio|--http PORT`.
fn script(
    program: PathBuf,
    script: PathBuf,
    extra: Vec<String>,
    transport: Transport,
    port: u16,
    places: &Locations,
) -> Result<Launch, Unavailable> {
    let mut args = vec![script.display().to_string()];
    args.extend(extra);
    match transport {
        Transport::Stdio => args.push("--stdio".into()),
        Transport::Http => args.extend(["--http".into(), port.to_string()]),
    }
    Ok(Launch {
        program,
        args,
        envs: vec![(
            crate::settings::PEERS_DIR_VAR.into(),
            places.peers_dir.display().to_string(),
        )],
    })
}
