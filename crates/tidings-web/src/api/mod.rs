//! The HTTP API under `/api/v1` (docs/web-api.md): sessions ([`auth`]), accounts with emailed
//! verification codes ([`accounts`]) and webmail ([`mail`]). JSON in and out; every error is an
//! [`ErrorBody`]. The OpenAPI 3 document is generated from the handlers' annotations
//! ([`openapi`]) and served at `GET /api/v1/openapi.json`.

pub mod accounts;
pub mod auth;
pub mod limit;
pub mod mail;

use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tidings_store::StoreError;
use tracing::warn;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::Web;

/// An API error: the status, a stable machine-readable `code` and a message for people
/// (docs/web-api.md lists the codes). With `retry_after`, the answer carries `Retry-After`
/// (RFC 9110 §10.2.3), in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// `bad_request`, `unauthenticated`, `csrf`, `forbidden`, `not_found`, `exists`, …
    pub code: &'static str,
    /// What went wrong, in words.
    pub message: String,
    /// Seconds before trying again (`429`, `503`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    /// `400 bad_request`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// `404 not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// `429 rate_limited` with `Retry-After`.
    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after_secs.max(1)),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
    }

    /// `503 unavailable` for a store failure (logged; the client may try again).
    pub fn unavailable(e: &StoreError) -> ApiError {
        warn!(error = %e, "api: the store failed");
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "try again later")
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::unavailable(&e)
    }
}

/// The key a client is counted under by per-client limits: an IPv4 address as it is, an IPv6
/// address masked to its /64 (one subscriber usually holds a whole /64, RFC 6177), and an
/// IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2) as its IPv4 address.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error's code and message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code, e.g. `rate_limited`.
    pub code: String,
    /// Human-readable text.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message } };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// A JSON request body (`Content-Type: application/json`) whose refusals are [`ApiError`]s:
/// `415` without that content type, `413` over `[web] request_bytes_max`, `400` for anything else
/// that does not fit `T`.
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Body<T>, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON (Content-Type: application/json)",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "the request body is too large")
        }
        _ => ApiError::bad_request(rejection.body_text()),
    }
}

/// Query parameters whose refusals are `400` [`ApiError`]s.
#[derive(Debug, Clone)]
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Params<T>, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Params(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request(rejection.body_text())
}

/// The API's document, from every handler's annotations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tidings",
        description = "Accounts, sessions and webmail of a tidings node (docs/web-api.md). \
                       Chat is the WebSocket API at /ws (docs/chat-api.md).",
        license(name = "Apache-2.0")
    ),
    paths(openapi_json),
    modifiers(&Security)
)]
struct ApiDoc;

/// Adds the two ways to authenticate: the session cookie (with `X-CSRF-Token` on changes) and a
/// bearer token.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            auth::COOKIE_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(auth::COOKIE))),
        );
        components.add_security_scheme(
            auth::BEARER_SCHEME,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI 3 document of the API: every path of [`routes`], generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(auth::AuthApi::openapi());
    doc.merge(accounts::AccountsApi::openapi());
    doc.merge(mail::MailApi::openapi());
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// This API's OpenAPI 3 document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
async fn openapi_json() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| openapi().to_json().unwrap_or_else(|_| "{}".to_owned()));
    ([(header::CONTENT_TYPE, "application/json")], json.as_str()).into_response()
}

/// Largest body the session and account endpoints take (a login, a sign-up), octets; the mail
/// endpoints take up to `[web] request_bytes_max`.
pub const SMALL_BODY_BYTES: usize = 16 * 1024;

/// The API's routes, to nest under `/api/v1`. Request bodies are limited to `[web]
/// request_bytes_max` ([`SMALL_BODY_BYTES`] for sessions and accounts); every answer is `Cache-Control: no-store`; a path not here gets a `404`
/// error body.
pub fn routes(web: &Web) -> Router<Arc<Web>> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .merge(auth::routes().layer(DefaultBodyLimit::max(SMALL_BODY_BYTES)))
        .merge(accounts::routes().layer(DefaultBodyLimit::max(SMALL_BODY_BYTES)))
        .merge(mail::routes())
        .fallback(|| async { ApiError::not_found("no such API endpoint") })
        .layer(DefaultBodyLimit::max(web.config.request_bytes_max))
        .layer(axum::middleware::map_response(no_store))
}

async fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_keyed_by_ipv4_address_or_ipv6_slash_64() {
        let key = |text: &str| client_key(text.parse().unwrap()).to_string();
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::1"), "::");
    }
}
