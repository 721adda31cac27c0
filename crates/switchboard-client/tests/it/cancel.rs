//! A request whose caller gives up is cancelled on the server (`notifications/cancelled`).

use std::time::Duration;

use serde_json::json;
use switchboard_client::{
    CANCELLED_BY_CALLER, CallOptions, ConnectOptions, Connection, EraPreference,
};
use test_support::fixture::{FixtureOptions, Journal, JournalEntry, serve_in_memory};

use crate::name;

/// Bounds every wait in these tests, so a missing cancellation fails instead of hanging.
const WAIT: Duration = Duration::from_secs(5);

async fn connect(era: EraPreference, journal: std::sync::Arc<Journal>) -> Connection {
    let (reader, writer) = serve_in_memory(FixtureOptions {
        journal: Some(journal),
        ..FixtureOptions::default()
    });
    let options = ConnectOptions {
        era,
        ..ConnectOptions::default()
    };
    Connection::connect_io(name("fixture"), reader, writer, &options)
        .await
        .unwrap()
}

/// Poll the journal until it holds a cancellation, within [`WAIT`].
async fn cancellation(journal: &Journal) -> Option<(String, Option<String>)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        let found = journal.entries().into_iter().find_map(|e| match e {
            JournalEntry::Cancelled { id, reason } => Some((id, reason)),
            JournalEntry::Call { .. } | JournalEntry::ListedTools => None,
        });
        if found.is_some() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Start a long call, and give up on it once the server has it: the outer timeout drops the
/// call's future.
async fn abandon_a_slow_call(connection: &Connection) {
    let call = connection.call_tool(
        "slow",
        json!({"ms": 10_000, "steps": 1}).as_object().cloned(),
        CallOptions::default(),
    );
    let abandoned = tokio::time::timeout(Duration::from_millis(200), call).await;
    assert!(abandoned.is_err(), "the slow call cannot have finished");
}

async fn dropping_the_call_future_cancels_it_on_the_server(era: EraPreference) {
    let journal = Journal::new();
    let connection = connect(era, journal.clone()).await;
    abandon_a_slow_call(&connection).await;

    let (cancelled_id, reason) = cancellation(&journal)
        .await
        .expect("the server received notifications/cancelled");
    let call_id = journal
        .entries()
        .into_iter()
        .find_map(|e| match e {
            JournalEntry::Call { id, tool } if tool == "slow" => Some(id),
            _ => None,
        })
        .expect("the server saw the call");
    assert_eq!(cancelled_id, call_id, "the cancellation names the call");
    assert_eq!(reason.as_deref(), Some(CANCELLED_BY_CALLER));

    // The connection stays usable, and a call that completes sends no cancellation.
    let sum = connection
        .call_tool(
            "add",
            json!({"a": 1, "b": 2}).as_object().cloned(),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(sum.structured_content, Some(json!({"sum": 3})));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cancellations = journal
        .entries()
        .iter()
        .filter(|e| matches!(e, JournalEntry::Cancelled { .. }))
        .count();
    assert_eq!(cancellations, 1, "{:?}", journal.entries());
}

#[tokio::test]
async fn dropping_a_modern_call_sends_notifications_cancelled() {
    dropping_the_call_future_cancels_it_on_the_server(EraPreference::Modern).await;
}

#[tokio::test]
async fn dropping_a_legacy_call_sends_notifications_cancelled() {
    dropping_the_call_future_cancels_it_on_the_server(EraPreference::Legacy).await;
}

#[tokio::test]
async fn a_request_timeout_sends_notifications_cancelled() {
    let journal = Journal::new();
    let connection = connect(EraPreference::Auto, journal.clone()).await;
    let options = CallOptions {
        timeout: Duration::from_millis(100),
        ..CallOptions::default()
    };
    let error = connection
        .call_tool(
            "slow",
            json!({"ms": 10_000, "steps": 1}).as_object().cloned(),
            options,
        )
        .await
        .unwrap_err();
    assert_eq!(error.class(), switchboard_client::ErrorClass::Timeout);
    let (_, reason) = cancellation(&journal)
        .await
        .expect("the server received notifications/cancelled");
    assert_eq!(reason.as_deref(), Some("request timeout"));
}

/// Ctrl-C in the CLI abandons the call and then closes the connection at once: the
/// cancellation, sent from a task of its own, must still go out before the session ends.
async fn closing_right_after_abandoning_a_call_still_cancels_it(era: EraPreference) {
    let journal = Journal::new();
    let connection = connect(era, journal.clone()).await;
    abandon_a_slow_call(&connection).await;
    tokio::time::timeout(WAIT, connection.close())
        .await
        .expect("close is bounded");
    let (_, reason) = cancellation(&journal)
        .await
        .expect("the server received notifications/cancelled before the close");
    assert_eq!(reason.as_deref(), Some(CANCELLED_BY_CALLER));
}

#[tokio::test]
async fn closing_after_abandoning_a_modern_call_still_cancels_it() {
    closing_right_after_abandoning_a_call_still_cancels_it(EraPreference::Modern).await;
}

#[tokio::test]
async fn closing_after_abandoning_a_legacy_call_still_cancels_it() {
    closing_right_after_abandoning_a_call_still_cancels_it(EraPreference::Legacy).await;
}
