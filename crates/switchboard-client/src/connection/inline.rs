//! HTTP/1.1 connections to a plain `http://` server, driven by the task that uses them.
//!
//! reqwest (through hyper-util's pool) runs each connection on a task of its own: a request
//! goes to that task through a channel, and its answer comes back through another. That is
//! two wake-ups of another task per call, often on the other worker thread. On a gateway that
//! forwards thousands of calls a second, those wake-ups and the thread switches they cause
//! were a large share of a call's time there (see `docs/performance.md`, issue 8).
//!
//! Here nobody runs a connection but its user:
//! - the request's own future polls the connection while it waits for the answer's head;
//! - the answer's body polls it while the body is read ([`Driven`]);
//! - when the body has been read to its end, the connection goes back to the pool.
//!
//! An answer dropped half-read takes its connection with it, as a cancelled request must. A
//! pooled connection is polled once when it is taken, so one the server has closed is
//! dropped rather than used. A request that was never written because its connection had
//! closed is sent again on another connection; one that was written is never sent twice.
//!
//! A connection's socket belongs to the runtime it was made on, whose I/O driver tells its
//! users when it is ready. On a single-threaded runtime (the gateway's HTTP front runs one
//! per thread) a pooled connection is taken again only on the thread that made it, so that
//! its readiness never has to cross to another runtime; the workers of a multi-threaded
//! runtime share its driver, and any of them takes any connection made there.
//!
//! This carries only what the direct path needs: requests over plain HTTP/1.1, with no
//! proxy. reqwest keeps serving `https` and any server a proxy variable may apply to.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body::{Frame, SizeHint};
use http_body_util::Full;
use hyper::{
    body::Incoming,
    client::conn::http1::{Connection, SendRequest},
};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpStream, time::Instant};

/// The environment variables through which reqwest may send a plain-HTTP request to a proxy;
/// when any is set, the inline path stays off and reqwest decides.
const PROXY_VARIABLES: [&str; 4] = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];

/// How often a request is sent again when the pooled connection it was given turns out to be
/// closed before the request was written.
const UNSENT_RETRIES: usize = 2;

type Conn = Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// A pool of connections to one server, each driven by whoever holds it.
pub(crate) struct InlineHttp {
    /// Where to connect: `host:port`.
    address: String,
    /// The `Host` header: the URL's authority.
    authority: HeaderValue,
    /// What every request is sent to: the URL's path and query.
    target: http::Uri,
    /// The configured headers, sent with every request that does not set them itself.
    default_headers: HeaderMap,
    idle: Mutex<Vec<Idle>>,
    settings: PoolSettings,
}

/// How the pool connects and how long it keeps connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolSettings {
    pub(crate) connect_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_idle: usize,
    pub(crate) keepalive: Duration,
}

impl std::fmt::Debug for InlineHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineHttp")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// A connection taken from the pool or just made: the request half and the connection
/// itself, which must be polled for anything to move.
struct Pair {
    sender: SendRequest<Full<Bytes>>,
    connection: Pin<Box<Conn>>,
    /// The connection future has finished: the connection is closed.
    finished: bool,
    /// Whose I/O driver the socket is registered with.
    driver: Driver,
}

struct Idle {
    pair: Pair,
    since: Instant,
}

/// Which I/O driver a socket made now is registered with, as far as the pool needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    /// A multi-threaded runtime's: its workers share it.
    Shared,
    /// The single-threaded runtime this thread runs.
    Thread(std::thread::ThreadId),
}

