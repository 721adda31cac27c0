//! `switchboard gateway`: serve every upstream of a `gateway.toml` as one MCP server, on
//! Streamable HTTP (`/mcp`, both eras, with `/healthz`, `/readyz` and `/metrics`) or on stdio;
//! and `switchboard gateway init`, which writes a commented example config.
//!
//! The gateway config comes from the global `--config PATH`. The global `--stdio COMMAND` and
//! `--url URL` add upstreams, as for every other command, which is why the stdio front is
//! chosen with `--front stdio` rather than a `--stdio` switch.

use std::{
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Args, Subcommand, ValueEnum};
use switchboard_client::{ConnectOptions, EraPreference};
use switchboard_gateway::{EXAMPLE_CONFIG, Gateway, GatewayConfig};

use crate::{
    cli::{EraArg, GlobalArgs},
    env,
    run::Failure,
};

/// `switchboard gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    #[command(subcommand)]
    pub command: Option<GatewayCommand>,

    /// Which front to serve: Streamable HTTP at http://ADDR/mcp, or this process's stdin and
    /// stdout (for a host such as Claude Desktop that starts the gateway as a stdio server).
    #[arg(long, value_enum, default_value_t = Front::Http)]
    pub front: Front,

    /// Listen on this address instead of the config's [listen] address.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Front {
    Http,
    Stdio,
}

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Write a commented example gateway.toml that fronts `switchboard serve expenses` and
    /// `switchboard serve bookmarks`.
    Init {
        /// Where to write it.
        #[arg(default_value = "gateway.toml")]
        path: PathBuf,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Print the SHA-256 of an API key read from stdin, for `[[security.api_keys]]` (the key
    /// itself is never stored, and never taken from the command line).
    #[command(after_help = "Example:\n  printf %s \"$KEY\" | switchboard gateway hash-key")]
    HashKey,
    /// Revoke a JWT by its id (`jti`) on every replica, through the Redis the gateway config
    /// names (security.rate_limits.redis_url or $REDIS_URL). Without Redis, list the id in
    /// security.jwt.revoked and restart.
    #[command(
        after_help = "Example:\n  switchboard --config gateway.toml gateway revoke 3f2a9c --for 24h"
    )]
    Revoke {
        /// The token's `jti`.
        jti: String,
        /// How long to keep refusing it: until the token would expire anyway (e.g. 1h, 7d).
        #[arg(long = "for", value_name = "DURATION", default_value = "24h")]
        duration: String,
    },
}

/// JSON log lines on stderr for the gateway (stdout belongs to the stdio front). Returns
/// whether the logs were set up here, so `main` sets up its own otherwise.
pub fn init_logs(command: &crate::cli::Command, verbose: bool) -> bool {
    let crate::cli::Command::Gateway(args) = command else {
        return false;
    };
    if args.command.is_some() {
        return false;
    }
    use tracing_subscriber::EnvFilter;
    let default = if verbose {
        "debug,rmcp=info"
    } else {
        "info,rmcp=warn"
    };
    let filter = EnvFilter::try_from_env(env::LOG).unwrap_or_else(|_| EnvFilter::new(default));
    // tracing-subscriber's JSON shape with the request's span (method, path, request id) on
    // every line, written by a leaner formatter: there is a line per forwarded call.
    tracing_subscriber::fmt()
        .fmt_fields(crate::json_logs::JsonSpanFields)
        .event_format(crate::json_logs::JsonLines)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
        .is_ok()
}

