//! Sessions: login (`POST /api/v1/session`) with a cookie for the web app or a bearer token for
//! API clients, the current session, logout; the [`Authenticated`] extractor every other endpoint
//! uses (with the CSRF check of cookie sessions); login throttling and lockout.
//!
//! A session is 32 random octets, given to the client once (base64url) and kept here only as its
//! SHA-256, with the account, a CSRF token (cookie sessions) and an expiry. Sessions live in
//! memory, bounded per account and per node.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Extension, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tidings_core::{Address, date, password};
use tidings_store::LoginError;
use tracing::{info, warn};
use utoipa::{OpenApi, ToSchema};

use super::limit::Counter;
use super::{ApiError, Body, ErrorBody};
use crate::{ConnInfo, HttpConfig, Web};

/// The session cookie's name.
pub const COOKIE: &str = "tidings_session";
/// The header a cookie session's changing requests carry its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The OpenAPI security scheme of the cookie.
pub const COOKIE_SCHEME: &str = "session_cookie";
/// The OpenAPI security scheme of bearer tokens.
pub const BEARER_SCHEME: &str = "bearer_token";

/// Octets of randomness in a session token and a CSRF token.
const TOKEN_BYTES: usize = 32;

type TokenKey = [u8; 32];

fn random_token() -> String {
    let mut octets = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut octets).expect("the operating system's random source");
    URL_SAFE_NO_PAD.encode(octets)
}

fn key_of(token: &str) -> TokenKey {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

/// Compares two strings in time that depends on their lengths only.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Record {
    account: Address,
    /// Cookie sessions only.
    csrf: Option<String>,
    expires: Instant,
    /// Unix seconds.
    expires_at: i64,
    serial: u64,
}

#[derive(Default)]
struct Table {
    by_key: HashMap<TokenKey, Record>,
    /// Each account's sessions, oldest first.
    by_account: HashMap<Address, VecDeque<TokenKey>>,
    /// Every session by creation order, for evicting the oldest.
    by_age: BTreeMap<u64, TokenKey>,
    next_serial: u64,
    /// Accounts whose sessions were ended ([`Sessions::end_account`]), with how often.
    generations: HashMap<Address, u64>,
}

impl Table {
    fn remove(&mut self, key: &TokenKey) -> Option<Record> {
        let record = self.by_key.remove(key)?;
        self.by_age.remove(&record.serial);
        if let Some(keys) = self.by_account.get_mut(&record.account) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.by_account.remove(&record.account);
            }
        }
        Some(record)
    }
}

/// A session just made: what the client is given, once.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The session token (cookie value or bearer token).
    pub token: String,
    /// The CSRF token of a cookie session.
    pub csrf: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
}

/// What a valid token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// The account.
    pub account: Address,
    /// The CSRF token (cookie sessions).
    pub csrf: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Login attempts counted per account and per client (IPv6 per /64) over a window.
#[derive(Default)]
struct Attempts {
    by_account: Counter<String>,
    by_client: Counter<IpAddr>,
}

/// Longest login name the API and the WebSocket take, octets (an address is at most 254;
/// RFC 5321 §4.5.3.1); a longer one is refused before anything else.
pub const USER_BYTES_MAX: usize = 320;

/// The node's sessions and login throttle (in memory; a restart ends every session).
pub struct Sessions {
    table: Mutex<Table>,
    attempts: Mutex<Attempts>,
    ttl: Duration,
    per_account_max: usize,
    max: usize,
    lockout_attempts: u32,
    lockout: Duration,
}

impl Sessions {
    /// Empty, with `[web]`'s bounds.
    pub fn new(config: &HttpConfig) -> Sessions {
        Sessions {
            table: Mutex::new(Table::default()),
            attempts: Mutex::new(Attempts::default()),
            ttl: Duration::from_secs(config.session_ttl_secs),
            per_account_max: config.sessions_per_account_max,
            max: config.sessions_max,
            lockout_attempts: config.login_failures_before_lockout,
            lockout: Duration::from_secs(config.lockout_secs),
        }
    }

