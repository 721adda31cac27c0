//! `conformance-client <server-url>`: the client fixture the MCP conformance suite runs once per
//! client scenario. The scenario, the protocol revision and the scenario's data come from
//! `MCP_CONFORMANCE_SCENARIO`, `MCP_CONFORMANCE_PROTOCOL_VERSION` and `MCP_CONFORMANCE_CONTEXT`.
//! It exits 0 when the scenario's job is done; otherwise it prints why on stderr and exits 1
//! (2 for a wrong invocation).

use std::process::ExitCode;

use switchboard_conformance::client::{Invocation, run};

const USAGE: &str = "usage: MCP_CONFORMANCE_SCENARIO=<name> conformance-client <server-url>";

fn invocation() -> Result<Invocation, String> {
    let url = std::env::args()
        .skip(1)
        .last()
        .ok_or_else(|| USAGE.to_owned())?;
    let url = url::Url::parse(&url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").map_err(|_| USAGE.to_owned())?;
    let context = match std::env::var("MCP_CONFORMANCE_CONTEXT") {
        Ok(text) if !text.trim().is_empty() => serde_json::from_str(&text)
            .map_err(|e| format!("MCP_CONFORMANCE_CONTEXT is not JSON: {e}"))?,
        _ => serde_json::Value::Null,
    };
    Ok(Invocation {
        scenario,
        url,
        protocol_version: std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION").ok(),
        context,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SWITCHBOARD_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .try_init();
    let invocation = match invocation() {
        Ok(invocation) => invocation,
        Err(message) => {
            tracing::error!("{message}");
            return ExitCode::from(2);
        }
    };
    match Box::pin(run(&invocation)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(scenario = %invocation.scenario, "{error}");
            ExitCode::FAILURE
        }
    }
}
