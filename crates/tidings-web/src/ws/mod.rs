//! The WebSocket chat API at `/ws` (docs/chat-api.md; RFC 6455): the upgrade, then one task per
//! socket running a [`session::Session`] under the [`socket`] loop.

pub mod api;
pub mod handshake;
pub mod session;
pub mod socket;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::debug;

use crate::Web;
use crate::service::ConnInfo;

/// Each socket's read buffer, octets: small, since most sockets are idle most of the time and a
/// request is a few hundred octets (a message up to the limit still fits: the buffer grows). The
/// library zero-fills this much before every read attempt, and the socket's loop attempts one at
/// each wake-up (an event to send included): profiles showed the fill of 4 KiB as a tenth of a
/// fan-out's instructions.
const READ_BUFFER_BYTES: usize = 1024;
/// Frames queued for one socket are written together up to this many octets (a flush writes
/// whatever is buffered), so the events one wake-up finds take few writes. The library never
/// shrinks this buffer: it stays small, since every socket keeps its capacity for life.
const WRITE_BUFFER_BYTES: usize = 2048;

/// `GET /ws`: checks the opening handshake, answers 101 and starts the socket's session on the
/// upgraded connection; or refuses with 400, 405 or 426 (RFC 6455 §4.2.2).
pub async fn upgrade(State(settings): State<Arc<Web>>, mut request: Request) -> Response {
    let accept = match handshake::check(request.method(), request.version(), request.headers()) {
        Ok(accept) => accept,
        Err(refusal) => {
            let mut response = (refusal.status, format!("{}\n", refusal.reason)).into_response();
            if refusal.status == StatusCode::UPGRADE_REQUIRED {
                let headers = response.headers_mut();
                headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static(handshake::VERSION));
                headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            }
            return response;
        }
    };
    let Some(info) = request.extensions().get::<Arc<ConnInfo>>().cloned() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no connection information\n").into_response();
    };
    // A valid session cookie logs the socket in, but only for a page of this origin: a page
    // elsewhere could open a socket that carries the cookie (cross-site WebSocket hijacking).
    let cookie_session = crate::api::auth::cookie(request.headers(), crate::api::auth::COOKIE)
        .and_then(|token| settings.sessions.find(&token).map(|session| (session.account, token)));
    if cookie_session.is_some() && !same_origin(request.headers()) {
        return (StatusCode::FORBIDDEN, "a session cookie is accepted only from a page of this origin\n")
            .into_response();
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => return debug!(id = info.id, error = %e, "WebSocket upgrade failed"),
        };
        let config = &settings.config;
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(WRITE_BUFFER_BYTES)
            .max_message_size(Some(config.ws_message_bytes_max))
            .max_frame_size(Some(config.ws_message_bytes_max));
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config)).await;
        debug!(id = info.id, peer = %info.peer, "WebSocket open");
        let mut session = session::Session::new(Arc::clone(&settings), info.peer, info.tls);
        if let Some((account, token)) = cookie_session {
            debug!(id = info.id, %account, "WebSocket logged in by its session cookie");
            session.preauth(account, token).await;
        }
        socket::run(ws, session, info.shutdown.clone(), config).await;
        // `info` (and with it the connection's place in the limits) lives until here.
        drop(info);
    });
    let response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty());
    response.unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Whether the request's `Origin` (RFC 6454) names this server as the client reached it: an
/// `http://` or `https://` origin whose host[:port] is the `Host` field, compared without case.
/// The scheme is not compared with the connection's, so a TLS-terminating proxy in front (an
/// `https` page, a plain connection here) still matches; a page of another site cannot name this
/// host, which is what stops cross-site WebSocket hijacking. A missing `Origin` does not match.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let field = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let (Some(origin), Some(host)) = (field(header::ORIGIN), field(header::HOST)) else {
        return false;
    };
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        && !host.is_empty()
        && authority.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn origins_match_the_host_whatever_the_scheme() {
        let same = headers(&[("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")]);
        assert!(same_origin(&same));
        let proxied = headers(&[("origin", "https://mail.example"), ("host", "mail.example")]);
        assert!(same_origin(&proxied), "an https page through a TLS-terminating proxy");
        assert!(same_origin(&headers(&[("origin", "HTTPS://Mail.Example"), ("host", "mail.example")])));
        assert!(!same_origin(&headers(&[("origin", "http://evil.example"), ("host", "127.0.0.1:8080")])));
        assert!(!same_origin(&headers(&[("origin", "http://127.0.0.1:8081"), ("host", "127.0.0.1:8080")])));
        assert!(!same_origin(&headers(&[("origin", "https://mail.example.evil"), ("host", "mail.example")])));
        assert!(!same_origin(&headers(&[("origin", "ftp://mail.example"), ("host", "mail.example")])));
        assert!(!same_origin(&headers(&[("origin", "null"), ("host", "127.0.0.1")])));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1")])));
        assert!(!same_origin(&headers(&[("origin", "http://")])));
        assert!(!same_origin(&headers(&[("origin", "http://"), ("host", "")])));
    }
}