    /// Makes a session for `account` (with a CSRF token when `cookie`), ending the account's
    /// oldest when it holds `sessions_per_account_max`, and the node's oldest at `sessions_max`.
    pub fn create(&self, account: &Address, cookie: bool) -> NewSession {
        let token = random_token();
        let csrf = cookie.then(random_token);
        let expires_at = date::now_secs() + self.ttl.as_secs() as i64;
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        while table.by_account.get(account).is_some_and(|keys| keys.len() >= self.per_account_max) {
            let oldest = table.by_account[account][0];
            table.remove(&oldest);
        }
        while table.by_key.len() >= self.max {
            let Some((_, oldest)) = table.by_age.pop_first() else { break };
            table.remove(&oldest);
        }
        let key = key_of(&token);
        let serial = table.next_serial;
        table.next_serial += 1;
        table.by_age.insert(serial, key);
        table.by_account.entry(account.clone()).or_default().push_back(key);
        let record = Record {
            account: account.clone(),
            csrf: csrf.clone(),
            expires: Instant::now() + self.ttl,
            expires_at,
            serial,
        };
        table.by_key.insert(key, record);
        NewSession { token, csrf, expires_at }
    }

    /// The live session a token stands for (an expired one is ended here).
    pub fn find(&self, token: &str) -> Option<SessionView> {
        let key = key_of(token);
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let record = table.by_key.get(&key)?;
        if record.expires <= Instant::now() {
            table.remove(&key);
            return None;
        }
        Some(SessionView { account: record.account.clone(), csrf: record.csrf.clone(), expires_at: record.expires_at })
    }

    /// Ends the session of `token`, if any.
    pub fn end(&self, token: &str) {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).remove(&key_of(token));
    }

    /// Ends every session of `account` (a password change) and moves the account to its next
    /// generation; returns how many sessions there were.
    pub fn end_account(&self, account: &Address) -> usize {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        *table.generations.entry(account.clone()).or_default() += 1;
        let keys: Vec<TokenKey> =
            table.by_account.get(account).map(|k| k.iter().copied().collect()).unwrap_or_default();
        for key in &keys {
            table.remove(key);
        }
        keys.len()
    }

    /// Sessions held now (expired ones not yet noticed included).
    pub fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).by_key.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts a login attempt for the account `key` ([`login_key`]) from `ip`, counting it before
    /// the password is checked (so parallel attempts count too); or, when the account has had
    /// `login_failures_before_lockout` unsuccessful attempts within `lockout_secs` (or the client,
    /// ten times as many), the seconds until it may try again.
    pub fn begin_login(&self, key: &str, ip: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let key = key.to_ascii_lowercase();
        let client = super::client_key(ip);
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        // The client's budget first: a locked-out client spends none of the account's.
        if let Some(secs) =
            attempts.by_client.over(&client, self.lockout_attempts.saturating_mul(10), self.lockout, now)
        {
            return Err(secs);
        }
        attempts.by_client.bump(client, self.lockout, now);
        if let Some(secs) = attempts.by_account.over(&key, self.lockout_attempts, self.lockout, now) {
            return Err(secs);
        }
        attempts.by_account.bump(key, self.lockout, now);
        Ok(())
    }

    /// A login of the account `key` from `ip` succeeded: its attempts are forgotten, and this one
    /// no longer counts against the client.
    pub fn login_ok(&self, key: &str, ip: IpAddr) {
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        attempts.by_account.remove(&key.to_ascii_lowercase());
        attempts.by_client.unbump(&super::client_key(ip));
    }

    /// Forgets the attempts of the account `key` (a password reset).
    pub fn login_succeeded(&self, key: &str) {
        self.attempts.lock().unwrap_or_else(|e| e.into_inner()).by_account.remove(&key.to_ascii_lowercase());
    }

    /// The account's generation: it changes whenever [`Sessions::end_account`] ends its sessions,
    /// so a login that checked a password before that can tell ([`Sessions::create_at`]), and so
    /// can a WebSocket logged in with a password.
    pub fn generation(&self, account: &Address) -> u64 {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).generations.get(account).copied().unwrap_or(0)
    }

    /// [`Sessions::create`], unless the account's sessions were ended since `generation` was read
    /// (a password reset raced the login): then `None`.
    pub fn create_at(&self, account: &Address, cookie: bool, generation: u64) -> Option<NewSession> {
        if self.generation(account) != generation {
            return None;
        }
        let new = self.create(account, cookie);
        if self.generation(account) != generation {
            self.end(&new.token);
            return None;
        }
        Some(new)
    }
}

