//! A small client of the tidings HTTP API (docs/web-api.md): JSON requests over HTTP/1.1, one
//! connection per request, `http://` or `https://` (TLS with [`crate::net::tls_config`]).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use tidings_client::web::{ApiClient, ApiUrl};
//! let api = ApiClient::new("http://127.0.0.1:8080".parse::<ApiUrl>()?, None);
//! let answer = api.post_json("/api/v1/accounts/codes", &serde_json::json!({"email": "ann@example.org"})).await?;
//! println!("{} {}", answer.status, answer.body);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;

use crate::net::{self, ServerAddress};

/// Largest answer body read, in octets.
pub const RESPONSE_BYTES_MAX: usize = 1024 * 1024;
/// How long a request may take, from connecting to the end of the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the API is: `http://HOST:PORT` or `https://HOST:PORT` (a path, if given, is ignored:
/// the API is always under `/api/v1`). The port defaults to 80 or 443.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiUrl {
    /// Whether to use TLS (`https`).
    pub tls: bool,
    /// The server.
    pub server: ServerAddress,
}

impl std::str::FromStr for ApiUrl {
    type Err = anyhow::Error;

    /// Parses `http://host[:port][/…]` or `https://…`.
    ///
    /// # Errors
    /// Another scheme, no host, or a bad port.
    fn from_str(text: &str) -> anyhow::Result<ApiUrl> {
        let (tls, rest) = if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else {
            bail!("{text:?} is not an http:// or https:// URL");
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let has_port = match authority.rfind(']') {
            Some(close) => authority[close..].contains(':'),
            None => authority.contains(':'),
        };
        let with_port =
            if has_port { authority.to_owned() } else { format!("{authority}:{}", if tls { 443 } else { 80 }) };
        let server: ServerAddress = with_port.parse().with_context(|| format!("{text:?} has no usable host:port"))?;
        Ok(ApiUrl { tls, server })
    }
}

impl fmt::Display for ApiUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", if self.tls { "https" } else { "http" }, self.server)
    }
}

/// An answer of the API.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The JSON body (`null` when there is none or it is not JSON).
    pub body: serde_json::Value,
    /// `Retry-After`, in seconds, when given.
    pub retry_after: Option<u64>,
}

impl ApiResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error's code (`error.code`), if the body is an API error.
    pub fn error_code(&self) -> Option<&str> {
        self.body.pointer("/error/code").and_then(|v| v.as_str())
    }

    /// A one-line account of an error answer, for people: its message, or the status.
    pub fn error_text(&self) -> String {
        let message = self.body.pointer("/error/message").and_then(|v| v.as_str());
        let mut text = match (self.error_code(), message) {
            (Some(code), Some(message)) => format!("{message} ({code}, HTTP {})", self.status),
            _ => format!("HTTP {}", self.status),
        };
        if let Some(secs) = self.retry_after {
            text.push_str(&format!("; try again in {secs} s"));
        }
        text
    }
}

/// Talks to one node's API.
#[derive(Clone)]
pub struct ApiClient {
    url: ApiUrl,
    tls: Option<Arc<ClientConfig>>,
}

impl ApiClient {
    /// A client of the API at `url`; `tls` is the configuration for `https` (without it, the
    /// system's roots are used).
    pub fn new(url: ApiUrl, tls: Option<Arc<ClientConfig>>) -> ApiClient {
        ApiClient { url, tls }
    }

    /// `POST path` with a JSON body.
    ///
    /// # Errors
    /// When the server cannot be reached, or the exchange fails or takes longer than
    /// [`REQUEST_TIMEOUT`]. An error status is an answer, not an error.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<ApiResponse> {
        self.request(Method::POST, path, Some(serde_json::to_vec(body)?), None).await
    }

    /// `GET path` (with its query).
    ///
    /// # Errors
    /// As [`ApiClient::post_json`].
    pub async fn get(&self, path: &str) -> anyhow::Result<ApiResponse> {
        self.request(Method::GET, path, None, None).await
    }

    /// `DELETE path` as the session whose bearer token is `token` (`Authorization: Bearer`), e.g.
    /// `/api/v1/session` to end that session.
    ///
    /// # Errors
    /// As [`ApiClient::post_json`].
    pub async fn delete_as(&self, path: &str, token: &str) -> anyhow::Result<ApiResponse> {
        self.request(Method::DELETE, path, None, Some(token)).await
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<&str>,
    ) -> anyhow::Result<ApiResponse> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(method, path, body, token))
            .await
            .map_err(|_| anyhow!("{}: no answer within {} s", self.url, REQUEST_TIMEOUT.as_secs()))?
            .with_context(|| format!("{} {path}", self.url))
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<&str>,
    ) -> anyhow::Result<ApiResponse> {
        let tcp = net::tcp_connect(&self.url.server).await?;
        let host = HeaderValue::from_str(&self.url.server.to_string()).context("the host is not a header value")?;
        let mut builder =
            Request::builder().method(method).uri(path).header(header::HOST, host).header(header::CONNECTION, "close");
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(token) = token {
            let bearer =
                HeaderValue::from_str(&format!("Bearer {token}")).context("the token is not a header value")?;
            builder = builder.header(header::AUTHORIZATION, bearer);
        }
        let request = builder.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let response = if self.url.tls {
            let tls = match &self.tls {
                Some(tls) => Arc::clone(tls),
                None => net::tls_config(&net::TlsOptions::default())?,
            };
            let stream = net::tls_handshake(&tls, &self.url.server, tcp).await?;
            send(TokioIo::new(stream), request).await?
        } else {
            send(TokioIo::new(tcp), request).await?
        };
        let (parts, body) = response.into_parts();
        let octets = Limited::new(body, RESPONSE_BYTES_MAX)
            .collect()
            .await
            .map_err(|e| anyhow!("reading the answer: {e}"))?
            .to_bytes();
        let retry_after =
            parts.headers.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
        let body = serde_json::from_slice(&octets).unwrap_or(serde_json::Value::Null);
        Ok(ApiResponse { status: parts.status.as_u16(), body, retry_after })
    }
}

/// One request on a fresh HTTP/1.1 connection.
async fn send<I>(io: I, request: Request<Full<Bytes>>) -> anyhow::Result<hyper::Response<hyper::body::Incoming>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        // Ends when the answer has been read and the connection is dropped; its error, if any,
        // shows in the answer.
        let _ = connection.await;
    });
    Ok(sender.send_request(request).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_scheme_host_and_port() {
        let url: ApiUrl = "http://127.0.0.1:8080".parse().unwrap();
        assert_eq!((url.tls, url.server.host.as_str(), url.server.port), (false, "127.0.0.1", 8080));
        let url: ApiUrl = "https://mail.example.org/api/v1".parse().unwrap();
        assert_eq!((url.tls, url.server.host.as_str(), url.server.port), (true, "mail.example.org", 443));
        let url: ApiUrl = "http://[::1]".parse().unwrap();
        assert_eq!((url.server.host.as_str(), url.server.port), ("::1", 80));
        assert_eq!(url.to_string(), "http://[::1]:80");
        assert!("ftp://x".parse::<ApiUrl>().is_err());
        assert!("http://:80".parse::<ApiUrl>().is_err());
    }

    #[test]
    fn error_answers_read_as_one_line() {
        let answer = ApiResponse {
            status: 429,
            body: serde_json::json!({"error": {"code": "rate_limited", "message": "slow down"}}),
            retry_after: Some(30),
        };
        assert!(!answer.is_success());
        assert_eq!(answer.error_text(), "slow down (rate_limited, HTTP 429); try again in 30 s");
    }
}
