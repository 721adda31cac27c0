//! Waiting for a legacy Streamable HTTP session's standalone stream before using the session.
//!
//! After `initialize`, rmcp opens the session's GET event stream in a task of its own and
//! returns at once. A server request that belongs to no client request (an `elicitation/create`
//! sent from inside a tool through the server object rather than the request's context, as the
//! TypeScript SDK makes easy) goes out on that stream, and servers such as the TypeScript SDK's
//! drop it when the stream is not open yet. The call that caused it then waits for an answer
//! that cannot come. [`StreamWatch`] notes when the GET has been answered (opened, or refused
//! with 405), so that [`crate::Connection::connect`] returns only once the server has somewhere
//! to send its requests.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::{
    model::ClientJsonRpcMessage,
    transport::streamable_http_client::{
        StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
        StreamableHttpResponseLimits,
    },
};
use sse_stream::{Error as SseError, Sse};
use tokio::sync::watch;

/// Longest wait for the standalone stream after the handshake. A server that takes longer to
/// answer a GET is used without it, as before.
pub(crate) const STANDALONE_STREAM_WAIT: Duration = Duration::from_secs(2);

/// A [`StreamableHttpClient`] that reports when a session's standalone GET stream has been
/// answered.
#[derive(Clone)]
pub(crate) struct StreamWatch<C> {
    inner: C,
    answered: Arc<watch::Sender<bool>>,
}

/// The other end of a [`StreamWatch`].
#[derive(Debug)]
pub(crate) struct StreamAnswered(watch::Receiver<bool>);

impl StreamAnswered {
    /// Wait until the standalone GET has been answered, at most `limit`; whether it was.
    pub(crate) async fn wait(mut self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.0.wait_for(|answered| *answered))
            .await
            .is_ok_and(|seen| seen.is_ok())
    }
}

impl<C> StreamWatch<C> {
    pub(crate) fn new(inner: C) -> (Self, StreamAnswered) {
        let (sender, receiver) = watch::channel(false);
        (
            StreamWatch {
                inner,
                answered: Arc::new(sender),
            },
            StreamAnswered(receiver),
        )
    }

    /// A session's first GET (not a resumption with `Last-Event-ID`) has its answer.
    fn note(&self, session_id: Option<&Arc<str>>, last_event_id: Option<&String>) {
        if session_id.is_some() && last_event_id.is_none() {
            self.answered.send_replace(true);
        }
    }
}

/// Forwards what rmcp's transport calls (`post_message_with_response_limits`,
/// `get_stream_with_max_sse_event_size`) and the methods the trait requires, so that the inner
/// client's limits still apply; the trait's defaults cover the rest.
impl<C: StreamableHttpClient + Sync> StreamableHttpClient for StreamWatch<C> {
    type Error = C::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.inner
            .post_message(uri, message, session_id, auth_header, custom_headers)
            .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.inner
            .post_message_with_response_limits(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                limits,
            )
            .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        self.inner
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        let result = self
            .inner
            .get_stream(
                uri,
                session_id.clone(),
                last_event_id.clone(),
                auth_header,
                custom_headers,
            )
            .await;
        self.note(session_id.as_ref(), last_event_id.as_ref());
        result
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        let result = self
            .inner
            .get_stream_with_max_sse_event_size(
                uri,
                session_id.clone(),
                last_event_id.clone(),
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await;
        self.note(session_id.as_ref(), last_event_id.as_ref());
        result
    }
}