/// The key a login's attempts count under: the canonical address of the account `user` names
/// (however it is spelled: bare local part, alias, quoting, case), or else `user` itself.
pub async fn login_key(web: &Web, user: &str) -> String {
    match web.directory.find_login(user).await {
        Ok(Some(account)) => account.address.to_string(),
        _ => user.to_ascii_lowercase(),
    }
}

/// How a request was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// The session cookie (changing requests carried the CSRF token).
    Cookie,
    /// `Authorization: Bearer`.
    Bearer,
}

/// The account a request acts for: from `Authorization: Bearer <token>`, or else from the
/// session cookie, in which case a request other than `GET`/`HEAD`/`OPTIONS` must carry the
/// session's CSRF token in `X-CSRF-Token`. Refusals: `401 unauthenticated` (no session, or an
/// expired or ended one), `403 csrf`.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The account.
    pub account: Address,
    /// The session.
    pub session: SessionView,
    /// How.
    pub credential: Credential,
    /// The token (for logout).
    token: String,
}

/// The session token a request carries, and how.
fn token_of(headers: &HeaderMap) -> Option<(String, Credential)> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| (token.trim().to_owned(), Credential::Bearer));
    }
    cookie(headers, COOKIE).map(|token| (token, Credential::Cookie))
}

/// The value of cookie `name` in the request's `Cookie` fields (RFC 6265 §5.4).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

impl FromRequestParts<Arc<Web>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, web: &Arc<Web>) -> Result<Authenticated, ApiError> {
        let unauthenticated = || ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "log in first");
        let (token, credential) = token_of(&parts.headers).ok_or_else(unauthenticated)?;
        let session = web.sessions.find(&token).ok_or_else(unauthenticated)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if credential == Credential::Cookie && !safe {
            let given = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            let expected = session.csrf.as_deref().unwrap_or("");
            if expected.is_empty() || !constant_time_eq(given, expected) {
                return Err(ApiError::new(StatusCode::FORBIDDEN, "csrf", "missing or wrong X-CSRF-Token"));
            }
        }
        Ok(Authenticated { account: session.account.clone(), session, credential, token })
    }
}

/// How the client wants its session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionMode {
    /// A `tidings_session` cookie and a CSRF token (browsers).
    #[default]
    Cookie,
    /// A bearer token (API clients).
    Token,
}

/// `POST /api/v1/session`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// An address, or a bare local part where that names one account.
    pub user: String,
    /// The password.
    pub password: String,
    /// `cookie` (default) or `token`.
    #[serde(default)]
    pub mode: SessionMode,
}

/// Where to reach chat.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatEndpoint {
    /// The WebSocket chat API (docs/chat-api.md) on the node to use: `ws://host:port/ws` or `wss://…`.
    pub websocket: String,
}

/// A session, as login and `GET /api/v1/session` describe it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// The account's canonical address.
    pub account: String,
    /// When the session ends, Unix seconds.
    pub expires_at: i64,
    /// The token to send in `X-CSRF-Token` (cookie sessions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    /// The bearer token (token sessions; given once, at login).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Where chat is.
    pub chat: ChatEndpoint,
}

/// The WebSocket URL of this node as the client reached it (its `Host` field), `ws` or `wss` by
/// the connection.
pub fn chat_endpoint(headers: &HeaderMap, tls: bool) -> ChatEndpoint {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)))
        .unwrap_or("localhost");
    ChatEndpoint { websocket: format!("{}://{host}/ws", if tls { "wss" } else { "ws" }) }
}

