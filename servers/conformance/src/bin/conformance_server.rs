//! `conformance-server`: the fixture server on Streamable HTTP at
//! `http://127.0.0.1:$PORT/mcp` (PORT defaults to 3000), as the conformance suite expects.

use std::{net::SocketAddr, process::ExitCode};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SWITCHBOARD_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .try_init();
    let port: u16 = match std::env::var("PORT").ok().map(|p| p.parse()) {
        None => 3000,
        Some(Ok(port)) => port,
        Some(Err(error)) => {
            tracing::error!(%error, "PORT must be a port number");
            return ExitCode::from(2);
        }
    };
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let server = switchboard_conformance::server();
    tokio::select! {
        served = switchboard_server::serve_http(server, address, switchboard_server::HttpConfig::default()) => match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(%error, %address, "cannot serve");
                ExitCode::FAILURE
            }
        },
        _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
    }
}
