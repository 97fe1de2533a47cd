//! The web app (webmail and chat): static files embedded in the binary (`assets/`), served at `/`
//! and `/assets/…` with validators, and the security headers every answer of the HTTP listener
//! carries ([`security_headers`]).
//!
//! The app is plain HTML, CSS and JavaScript with no build step: what is in `assets/` is what is
//! served. It talks to the API (`/api/v1`) and the WebSocket (`/ws`) of the origin it came from.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::Web;

/// One embedded file.
struct Asset {
    /// Where it is served.
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// Every file of the app.
const ASSETS: &[Asset] = &[
    Asset { path: "/", content_type: "text/html; charset=utf-8", body: include_bytes!("../assets/index.html") },
    Asset {
        path: "/assets/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/app.js"),
    },
    Asset {
        path: "/assets/api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/api.js"),
    },
    Asset {
        path: "/assets/auth.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/auth.js"),
    },
    Asset {
        path: "/assets/chat.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/chat.js"),
    },
    Asset {
        path: "/assets/dom.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/dom.js"),
    },
    Asset {
        path: "/assets/mail.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/mail.js"),
    },
    Asset {
        path: "/assets/socket.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/socket.js"),
    },
    Asset {
        path: "/assets/app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/app.css"),
    },
    Asset { path: "/assets/icon.svg", content_type: "image/svg+xml", body: include_bytes!("../assets/icon.svg") },
];

/// The policy of the app's pages and of every answer that sets none of its own: nothing but this
/// origin's scripts, styles, images, frames (the sandboxed view of an HTML mail) and connections
/// (the API and the WebSocket); no inline script or style; no framing by others.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// An ETag for `body` (FNV-1a over its octets: the files only change with the binary).
fn etag(body: &[u8]) -> String {
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
    format!("\"{hash:016x}\"")
}

fn serve(asset: &'static Asset, headers: &HeaderMap) -> Response {
    let tag = etag(asset.body);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut response = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { asset.body.into_response() };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, value);
    }
    response
}

/// `GET /` and `GET /assets/…`.
pub fn routes() -> Router<Arc<Web>> {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        router.route(asset.path, get(move |headers: HeaderMap| async move { serve(asset, &headers) }))
    })
}

/// Adds, to an answer that has none of its own: the [`CONTENT_SECURITY_POLICY`],
/// `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and
/// `X-Frame-Options: DENY` (`SAMEORIGIN` where the answer's own policy allows this origin to
/// frame it).
pub async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let framable = h
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("frame-ancestors 'self'"));
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.entry(header::X_CONTENT_TYPE_OPTIONS).or_insert(HeaderValue::from_static("nosniff"));
    h.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("no-referrer"));
    h.entry(header::X_FRAME_OPTIONS).or_insert(HeaderValue::from_static(if framable { "SAMEORIGIN" } else { "DENY" }));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_path_and_a_body() {
        let mut paths: Vec<_> = ASSETS.iter().map(|a| a.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), ASSETS.len());
        assert!(ASSETS.iter().all(|a| !a.body.is_empty()));
        assert_ne!(etag(b"a"), etag(b"b"));
    }

    /// Every file the page or a module names (`src="/assets/…"`, `href="/assets/…"`,
    /// `from "./….js"`) is embedded: a missing one would fail only in a browser.
    #[test]
    fn every_referenced_file_is_embedded() {
        let served: Vec<&str> = ASSETS.iter().map(|a| a.path).collect();
        let mut referenced = Vec::new();
        for asset in ASSETS {
            let text = std::str::from_utf8(asset.body).expect("text assets");
            for (prefix, base) in [("\"/assets/", "/assets/"), ("from \"./", "/assets/")] {
                for (i, _) in text.match_indices(prefix) {
                    let rest = &text[i + prefix.len()..];
                    let name = &rest[..rest.find('"').expect("a closing quote")];
                    referenced.push(format!("{base}{name}"));
                }
            }
        }
        assert!(referenced.iter().any(|r| r == "/assets/app.js"));
        for r in &referenced {
            assert!(served.contains(&r.as_str()), "{r} is referenced but not embedded");
        }
    }
}
