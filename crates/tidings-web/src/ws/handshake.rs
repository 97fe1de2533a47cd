//! The server's side of the WebSocket opening handshake (RFC 6455 §4.2): checking the client's
//! upgrade request and computing `Sec-WebSocket-Accept`. Pure: headers in, a verdict out.

use axum::http::{HeaderMap, Method, StatusCode, Version, header};
use base64::Engine;
use sha1::{Digest, Sha1};

/// The GUID RFC 6455 §1.3 appends to the client's key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version this server speaks (RFC 6455 §4.1).
pub const VERSION: &str = "13";

/// Why an upgrade request is refused: the HTTP status and a line for the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400 (malformed), 405 (not GET) or 426 (not a WebSocket upgrade, or another version).
    pub status: StatusCode,
    /// Says what was expected.
    pub reason: &'static str,
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key` (RFC 6455 §4.2.2 item 5.4): base64 of
/// the SHA-1 of the key and the GUID.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Checks an opening handshake (RFC 6455 §4.2.1) and returns the `Sec-WebSocket-Accept` value.
///
/// # Errors
/// A [`Refusal`]: not GET (405); not HTTP/1.1 or later, no `Upgrade: websocket` or no
/// `Connection: upgrade` (426); a version other than 13 (426, the caller adds
/// `Sec-WebSocket-Version: 13`); a missing key or one that is not 16 octets in base64 (400).
pub fn check(method: &Method, version: Version, headers: &HeaderMap) -> Result<String, Refusal> {
    if method != Method::GET {
        return Err(Refusal { status: StatusCode::METHOD_NOT_ALLOWED, reason: "a WebSocket opens with GET" });
    }
    let upgrade_required = |reason| Refusal { status: StatusCode::UPGRADE_REQUIRED, reason };
    if version < Version::HTTP_11 {
        return Err(upgrade_required("a WebSocket needs HTTP/1.1"));
    }
    if !has_token(headers, header::UPGRADE, "websocket") || !has_token(headers, header::CONNECTION, "upgrade") {
        return Err(upgrade_required("this is a WebSocket endpoint: send Upgrade: websocket, Connection: Upgrade"));
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).and_then(|v| v.to_str().ok()).map(str::trim) != Some(VERSION) {
        return Err(upgrade_required("only WebSocket version 13 is supported"));
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY).map(|v| v.as_bytes().trim_ascii()).unwrap_or_default();
    let decoded = base64::engine::general_purpose::STANDARD.decode(key).unwrap_or_default();
    if decoded.len() != 16 {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            reason: "Sec-WebSocket-Key must be 16 octets in base64",
        });
    }
    Ok(accept_key(key))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    const GOOD: [(&str, &str); 4] = [
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn the_rfc_6455_sample_key_gives_the_sample_accept() {
        // RFC 6455 §1.3.
        assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(check(&Method::GET, Version::HTTP_11, &headers(&GOOD)).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn requests_that_are_not_version_13_upgrades_are_refused() {
        let refused = |method: Method, version, pairs: &[(&'static str, &'static str)]| {
            check(&method, version, &headers(pairs)).unwrap_err().status
        };
        assert_eq!(refused(Method::POST, Version::HTTP_11, &GOOD), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(refused(Method::GET, Version::HTTP_10, &GOOD), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(refused(Method::GET, Version::HTTP_11, &GOOD[1..]), StatusCode::UPGRADE_REQUIRED);
        let mut v8 = GOOD;
        v8[2] = ("sec-websocket-version", "8");
        assert_eq!(refused(Method::GET, Version::HTTP_11, &v8), StatusCode::UPGRADE_REQUIRED);
        let mut short = GOOD;
        short[3] = ("sec-websocket-key", "c2hvcnQ=");
        assert_eq!(refused(Method::GET, Version::HTTP_11, &short), StatusCode::BAD_REQUEST);
        assert_eq!(refused(Method::GET, Version::HTTP_11, &GOOD[..3]), StatusCode::BAD_REQUEST);
    }
}
