//! The wire tap: an observer that sees every JSON-RPC message in both directions.
//!
//! `--verbose` installs one that prints to stderr. The tap receives the message as JSON text: on
//! stdio it is the exact line read or written, on HTTP it is the message as rmcp serialised it.

use std::sync::Arc;

use rmcp::{
    service::{RoleClient, RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};

use crate::model::Direction;

/// Observer of raw protocol traffic. Implementations must be cheap and must not block.
pub trait WireTap: Send + Sync + std::fmt::Debug {
    /// A well-formed JSON-RPC message.
    fn message(&self, server: &str, direction: Direction, json: &str);
    /// A line from a stdio server that is not a JSON-RPC message and was skipped.
    fn garbage(&self, server: &str, line: &str);
    /// A line the server wrote to stderr.
    fn stderr(&self, server: &str, line: &str);
}

/// A transport wrapper that shows every message to a [`WireTap`].
pub(crate) struct TappedTransport<T> {
    pub(crate) inner: T,
    pub(crate) server: Arc<str>,
    pub(crate) tap: Arc<dyn WireTap>,
}

fn to_json<M: serde::Serialize>(message: &M) -> String {
    serde_json::to_string(message).unwrap_or_else(|e| format!("<unserialisable message: {e}>"))
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for TappedTransport<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.tap
            .message(&self.server, Direction::Outgoing, &to_json(&item));
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let message = self.inner.receive().await?;
        self.tap
            .message(&self.server, Direction::Incoming, &to_json(&message));
        Some(message)
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
