//! `switchboard serve`: run one of our servers on stdio, or on Streamable HTTP with `--http`.

use std::{net::SocketAddr, process::ExitCode};

use switchboard_server::HttpConfig;

use crate::{
    cli::{DbArgs, ServerKind},
    run::Failure,
};

/// Where to serve.
#[derive(Debug)]
pub enum Listen {
    Stdio,
    Http {
        address: SocketAddr,
        extra_hosts: Vec<String>,
    },
}

pub async fn serve(kind: ServerKind, db: DbArgs, listen: Listen) -> Result<ExitCode, Failure> {
    // Servers that keep data, so their storage is closed cleanly after the last answer.
    let mut expenses = None;
    let mut bookmarks = None;
    let server = match kind {
        ServerKind::Echo => switchboard_echo::server(),
        ServerKind::Expenses => {
            let opened = crate::expenses::open(db.db.as_deref()).await?;
            expenses = Some(opened.clone());
            switchboard_expenses::server(opened)
        }
        ServerKind::Bookmarks => {
            let opened = crate::bookmarks::open(db.db.as_deref()).await?;
            bookmarks = Some(opened.clone());
            switchboard_bookmarks::server(opened)
        }
    };
    let served = match listen {
        Listen::Stdio => {
            tracing::debug!(server = server.name(), "serving on stdio");
            switchboard_server::serve_stdio(server)
                .await
                .map_err(|error| Failure::connection(format!("stdio failed: {error}")))
        }
        Listen::Http {
            address,
            extra_hosts,
        } => {
            let mut config = HttpConfig::default();
            config.allowed_hosts.extend(extra_hosts);
            tracing::info!(server = server.name(), %address, "serving Streamable HTTP at http://{address}/mcp");
            switchboard_server::serve_http(server, address, config)
                .await
                .map_err(|error| {
                    Failure::connection(format!("cannot serve HTTP on {address}: {error}"))
                })
        }
    };
    if let Some(expenses) = expenses {
        expenses.close().await;
    }
    if let Some(bookmarks) = bookmarks {
        bookmarks.close().await;
    }
    served?;
    Ok(ExitCode::SUCCESS)
}