fn session_cookie(token: &str, max_age: i64, tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    let value = format!("{COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
    HeaderValue::from_str(&value).expect("a cookie of token characters")
}

/// Logs in: a cookie session (the cookie, and a CSRF token in the answer) or a token session (a
/// bearer token in the answer). A password is refused over a plaintext connection from outside
/// `[auth] plaintext`. Failures cost `[auth] failure_delay_ms`; too many lock the account (and a
/// spraying IP) out for `[web] lockout_secs`.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = SessionInfo),
        (status = 400, description = "Not a login request", body = ErrorBody),
        (status = 401, description = "Wrong user or password", body = ErrorBody),
        (status = 403, description = "A password over plaintext from a non-local address", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 429, description = "Locked out for now", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn login(
    State(web): State<Arc<Web>>,
    Extension(conn): Extension<Arc<ConnInfo>>,
    headers: HeaderMap,
    Body(request): Body<LoginRequest>,
) -> Result<Response, ApiError> {
    if !web.password_allowed(conn.peer.ip(), conn.tls) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "log in over TLS (https)"));
    }
    if request.user.len() > USER_BYTES_MAX || request.password.len() > password::PASSWORD_BYTES_MAX {
        return Err(ApiError::bad_request(format!(
            "a user name has at most {USER_BYTES_MAX} octets and a password at most {}",
            password::PASSWORD_BYTES_MAX
        )));
    }
    let ip = conn.peer.ip();
    let key = login_key(&web, &request.user).await;
    if let Err(secs) = web.sessions.begin_login(&key, ip) {
        info!(peer = %conn.peer, user = key, "web: login refused, locked out");
        return Err(ApiError::rate_limited("too many failed logins; try again later", secs));
    }
    let generation = Address::parse(&key, false).map_or(0, |account| web.sessions.generation(&account));
    let account = match web.directory.authenticate(&request.user, &request.password).await {
        Ok(account) => account,
        Err(LoginError::Invalid) => {
            info!(peer = %conn.peer, user = key, "web: login failed");
            tokio::time::sleep(web.auth_failure_delay).await;
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong user or password"));
        }
        Err(LoginError::Unavailable(e)) => {
            warn!(error = %e, "web: cannot check credentials");
            return Err(ApiError::unavailable(&e));
        }
    };
    web.sessions.login_ok(&key, ip);
    let cookie = request.mode == SessionMode::Cookie;
    let Some(new) = web.sessions.create_at(&account.address, cookie, generation) else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "the password has just changed"));
    };
    info!(peer = %conn.peer, account = %account.address, mode = ?request.mode, "web: logged in");
    let info = SessionInfo {
        account: account.address.to_string(),
        expires_at: new.expires_at,
        csrf_token: new.csrf.clone(),
        token: (!cookie).then(|| new.token.clone()),
        chat: chat_endpoint(&headers, conn.tls),
    };
    let mut response = axum::Json(info).into_response();
    if cookie {
        let max_age = web.config.session_ttl_secs as i64;
        response.headers_mut().insert(header::SET_COOKIE, session_cookie(&new.token, max_age, conn.tls));
    }
    Ok(response)
}

/// The current session (for a cookie session, with its CSRF token: a reloaded page gets it here).
#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    security(("session_cookie" = []), ("bearer_token" = [])),
    responses(
        (status = 200, description = "The session", body = SessionInfo),
        (status = 401, description = "No session", body = ErrorBody),
    ))]
pub async fn current(
    auth: Authenticated,
    Extension(conn): Extension<Arc<ConnInfo>>,
    headers: HeaderMap,
) -> axum::Json<SessionInfo> {
    axum::Json(SessionInfo {
        account: auth.account.to_string(),
        expires_at: auth.session.expires_at,
        csrf_token: auth.session.csrf.clone(),
        token: None,
        chat: chat_endpoint(&headers, conn.tls),
    })
}

/// Logs out: ends the session and clears the cookie.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    security(("session_cookie" = []), ("bearer_token" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 403, description = "A cookie session without its CSRF token", body = ErrorBody),
    ))]
pub async fn logout(
    State(web): State<Arc<Web>>,
    Extension(conn): Extension<Arc<ConnInfo>>,
    auth: Authenticated,
) -> Response {
    web.sessions.end(&auth.token);
    let mut response = StatusCode::NO_CONTENT.into_response();
    if auth.credential == Credential::Cookie {
        response.headers_mut().insert(header::SET_COOKIE, session_cookie("", 0, conn.tls));
    }
    response
}

