//! `switchboard serve`: run one of our servers on stdio.

use std::process::ExitCode;

use crate::{cli::ServerKind, run::Failure};

pub async fn serve(kind: ServerKind) -> Result<ExitCode, Failure> {
    let server = match kind {
        ServerKind::Echo => switchboard_echo::server(),
    };
    tracing::debug!(server = server.name(), "serving on stdio");
    switchboard_server::serve_stdio(server)
        .await
        .map_err(|error| Failure::connection(format!("stdio failed: {error}")))?;
    Ok(ExitCode::SUCCESS)
}