impl Driver {
    fn current() -> Driver {
        match tokio::runtime::Handle::try_current().map(|handle| handle.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::CurrentThread) => {
                Driver::Thread(std::thread::current().id())
            }
            _ => Driver::Shared,
        }
    }
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InlineError {
    #[error("could not connect to {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not connect to {address}: no answer within {after:?}")]
    ConnectTimeout { address: String, after: Duration },
    #[error("HTTP error")]
    Http(#[from] hyper::Error),
}

impl InlineHttp {
    /// A pool for `url`, or `None` when this path does not serve it (not `http`, or a proxy
    /// variable is set).
    pub(crate) fn for_url(
        url: &reqwest::Url,
        default_headers: HeaderMap,
        settings: PoolSettings,
    ) -> Option<InlineHttp> {
        Self::for_url_with_env(url, default_headers, settings, |name| {
            std::env::var_os(name).is_some_and(|value| !value.is_empty())
        })
    }

    fn for_url_with_env(
        url: &reqwest::Url,
        default_headers: HeaderMap,
        settings: PoolSettings,
        is_set: impl Fn(&str) -> bool,
    ) -> Option<InlineHttp> {
        if url.scheme() != "http" || PROXY_VARIABLES.iter().any(|name| is_set(name)) {
            return None;
        }
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        // The authority as the URL spells it (an IPv6 literal keeps its brackets).
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Some(InlineHttp {
            // `host_str` keeps an IPv6 literal's brackets, as a socket address wants them.
            address: format!("{host}:{port}"),
            authority: HeaderValue::from_str(&authority).ok()?,
            // Origin form (`/mcp?…`): no proxy is in between.
            target: url[url::Position::BeforePath..].parse().ok()?,
            default_headers,
            idle: Mutex::default(),
            settings,
        })
    }

    /// POST `body` with `headers` and wait for the answer's head. The answer's body drives
    /// the connection as it is read, and returns it to the pool at its end.
    pub(crate) async fn post(
        self: &Arc<Self>,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<reqwest::Response, InlineError> {
        headers.insert(header::HOST, self.authority.clone());
        for (name, value) in &self.default_headers {
            if !headers.contains_key(name) {
                headers.insert(name, value.clone());
            }
        }
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.target.clone();
        *request.headers_mut() = headers;
        let mut retries = 0;
        loop {
            let (mut pair, reused) = match self.checkout() {
                Some(pair) => (pair, true),
                None => (self.connect().await?, false),
            };
            match pair.send(request).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let body = Driven {
                        body,
                        pair: Some(pair),
                        pool: Arc::downgrade(self),
                    };
                    return Ok(reqwest::Response::from(Response::from_parts(
                        parts,
                        reqwest::Body::wrap(body),
                    )));
                }
                Err(mut error) => match error.take_message() {
                    // Never written: the connection had closed. A reused connection may have
                    // been closed by the server while idle; try another.
                    Some(unsent) if reused && retries < UNSENT_RETRIES => {
                        retries += 1;
                        request = unsent;
                    }
                    _ => return Err(InlineError::Http(error.into_error())),
                },
            }
        }
    }

    /// An idle connection that is still open, if the pool has one.
    fn checkout(&self) -> Option<Pair> {
        let driver = Driver::current();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        self.drop_expired(&mut idle);
        // The most recently used first: it is the likeliest to be warm and still open.
        while let Some(index) = idle.iter().rposition(|entry| entry.pair.driver == driver) {
            let Idle { mut pair, .. } = idle.remove(index);
            // Learn whether the server closed it while it sat here.
            if pair.still_open() {
                return Some(pair);
            }
        }
        None
    }

    fn checkin(&self, mut pair: Pair) {
        // Let the connection see that its answer is done, so that it can take the next
        // request.
        if !pair.still_open() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.drop_expired(&mut idle);
        if idle.len() < self.settings.max_idle {
            idle.push(Idle { pair, since: now });
        }
    }

    /// Drop the connections idle for too long, and say when that was decided. Entries are
    /// pushed in time order (the clock is read under the lock), so the expired ones are at
    /// the front.
    fn drop_expired(&self, idle: &mut Vec<Idle>) -> Instant {
        let now = Instant::now();
        let expired = idle.partition_point(|entry| {
            now.saturating_duration_since(entry.since) >= self.settings.idle_timeout
        });
        idle.drain(..expired);
        now
    }

    async fn connect(&self) -> Result<Pair, InlineError> {
        let connecting = async {
            let stream = TcpStream::connect(&self.address).await?;
            stream.set_nodelay(true)?;
            let keepalive = socket2::TcpKeepalive::new().with_time(self.settings.keepalive);
            socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
            Ok::<_, std::io::Error>(stream)
        };
        let stream = tokio::time::timeout(self.settings.connect_timeout, connecting)
            .await
            .map_err(|_| InlineError::ConnectTimeout {
                address: self.address.clone(),
                after: self.settings.connect_timeout,
            })?
            .map_err(|source| InlineError::Connect {
                address: self.address.clone(),
                source,
            })?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(InlineError::Http)?;
        Ok(Pair {
            sender,
            connection: Box::pin(connection),
            finished: false,
            driver: Driver::current(),
        })
    }
}

