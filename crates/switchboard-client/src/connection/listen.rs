//! `subscriptions/listen` streams of a 2026-07-28 server, kept open for the connection's life.
//!
//! A modern server sends list changes and resource updates only on a listen stream the client
//! opened. Such a stream is a long-lived answer to one request, and it ends when the server
//! restarts, a proxy cuts it, or the network drops it, while the connection itself stays usable
//! (each call is its own HTTP request). So a stream that ends is opened again, after a pause
//! that doubles from [`RELISTEN_FIRST`] up to [`RELISTEN_MAX`] (with jitter, so the clients of a
//! restarted server do not all come back at once). Once it is open again, the connection
//! reports the events it may have missed meanwhile: every list it listens for changed, and
//! every resource it listens to was updated, so caches are refreshed rather than left stale.
//!
//! It stops when the server refuses the request (a JSON-RPC error: it will not listen) or when
//! the connection's transport has closed (the connection is then replaced or dropped).

use std::time::Duration;

use rmcp::{
    model::{ServerNotification, SubscriptionFilter},
    service::{Peer, RoleClient, ServiceError, Subscription},
};
use tokio::time::Instant;

use crate::{handler::ClientSide, model::ServerEvent, resilience::backoff_cap};

/// The pause before the first attempt to open an ended stream again.
pub const RELISTEN_FIRST: Duration = Duration::from_millis(250);

/// The longest pause between attempts. A stream that stayed open this long resets the pause
/// to [`RELISTEN_FIRST`].
pub const RELISTEN_MAX: Duration = Duration::from_secs(30);

/// Turn what arrives on a listen stream into the connection's events, until it ends.
async fn pump(mut subscription: Subscription, handler: &ClientSide) {
    loop {
        match subscription.next().await {
            Ok(Some(ServerNotification::ToolListChangedNotification(_))) => {
                handler.emit(ServerEvent::ToolsChanged)
            }
            Ok(Some(ServerNotification::PromptListChangedNotification(_))) => {
                handler.emit(ServerEvent::PromptsChanged)
            }
            Ok(Some(ServerNotification::ResourceListChangedNotification(_))) => {
                handler.emit(ServerEvent::ResourcesChanged)
            }
            Ok(Some(ServerNotification::ResourceUpdatedNotification(update))) => {
                handler.emit(ServerEvent::ResourceUpdated {
                    uri: update.params.uri,
                })
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                tracing::debug!(end = ?subscription.end(), "a subscriptions/listen stream ended");
                return;
            }
            Err(error) => {
                tracing::debug!(%error, "a subscriptions/listen stream failed");
                return;
            }
        }
    }
}

/// The pause before attempt `attempt` (from 1): between half the doubled cap and the cap.
fn pause(attempt: u32) -> Duration {
    let cap = backoff_cap(RELISTEN_FIRST, RELISTEN_MAX, attempt);
    let half = cap / 2;
    let millis = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(fastrand::u64(0..=millis))
}

/// Listen with `filter` for as long as the connection lives: pass on what arrives, open the
/// stream again when it ends, and report what it may have missed ([`missed_changes`]) each
/// time it is open again. `opened` is a stream already open (whose acknowledgement the caller
/// checked); without one, the first attempt is made at once.
pub(super) async fn keep_listening(
    peer: Peer<RoleClient>,
    filter: SubscriptionFilter,
    handler: ClientSide,
    opened: Option<Subscription>,
) {
    let missed = missed_changes(&filter);
    let mut subscription = opened;
    // Whether the next stream that opens follows one that ended or an attempt that failed.
    let mut gap = false;
    let mut attempt = 0u32;
    loop {
        let current = match subscription.take() {
            Some(current) => current,
            None => match peer.listen(filter.clone()).await {
                Ok(current) => {
                    if gap {
                        tracing::debug!("a subscriptions/listen stream is open again");
                        for event in &missed {
                            handler.emit(event.clone());
                        }
                    }
                    current
                }
                Err(ServiceError::McpError(error)) => {
                    tracing::debug!(%error.message, "the server refused subscriptions/listen; what it would send there will not be seen");
                    return;
                }
                Err(error) => {
                    if peer.is_transport_closed() {
                        return;
                    }
                    tracing::debug!(%error, "could not open a subscriptions/listen stream; trying again");
                    gap = true;
                    attempt = attempt.saturating_add(1);
                    tokio::time::sleep(pause(attempt)).await;
                    continue;
                }
            },
        };
        let since = Instant::now();
        pump(current, &handler).await;
        if peer.is_transport_closed() {
            return;
        }
        gap = true;
        if since.elapsed() >= RELISTEN_MAX {
            attempt = 0;
        }
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(pause(attempt)).await;
    }
}

/// The events a stream with `filter` may have missed while it was closed.
fn missed_changes(filter: &SubscriptionFilter) -> Vec<ServerEvent> {
    let mut missed = Vec::new();
    if filter.tools_list_changed.unwrap_or(false) {
        missed.push(ServerEvent::ToolsChanged);
    }
    if filter.prompts_list_changed.unwrap_or(false) {
        missed.push(ServerEvent::PromptsChanged);
    }
    if filter.resources_list_changed.unwrap_or(false) {
        missed.push(ServerEvent::ResourcesChanged);
    }
    missed.extend(
        filter
            .resource_subscriptions
            .iter()
            .flatten()
            .map(|uri| ServerEvent::ResourceUpdated { uri: uri.clone() }),
    );
    missed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_with_jitter_up_to_the_limit() {
        for attempt in 1..12 {
            let cap = backoff_cap(RELISTEN_FIRST, RELISTEN_MAX, attempt);
            for _ in 0..20 {
                let pause = pause(attempt);
                assert!(pause >= cap / 2 && pause <= cap, "{attempt}: {pause:?}");
            }
        }
        assert_eq!(backoff_cap(RELISTEN_FIRST, RELISTEN_MAX, 20), RELISTEN_MAX);
    }

    #[test]
    fn what_a_closed_stream_may_have_missed_follows_its_filter() {
        let filter = SubscriptionFilter::builder()
            .tools_list_changed()
            .resource_subscriptions(["kit://a".to_owned()])
            .build();
        let missed = missed_changes(&filter);
        assert!(matches!(
            missed.as_slice(),
            [ServerEvent::ToolsChanged, ServerEvent::ResourceUpdated { uri }] if uri == "kit://a"
        ));
    }
}
