//! What a server announces without being asked: list changes and resource updates, and the
//! resource subscriptions that decide who hears the updates.
//!
//! Both transports and `subscriptions/listen` read the same two broadcasts
//! ([`Server::list_changes`](crate::Server::list_changes) and
//! [`Server::resource_updates`](crate::Server::resource_updates)); a reader that falls behind is
//! told that everything it follows changed, rather than missing a change.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::{
    catalogue::{Catalogue, ListKind},
    context::RequestContext,
    error::HandlerError,
    server::Session,
    wire,
};

/// What [`next_update`] saw: one resource changed, this reader fell behind and missed some,
/// or the server's announcer is gone.
pub(crate) enum Update {
    One(Arc<str>),
    Missed,
    Closed,
}

/// The next resource update of a server that takes subscriptions. When the server's announcer
/// is gone, stop listening.
pub(crate) async fn next_update(updates: &mut Option<broadcast::Receiver<Arc<str>>>) -> Update {
    let Some(receiver) = updates else {
        return Update::Closed;
    };
    match receiver.recv().await {
        Ok(uri) => Update::One(uri),
        Err(RecvError::Lagged(_)) => Update::Missed,
        Err(RecvError::Closed) => {
            *updates = None;
            Update::Closed
        }
    }
}

/// The next list changes of a server with a catalogue; every list when this reader fell
/// behind. When the server's announcer is gone, stop listening.
pub(crate) async fn next_change(
    changes: &mut Option<broadcast::Receiver<ListKind>>,
) -> Vec<ListKind> {
    let Some(receiver) = changes else {
        return Vec::new();
    };
    match receiver.recv().await {
        Ok(kind) => vec![kind],
        Err(RecvError::Lagged(_)) => ListKind::ALL.to_vec(),
        Err(RecvError::Closed) => {
            *changes = None;
            Vec::new()
        }
    }
}

/// `notifications/resources/updated` for what `update` says changed, to a legacy session that
/// subscribed to it; after missed updates, for every resource it subscribed to.
pub(crate) fn write_updates(session: &Session, update: Update, out: &mut Vec<u8>) {
    if session.legacy_version().is_none() {
        return;
    }
    let mut write = |uri: &str| {
        wire::write_notification(
            out,
            "notifications/resources/updated",
            &serde_json::json!({ "uri": uri }),
        );
    };
    match update {
        Update::One(uri) if session.is_subscribed(&uri) => write(&uri),
        Update::Missed => session.subscriptions().iter().for_each(|uri| write(uri)),
        Update::One(_) | Update::Closed => {}
    }
}

/// A resource subscription that a [`Catalogue`] accepted, and that it hears about again when
/// the subscriber goes away without unsubscribing: when a legacy session ends, or a 2026-07-28
/// `subscriptions/listen` stream is cancelled or closed, the guard is dropped and the
/// catalogue's `unsubscribe` runs in the background. A catalogue that keeps a count per
/// resource (the gateway's upstream subscriptions) so never counts a subscriber that left.
pub(crate) struct Held {
    release: Option<(Arc<dyn Catalogue>, String, RequestContext)>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("uri", &self.release.as_ref().map(|(_, uri, _)| uri))
            .finish()
    }
}

impl Held {
    /// Ask `catalogue` for `uri` with `context`; the guard that releases it, once accepted.
    /// `context` outlives the request, so it must not hold the request's stream.
    pub(crate) async fn take(
        catalogue: Arc<dyn Catalogue>,
        uri: String,
        context: RequestContext,
    ) -> Result<Held, HandlerError> {
        catalogue.subscribe(uri.clone(), context.clone()).await?;
        Ok(Held {
            release: Some((catalogue, uri, context)),
        })
    }

    /// A subscription no catalogue needs to hear about (a server with static resources).
    pub(crate) fn unmanaged() -> Held {
        Held { release: None }
    }

    /// Unsubscribe now, for the client that asked to: the catalogue's answer is its answer.
    pub(crate) fn release(mut self) -> BoxFuture<'static, Result<(), HandlerError>> {
        match self.release.take() {
            Some((catalogue, uri, context)) => catalogue.unsubscribe(uri, context),
            None => Box::pin(async { Ok(()) }),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some((catalogue, uri, context)) = self.release.take() else {
            return;
        };
        // Without a runtime the process is ending, and the upstreams with it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let releasing = catalogue.unsubscribe(uri.clone(), context);
        runtime.spawn(async move {
            if let Err(error) = releasing.await {
                tracing::debug!(%uri, %error, "releasing a subscription its subscriber left");
            }
        });
    }
}

/// The resource subscriptions of one legacy session. Shared with the requests in flight: a
/// catalogue's `subscribe` runs after the dispatcher returns, and records the subscription
/// only once accepted.
pub(crate) type Subscriptions = Arc<Mutex<std::collections::HashMap<String, Held>>>;