/// The session endpoints' document.
#[derive(OpenApi)]
#[openapi(paths(login, current, logout))]
pub struct AuthApi;

/// `/session`.
pub fn routes() -> Router<Arc<Web>> {
    Router::new().route("/session", post(login).get(current).delete(logout))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(per_account: usize, max: usize) -> Sessions {
        Sessions::new(&HttpConfig { sessions_per_account_max: per_account, sessions_max: max, ..HttpConfig::default() })
    }

    #[test]
    fn a_session_is_found_by_its_token_only_until_it_ends() {
        let s = sessions(4, 10);
        let alice = Address::from_parts("alice", "example.org");
        let new = s.create(&alice, true);
        let view = s.find(&new.token).unwrap();
        assert_eq!(view.account, alice);
        assert_eq!(view.csrf, new.csrf);
        assert!(s.find("not-a-token").is_none());
        s.end(&new.token);
        assert!(s.find(&new.token).is_none());
        assert!(s.is_empty());
    }

    #[test]
    fn the_oldest_sessions_give_way_per_account_and_per_node() {
        let s = sessions(2, 3);
        let alice = Address::from_parts("alice", "example.org");
        let bob = Address::from_parts("bob", "example.org");
        let a1 = s.create(&alice, false);
        let a2 = s.create(&alice, false);
        let a3 = s.create(&alice, false);
        assert!(s.find(&a1.token).is_none(), "the account's oldest went");
        assert!(s.find(&a2.token).is_some() && s.find(&a3.token).is_some());
        let b1 = s.create(&bob, false);
        let b2 = s.create(&bob, false);
        assert_eq!(s.len(), 3);
        assert!(s.find(&a2.token).is_none(), "the node's oldest went");
        assert!(s.find(&b1.token).is_some() && s.find(&b2.token).is_some());
        assert_eq!(s.end_account(&bob), 2);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn attempts_lock_an_account_out_before_they_are_checked_and_success_forgets_them() {
        let s = Sessions::new(&HttpConfig { login_failures_before_lockout: 3, ..HttpConfig::default() });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(s.begin_login("Alice@example.org", ip), Ok(()));
        }
        assert!(s.begin_login("alice@EXAMPLE.org", ip).is_err(), "three attempts in flight are the limit");
        assert_eq!(s.begin_login("bob@example.org", ip), Ok(()), "the client is not over ten times the limit");
        s.login_ok("alice@example.org", ip);
        assert_eq!(s.begin_login("alice@example.org", ip), Ok(()));
    }

    #[test]
    fn a_client_is_locked_out_after_ten_times_the_limit_and_ipv6_counts_per_64() {
        let s = Sessions::new(&HttpConfig { login_failures_before_lockout: 1, ..HttpConfig::default() });
        for n in 0..10 {
            let ip: IpAddr = format!("2001:db8::{n:x}").parse().unwrap();
            assert_eq!(s.begin_login(&format!("user{n}"), ip), Ok(()));
        }
        let same_64: IpAddr = "2001:db8::ffff".parse().unwrap();
        assert!(s.begin_login("someone-else", same_64).is_err());
        let other_64: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        assert_eq!(s.begin_login("someone-else", other_64), Ok(()));
    }

    #[test]
    fn ending_an_accounts_sessions_voids_logins_checked_before() {
        let s = sessions(4, 10);
        let alice = Address::from_parts("alice", "example.org");
        let generation = s.generation(&alice);
        assert!(s.create_at(&alice, true, generation).is_some());
        s.end_account(&alice);
        assert!(s.create_at(&alice, true, generation).is_none());
        assert!(s.create_at(&alice, true, s.generation(&alice)).is_some());
    }

    #[test]
    fn cookies_are_read_from_every_cookie_field() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; tidings_session=xyz"));
        assert_eq!(cookie(&headers, COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "a").as_deref(), Some("1"));
        assert_eq!(cookie(&headers, "b"), None);
        assert!(constant_time_eq("abc", "abc") && !constant_time_eq("abc", "abd") && !constant_time_eq("a", "ab"));
    }
}
