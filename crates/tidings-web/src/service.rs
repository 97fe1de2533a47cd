//! [`HttpService`]: the HTTP/1.1 listener's service. Each accepted connection (plain or TLS,
//! within the listener's connection limits) is served by hyper with the crate's router; a
//! WebSocket upgrade keeps the connection's place in the limits for as long as the socket lives.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower_service::Service as _;
use tracing::debug;

use tidings_net::{Accepted, Admission, Service, Shutdown};

use crate::Web;

/// How long a connection's requests in flight may take to finish once the server stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What a request's handler knows of its connection (a request extension).
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The listener's connection number (`[id]` in logs).
    pub id: u64,
    /// Tells a WebSocket when the server stops; its drop says the connection has ended.
    pub shutdown: Shutdown,
    /// The connection's place in the listener's limits.
    _admission: Admission,
}

/// The HTTP service: the API, the WebSocket chat API, the web app ([`crate::router`]).
pub struct HttpService {
    router: Router,
    web: Arc<Web>,
}

impl HttpService {
    /// The service with the crate's router over `web` (one per listener; every listener of a node
    /// shares its `Web`).
    pub fn new(web: Arc<Web>) -> Arc<HttpService> {
        Arc::new(HttpService { router: crate::router(Arc::clone(&web)), web })
    }
}

impl Service for HttpService {
    fn refusal(&self, reason: &str) -> Vec<u8> {
        let body = format!("{reason}\n");
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    async fn handle(self: Arc<Self>, conn: Accepted) {
        let Accepted { stream, peer, id, shutdown, admission, .. } = conn;
        let info =
            Arc::new(ConnInfo { peer, tls: stream.is_tls(), id, shutdown: shutdown.clone(), _admission: admission });
        let router = self.router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(Arc::clone(&info));
            router.clone().call(request)
        });
        let config = &self.web.config;
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(config.header_timeout_secs))
            .max_buf_size(config.header_bytes_max);
        let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
        let mut connection = std::pin::pin!(connection);
        let mut shutdown = shutdown;
        tokio::select! {
            result = connection.as_mut() => if let Err(e) = result {
                debug!(id, %peer, error = %e, "HTTP connection ended");
            },
            _ = shutdown.recv() => {
                connection.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection).await;
            }
        }
    }
}
