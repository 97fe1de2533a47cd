//! HTTP for tidings: an axum [`Router`] served on our own listeners (so connection limits and TLS
//! apply), carrying the WebSocket chat API at `/ws` (docs/chat-api.md; RFC 6455).
//!
//! A WebSocket client logs in with an account, then lists, joins, creates and leaves rooms, sends
//! messages, pages through history and follows presence, all as JSON text frames:
//!
//! ```text
//! → {"type":"login","id":"1","user":"ta@mmsys.upenn.edu","password":"…"}
//! ← {"type":"ok","id":"1","account":"ta@mmsys.upenn.edu","nick":"ta","rooms":[]}
//! → {"type":"join","id":"2","room":"#cis505"}
//! ← {"type":"ok","id":"2","room":"#cis505",…}
//! ← {"type":"joined","room":"#cis505","member":{"nick":"ta",…},"at_ms":…}
//! ```
//!
//! The rooms are the hub's ([`tidings_chat::Hub`]), shared with every other chat front-end.
//!
//! ```no_run
//! # fn demo(settings: tidings_web::WebSettings) {
//! // One service per process; hand it to `tidings_net::serve` with an HTTP listener.
//! let service = tidings_web::HttpService::new(settings);
//! # drop(service); }
//! ```

mod config;
mod service;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tidings_chat::Hub;
use tidings_net::PlaintextAuth;
use tidings_store::Directory;

pub use config::{HEADER_BYTES_MIN, HISTORY_PAGE_LIMIT, HttpConfig};
pub use service::{ConnInfo, HttpService};

/// What the HTTP service needs from the rest of the server.
pub struct WebSettings {
    /// `[web]`.
    pub config: HttpConfig,
    /// The rooms.
    pub hub: Arc<Hub>,
    /// Logins.
    pub directory: Arc<Directory>,
    /// `[auth] plaintext`: where a password may be sent without TLS.
    pub plaintext_auth: PlaintextAuth,
    /// `[auth] failure_delay_ms`: the wait before answering a failed login.
    pub auth_failure_delay: Duration,
}

/// The routes: `GET /ws` (WebSocket chat API), `GET /healthz` (`ok`), `GET /` (a pointer to
/// the API). Requests must carry a [`ConnInfo`] extension, as [`HttpService`] adds.
pub fn router(settings: Arc<WebSettings>) -> Router {
    Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/", get(|| async { "tidings: the WebSocket chat API is at /ws (docs/chat-api.md)\n" }))
        .with_state(settings)
}
