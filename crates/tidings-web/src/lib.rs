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
//! The same listener serves the HTTP API under `/api/v1` (docs/web-api.md: accounts with emailed
//! verification codes, sessions, webmail) and the web app at `/`.
//!
//! ```no_run
//! # fn demo(settings: tidings_web::WebSettings) {
//! // One `Web` per process, shared by every HTTP listener (sessions live in it).
//! let web = tidings_web::Web::new(settings);
//! let service = tidings_web::HttpService::new(web);
//! # drop(service); }
//! ```

pub mod api;
pub mod app;
mod config;
pub mod outbound;
mod service;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tidings_chat::Hub;
use tidings_net::PlaintextAuth;
use tidings_store::Directory;

pub use config::{HEADER_BYTES_MIN, HISTORY_PAGE_LIMIT, HttpConfig, OutboundConfig};
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
    /// `[server] hostname`: in `Message-ID:` and `Received:` fields of mail the API sends.
    pub hostname: String,
    /// `[outbound]`: where mail to other domains goes.
    pub outbound: OutboundConfig,
    /// `[smtp] message_bytes_max`: the largest message, octets, this node takes; `POST
    /// /api/v1/mail/send` refuses a larger one (`413 too_large`).
    pub message_bytes_max: usize,
}

/// The HTTP side of one node: its settings and the state every HTTP listener shares (sessions,
/// rate limits). Dereferences to its [`WebSettings`].
pub struct Web {
    /// What the node gave.
    pub settings: WebSettings,
    /// Logged-in sessions of the API and the web app.
    pub sessions: api::auth::Sessions,
    /// Verification codes (sign-up, password reset) and the limits on asking for them.
    pub codes: api::accounts::Codes,
    /// Recipients each account has sent to through the API this hour.
    pub sends: api::mail::SendBudget,
}

impl Web {
    /// The shared state over `settings`.
    pub fn new(settings: WebSettings) -> Arc<Web> {
        let sessions = api::auth::Sessions::new(&settings.config);
        let codes = api::accounts::Codes::new(&settings.config);
        Arc::new(Web { settings, sessions, codes, sends: Default::default() })
    }
}

impl WebSettings {
    /// Whether a password may come from `peer` over this connection: always over TLS, and over
    /// plaintext where `[auth] plaintext` allows (by default, from loopback addresses).
    pub fn password_allowed(&self, peer: std::net::IpAddr, tls: bool) -> bool {
        tls || self.plaintext_auth.allows(peer)
    }
}

impl std::ops::Deref for Web {
    type Target = WebSettings;
    fn deref(&self) -> &WebSettings {
        &self.settings
    }
}

/// The routes: `/api/v1/…` (the HTTP API, [`api`]), `GET /ws` (WebSocket chat API),
/// `GET /healthz` (`ok`), and the web app ([`app`]) at `/`. Requests must carry a [`ConnInfo`]
/// extension, as [`HttpService`] adds.
pub fn router(web: Arc<Web>) -> Router {
    Router::new()
        .nest("/api/v1", api::routes(&web))
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(app::routes())
        .layer(axum::middleware::map_response(app::security_headers))
        .with_state(web)
}