impl Pair {
    /// Poll the connection, unless it has finished. An error ends it as well: the request
    /// or the body waiting on it sees the error through its own half.
    fn poll_connection(&mut self, cx: &mut Context<'_>) {
        if !self.finished && self.connection.as_mut().poll(cx).is_ready() {
            self.finished = true;
        }
    }

    /// Poll the connection without a waker (nobody waits on an idle connection), and say
    /// whether it is still open.
    fn still_open(&mut self) -> bool {
        self.poll_connection(&mut Context::from_waker(std::task::Waker::noop()));
        !self.finished && !self.sender.is_closed()
    }

    /// Write `request` and wait for the answer's head, driving the connection meanwhile.
    async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<Full<Bytes>>>> {
        // Wait until the connection can take a request: a fresh one is ready at once, a
        // pooled one is once it has finished the previous answer.
        let ready = std::future::poll_fn(|cx| {
            self.poll_connection(cx);
            self.sender.poll_ready(cx)
        })
        .await;
        let mut answer = Box::pin(self.sender.try_send_request(request));
        if let Err(error) = ready {
            // The request is handed back unsent by the closed connection's refusal.
            tracing::debug!(%error, "a pooled connection closed before the request");
        }
        std::future::poll_fn(|cx| {
            if let Poll::Ready(answer) = answer.as_mut().poll(cx) {
                return Poll::Ready(answer);
            }
            self.poll_connection(cx);
            // A connection that ended has failed or answered the request; look again.
            if self.finished {
                return answer.as_mut().poll(cx);
            }
            Poll::Pending
        })
        .await
    }
}

/// An answer's body that drives its connection while it is read, and returns it to the pool
/// when it has been read to its end.
struct Driven {
    body: Incoming,
    /// Taken when the body ends.
    pair: Option<Pair>,
    pool: std::sync::Weak<InlineHttp>,
}

impl http_body::Body for Driven {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let frame = match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                // The connection reads the socket and passes on what came; then look again.
                if let Some(pair) = &mut this.pair {
                    pair.poll_connection(cx);
                }
                std::task::ready!(Pin::new(&mut this.body).poll_frame(cx))
            }
        };
        let ended = match &frame {
            // A body that failed leaves its connection unusable.
            Some(Err(_)) => {
                this.pair = None;
                false
            }
            // The last of a body of known length: a reader that has all it was promised may
            // not ask for the end.
            Some(Ok(_)) => this.body.is_end_stream(),
            None => true,
        };
        if ended && let (Some(pair), Some(pool)) = (this.pair.take(), this.pool.upgrade()) {
            pool.checkin(pair);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: PoolSettings = PoolSettings {
        connect_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(90),
        max_idle: 4,
        keepalive: Duration::from_secs(30),
    };

    fn pool_for(url: &str, proxies: &[&str]) -> Option<InlineHttp> {
        let url = reqwest::Url::parse(url).expect("url");
        InlineHttp::for_url_with_env(&url, HeaderMap::new(), SETTINGS, |name| {
            proxies.contains(&name)
        })
    }

    #[test]
    fn serves_plain_http_without_a_proxy_only() {
        let pool = pool_for("http://127.0.0.1:8080/mcp", &[]).expect("plain http");
        assert_eq!(pool.address, "127.0.0.1:8080");
        assert_eq!(pool.authority, "127.0.0.1:8080");
        let pool = pool_for("http://example.test/mcp", &[]).expect("default port");
        assert_eq!(pool.address, "example.test:80");
        assert_eq!(pool.authority, "example.test");
        let pool = pool_for("http://[::1]:9000/mcp", &[]).expect("ipv6");
        assert_eq!(pool.address, "[::1]:9000");
        assert_eq!(pool.authority, "[::1]:9000");
        assert!(pool_for("https://127.0.0.1:8080/mcp", &[]).is_none());
        assert!(pool_for("http://127.0.0.1:8080/mcp", &["HTTP_PROXY"]).is_none());
        assert!(pool_for("http://127.0.0.1:8080/mcp", &["all_proxy"]).is_none());
    }
}
