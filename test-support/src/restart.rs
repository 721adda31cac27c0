//! A server on our kit whose lists change and whose resources take subscriptions, served over
//! Streamable HTTP by a runtime of its own, so that a test can make it go away as a crash
//! would (every connection and stream ends at once) and start it again on the same address.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use switchboard_server::{
    Catalogue, CatalogueResult, HandlerError, HttpConfig, ListRequest, RequestContext, Server,
};

/// A catalogue with nothing in it: what makes the kit declare `listChanged` for its lists.
struct Empty;

impl Catalogue for Empty {
    fn list(
        &self,
        _list: ListRequest,
        _cx: RequestContext,
    ) -> BoxFuture<'static, Result<Vec<Value>, HandlerError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn call_tool(&self, name: String, _: Map<String, Value>, _: RequestContext) -> CatalogueResult {
        Box::pin(async move { Err(unknown(name)) })
    }

    fn read_resource(&self, uri: String, _: RequestContext) -> CatalogueResult {
        Box::pin(async move { Err(unknown(uri)) })
    }

    fn get_prompt(
        &self,
        name: String,
        _: Map<String, Value>,
        _: RequestContext,
    ) -> CatalogueResult {
        Box::pin(async move { Err(unknown(name)) })
    }
}

fn unknown(name: String) -> HandlerError {
    HandlerError::NotFound {
        message: format!("unknown: {name}"),
        data: serde_json::json!({"name": name}),
    }
}

/// The server, on its address, until [`Restartable::crash`].
pub struct Restartable {
    address: SocketAddr,
    server: Server,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Restartable {
    /// Serve on a free loopback port.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let (server, runtime) = serve_on_own_runtime(listener);
        Restartable {
            address,
            server,
            runtime: Some(runtime),
        }
    }

    /// The server now answering, to announce changes with.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Its Streamable HTTP endpoint.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.address)
    }

    /// End the server and every connection to it at once.
    pub fn crash(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// A new server on the same address (crashing the old one first, if it still runs).
    pub async fn restart(&mut self) {
        self.crash();
        // The old runtime closes its listener in the background.
        for _ in 0..100 {
            if let Ok(listener) = std::net::TcpListener::bind(self.address) {
                let (server, runtime) = serve_on_own_runtime(listener);
                self.server = server;
                self.runtime = Some(runtime);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{} stayed in use", self.address);
    }
}

impl std::fmt::Debug for Restartable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restartable")
            .field("address", &self.address)
            .field("running", &self.runtime.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for Restartable {
    fn drop(&mut self) {
        self.crash();
    }
}

fn serve_on_own_runtime(listener: std::net::TcpListener) -> (Server, tokio::runtime::Runtime) {
    let server = Server::builder("restarting", "1")
        .catalogue(Arc::new(Empty))
        .resource_subscriptions()
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let serving = server.clone();
    runtime.spawn(async move {
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        switchboard_server::serve_listener(serving, listener, HttpConfig::default()).await
    });
    (server, runtime)
}