pub async fn run(global: GlobalArgs, args: GatewayArgs) -> Result<ExitCode, Failure> {
    match args.command {
        Some(GatewayCommand::Init { path, force }) => return init(&path, force),
        Some(GatewayCommand::HashKey) => return crate::audit::hash_key_command(),
        Some(GatewayCommand::Revoke { jti, duration }) => {
            return revoke(&global, &jti, &duration).await;
        }
        None => {}
    }
    let config = load(&global)?;
    let connect = ConnectOptions {
        connect_timeout: config.limits.connect_timeout(),
        era: match global.era {
            EraArg::Auto => EraPreference::Auto,
            EraArg::Modern => EraPreference::Modern,
            EraArg::Legacy => EraPreference::Legacy,
        },
        log_dir: std::env::var_os(env::LOG_DIR).map(PathBuf::from),
        client_name: switchboard_gateway::GATEWAY_NAME.to_owned(),
        ..ConnectOptions::default()
    };
    let address = args.listen.unwrap_or(config.listen.address);
    if matches!(args.front, Front::Http) {
        // Before any upstream starts: a public address needs [security] or an explicit opt-out.
        config
            .check_exposure(address)
            .map_err(|e| Failure::usage(e.to_string()))?;
    }
    let gateway = Gateway::connect_with(config, connect)
        .await
        .map_err(|e| Failure::usage(e.to_string()))?;
    let outcome = match args.front {
        Front::Stdio => gateway.serve_stdio().await,
        Front::Http => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|e| Failure::usage(format!("could not listen on {address}: {e}")))?;
            tracing::info!(%address, "gateway listening on http://{address}/mcp");
            gateway.serve(listener, shutdown_signal()).await
        }
    };
    gateway.shutdown().await;
    outcome
        .map(|()| ExitCode::SUCCESS)
        .map_err(|e| Failure::connection(e.to_string()))
}

/// Read and check the config named by `--config`, with `--stdio`/`--url` upstreams added.
/// `gateway revoke`: put a token id on the list every replica reads.
async fn revoke(global: &GlobalArgs, jti: &str, duration: &str) -> Result<ExitCode, Failure> {
    use switchboard_policy::revocation::{RedisRevocations, Revocations};
    let lasting = switchboard_policy::audit::parse_since(duration).map_err(|e| {
        Failure::usage(format!(
            "--for {duration:?}: {e} (write it like 30m, 24h or 7d)"
        ))
    })?;
    let config = load(global)?;
    let Some(url) = &config.redis_url else {
        return Err(Failure::usage(
            "the gateway config names no Redis (security.rate_limits.redis_url or $REDIS_URL), so there is no shared list to revoke in; add the id to security.jwt.revoked and restart the gateway".to_owned(),
        ));
    };
    let list = RedisRevocations::connect(
        url.expose(),
        switchboard_gateway::security::REDIS_REVOCATION_PREFIX,
    )
    .await
    .map_err(|e| Failure::connection(e.to_string()))?;
    list.revoke(jti, std::time::SystemTime::now() + lasting)
        .await
        .map_err(|e| match e {
            switchboard_policy::revocation::RevocationError::BadId => Failure::usage(e.to_string()),
            other => Failure::connection(other.to_string()),
        })?;
    crate::output::notice(&format!(
        "revoked {jti} for {duration}: every gateway replica on this Redis refuses it now"
    ));
    Ok(ExitCode::SUCCESS)
}

fn load(global: &GlobalArgs) -> Result<GatewayConfig, Failure> {
    let Some(path) = &global.config else {
        return Err(Failure::usage(
            "switchboard gateway needs --config gateway.toml (switchboard gateway init writes an example)"
                .to_owned(),
        ));
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    let lookup = |name: &str| std::env::var(name).ok();
    let mut config = GatewayConfig::parse(&text, Some(path), &lookup)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let mut adhoc = crate::settings::adhoc_servers(global)?;
    let taken: Vec<_> = config.upstreams.servers.keys().cloned().collect();
    switchboard_config::dedupe_names(&mut adhoc, &taken);
    config
        .upstreams
        .merge_adhoc(adhoc)
        .map_err(|e| Failure::usage(e.to_string()))?;
    Ok(config)
}

fn init(path: &Path, force: bool) -> Result<ExitCode, Failure> {
    if path.exists() && !force {
        return Err(Failure::usage(format!(
            "{} exists; pass --force to replace it",
            path.display()
        )));
    }
    std::fs::write(path, EXAMPLE_CONFIG)
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "wrote {}; run: switchboard gateway --config {}",
        path.display(),
        path.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C, or SIGTERM (what service managers send): stop accepting and drain.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot watch SIGTERM; only Ctrl-C stops the gateway");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down: draining in-flight requests");
}
