//! Accounts (docs/web-api.md): emailed verification codes, registration, existence checks and
//! password resets.
//!
//! A verification code is six random decimal digits, sent by mail ([`crate::outbound`]) and kept
//! here only as an HMAC-SHA256 (with a key drawn at start-up, so the table is useless to anyone
//! who reads memory after a restart) bound to what it was sent for: an email address for
//! sign-up, an account for a password reset. A code lives [`CODE_TTL`], works once, and after
//! [`CODE_TRIES_MAX`] wrong tries it is void. Requests for codes are limited per address and per
//! client IP (`[web] codes_per_address`, `codes_per_ip` within `code_window_secs`); existence
//! checks per client IP (`exists_checks_per_ip`). Everything lives in memory, bounded.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use ring::hmac;
use serde::{Deserialize, Serialize};
use tidings_client::mime::{self, Draft, Mailbox};
use tidings_core::{Address, date, password};
use tidings_store::{AccountError, StoreError};
use tracing::{info, warn};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::{ApiError, Body, ErrorBody, Params};
use crate::{ConnInfo, HttpConfig, Web, outbound};

/// How long a verification code works after it is sent: 10 minutes.
pub const CODE_TTL: Duration = Duration::from_secs(600);
/// Wrong tries after which a code is void.
pub const CODE_TRIES_MAX: u32 = 5;
/// Digits in a code.
pub const CODE_DIGITS: usize = 6;
/// Most entries each rate-limit table keeps; past it, entries whose window has passed are
/// dropped, and if none has, the table is cleared (memory stays bounded under a spray of names).
const LIMIT_ENTRIES_MAX: usize = 100_000;

/// What a code was sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Proving control of an email address at sign-up (the subject is the address).
    Signup,
    /// Resetting an account's password (the subject is the account).
    Reset,
}

/// A code waiting to be used.
#[derive(Debug, Clone)]
struct Pending {
    tag: hmac::Tag,
    expires: Instant,
    tries_left: u32,
}

/// Requests counted per key over a window.
struct Counter<K> {
    entries: HashMap<K, (Instant, u32)>,
}

impl<K: Hash + Eq> Counter<K> {
    fn new() -> Counter<K> {
        Counter { entries: HashMap::new() }
    }

    /// Seconds until `key` may go again, if it has had `limit` within `window`.
    fn over(&self, key: &K, limit: u32, window: Duration, now: Instant) -> Option<u64> {
        let (since, count) = self.entries.get(key)?;
        let end = *since + window;
        (*count >= limit && now < end).then(|| end.saturating_duration_since(now).as_secs().max(1))
    }

    fn bump(&mut self, key: K, window: Duration, now: Instant) {
        if self.entries.len() >= LIMIT_ENTRIES_MAX {
            self.entries.retain(|_, (since, _)| now < *since + window);
            if self.entries.len() >= LIMIT_ENTRIES_MAX {
                self.entries.clear();
            }
        }
        let entry = self.entries.entry(key).or_insert((now, 0));
        if now >= entry.0 + window {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

struct Table {
    codes: HashMap<(Purpose, String), Pending>,
    per_address: Counter<String>,
    per_ip: Counter<IpAddr>,
    exists_per_ip: Counter<IpAddr>,
}

/// Why a code was not accepted. One answer for a wrong, expired, used, voided or never-sent
/// code, so that it says nothing about which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCode;

/// The node's verification codes and the limits on asking for them (in memory).
pub struct Codes {
    key: hmac::Key,
    table: Mutex<Table>,
    per_address: u32,
    per_ip: u32,
    exists_per_ip: u32,
    window: Duration,
    max: usize,
}

impl Codes {
    /// Empty, with `[web]`'s limits and a fresh random HMAC key.
    pub fn new(config: &HttpConfig) -> Codes {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source");
        Codes {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            table: Mutex::new(Table {
                codes: HashMap::new(),
                per_address: Counter::new(),
                per_ip: Counter::new(),
                exists_per_ip: Counter::new(),
            }),
            per_address: config.codes_per_address,
            per_ip: config.codes_per_ip,
            exists_per_ip: config.exists_checks_per_ip,
            window: Duration::from_secs(config.code_window_secs),
            max: config.codes_max,
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a request for a code to `address` (lower-cased) from `ip`, unless either is over
    /// its limit: then the seconds until it may ask again.
    ///
    /// # Errors
    /// The `Retry-After` seconds when over a limit (nothing is counted then).
    pub fn limit_request(&self, address: &str, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let address = address.to_lowercase();
        let mut table = self.table();
        if let Some(secs) = table.per_address.over(&address, self.per_address, self.window, now) {
            return Err(secs);
        }
        if let Some(secs) = table.per_ip.over(&ip, self.per_ip, self.window, now) {
            return Err(secs);
        }
        table.per_address.bump(address, self.window, now);
        table.per_ip.bump(ip, self.window, now);
        Ok(())
    }

    /// Counts an existence check from `ip`, unless it is over `exists_checks_per_ip`.
    ///
    /// # Errors
    /// The `Retry-After` seconds when over the limit.
    pub fn limit_exists(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let mut table = self.table();
        if let Some(secs) = table.exists_per_ip.over(&ip, self.exists_per_ip, self.window, now) {
            return Err(secs);
        }
        table.exists_per_ip.bump(ip, self.window, now);
        Ok(())
    }

    fn tag(&self, purpose: Purpose, subject: &str, code: &str) -> hmac::Tag {
        hmac::sign(&self.key, &message(purpose, subject, code))
    }

    /// Makes a new code for `subject` (lower-cased), replacing any earlier one, valid until
    /// `now + CODE_TTL`.
    ///
    /// # Errors
    /// When `[web] codes_max` codes are outstanding: the seconds until the oldest expires.
    pub fn issue(&self, purpose: Purpose, subject: &str, now: Instant) -> Result<String, u64> {
        let subject = subject.to_lowercase();
        let mut table = self.table();
        let key = (purpose, subject);
        if !table.codes.contains_key(&key) && table.codes.len() >= self.max {
            table.codes.retain(|_, p| now < p.expires);
            if table.codes.len() >= self.max {
                let first = table.codes.values().map(|p| p.expires).min().unwrap_or(now);
                return Err(first.saturating_duration_since(now).as_secs().max(1));
            }
        }
        let code = random_code();
        let tag = self.tag(purpose, &key.1, &code);
        table.codes.insert(key, Pending { tag, expires: now + CODE_TTL, tries_left: CODE_TRIES_MAX });
        Ok(code)
    }

    /// Forgets `subject`'s code (one that could not be sent).
    pub fn revoke(&self, purpose: Purpose, subject: &str) {
        self.table().codes.remove(&(purpose, subject.to_lowercase()));
    }

    /// Checks `code` for `subject` in constant time and, when it is right and live, uses it up
    /// (the returned [`Spent`] can give it back if what it was for then fails). A wrong code
    /// costs one of its tries; at [`CODE_TRIES_MAX`] the code is void.
    ///
    /// # Errors
    /// [`InvalidCode`] for a wrong, expired, used, voided or unknown code.
    pub fn take(&self, purpose: Purpose, subject: &str, code: &str, now: Instant) -> Result<Spent, InvalidCode> {
        let subject = subject.to_lowercase();
        let mut table = self.table();
        let key = (purpose, subject);
        let Some(pending) = table.codes.get_mut(&key) else { return Err(InvalidCode) };
        if now >= pending.expires {
            table.codes.remove(&key);
            return Err(InvalidCode);
        }
        let well_formed = code.len() == CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit());
        let right =
            well_formed && hmac::verify(&self.key, &message(purpose, &key.1, code), pending.tag.as_ref()).is_ok();
        if !right {
            pending.tries_left = pending.tries_left.saturating_sub(1);
            if pending.tries_left == 0 {
                table.codes.remove(&key);
            }
            return Err(InvalidCode);
        }
        let pending = table.codes.remove(&key).expect("found above");
        Ok(Spent { purpose, subject: key.1, pending })
    }

    /// Puts a code taken with [`Codes::take`] back (registration failed for another reason), unless
    /// a newer code has been issued meanwhile.
    pub fn give_back(&self, spent: Spent) {
        let mut table = self.table();
        table.codes.entry((spent.purpose, spent.subject)).or_insert(spent.pending);
    }

    /// Codes held now (expired ones not yet noticed included).
    pub fn len(&self) -> usize {
        self.table().codes.len()
    }

    /// Whether no code is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A code that was right and is used up.
#[derive(Debug)]
pub struct Spent {
    purpose: Purpose,
    subject: String,
    pending: Pending,
}

/// What the HMAC covers: the purpose, the subject and the code, so that a code is good only for
/// what it was sent for.
fn message(purpose: Purpose, subject: &str, code: &str) -> Vec<u8> {
    let tag: &[u8] = match purpose {
        Purpose::Signup => b"signup\0",
        Purpose::Reset => b"reset\0",
    };
    [tag, subject.as_bytes(), b"\0", code.as_bytes()].concat()
}

/// Six uniformly random decimal digits (rejection sampling, so no digit string is likelier).
fn random_code() -> String {
    const RANGE: u32 = 1_000_000;
    // The largest multiple of RANGE that fits: values at or above it are drawn again.
    let limit = u32::MAX - u32::MAX % RANGE;
    loop {
        let mut octets = [0u8; 4];
        getrandom::fill(&mut octets).expect("the operating system's random source");
        let n = u32::from_le_bytes(octets);
        if n < limit {
            return format!("{:06}", n % RANGE);
        }
    }
}

/// The code mail: an RFC 5322 message from `postmaster@domain`, `text/plain; charset=utf-8`, with
/// the code on a line of its own.
fn code_message(domain: &str, to: &Address, code: &str, purpose: Purpose, now_ms: i64) -> Vec<u8> {
    let (subject, what) = match purpose {
        Purpose::Signup => ("Your tidings verification code", "Your verification code for a new tidings account is:"),
        Purpose::Reset => {
            ("Your tidings password reset code", "The code to reset the password of your tidings account is:")
        }
    };
    let minutes = CODE_TTL.as_secs() / 60;
    let body = format!(
        "{what}\n\n{code}\n\nIt works once, within {minutes} minutes.\n\
         If you did not ask for it, you can ignore this message.\n"
    );
    let draft = Draft {
        from: Mailbox { name: Some("tidings".into()), address: Address::from_parts("postmaster", domain) },
        to: vec![Mailbox { name: None, address: to.clone() }],
        subject: subject.into(),
        body,
        ..Draft::default()
    };
    mime::build(&draft, now_ms / 1000, &mime::message_id(domain, now_ms))
}

/// The domain code mail comes from: the recipient's own domain when it is local, else the
/// sign-up domain, else the node's host name.
async fn sender_domain(web: &Web, to: &Address) -> String {
    if web.directory.is_local_domain(to.domain()).await.unwrap_or(false) {
        return web.directory.canonical(to).domain().to_owned();
    }
    if web.config.signup_domain.is_empty() { web.hostname.clone() } else { web.config.signup_domain.clone() }
}

/// Sends a code by mail, from `postmaster@…` with the null reverse-path: it is automated mail
/// that nobody should answer, and a code for a mistyped address then bounces to no one
/// (RFC 5321 §4.5.5).
async fn send_code(web: &Web, to: &Address, code: &str, purpose: Purpose) -> Result<(), outbound::SendError> {
    let domain = sender_domain(web, to).await;
    let message = code_message(&domain, to, code, purpose, date::now_millis());
    outbound::send(web, None, std::slice::from_ref(to), Bytes::from(message)).await?;
    Ok(())
}

fn parse_email(text: &str) -> Result<Address, ApiError> {
    Address::parse(text.trim(), true)
        .map_err(|e| ApiError::bad_request(format!("{text:?} is not an email address: {e}")))
}

fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", message)
}

fn invalid_code() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "invalid_code", "the code is wrong, used up or expired; ask for a new one")
}

/// An account name as given: a full address (aliases applied), or a bare local part in
/// `[web] signup_domain`.
fn account_address(web: &Web, text: &str) -> Result<Address, ApiError> {
    let text = text.trim();
    let full = if text.contains('@') {
        text.to_owned()
    } else if web.config.signup_domain.is_empty() {
        return Err(unprocessable("give a full address: this node has no sign-up domain"));
    } else {
        format!("{text}@{}", web.config.signup_domain)
    };
    let address =
        Address::parse(&full, true).map_err(|e| ApiError::bad_request(format!("{text:?} is not an address: {e}")))?;
    Ok(web.directory.canonical(&address))
}

fn check_plaintext(web: &Web, conn: &ConnInfo) -> Result<(), ApiError> {
    if !conn.tls && !web.plaintext_auth.allows(conn.peer.ip()) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "send passwords over TLS (https)"));
    }
    Ok(())
}

/// A new password: at least `[web] password_chars_min` characters, at most
/// [`password::PASSWORD_BYTES_MAX`] octets; else `422 weak_password`.
fn check_password(web: &Web, password: &str) -> Result<(), ApiError> {
    let min = web.config.password_chars_min;
    if password.chars().count() < min || password.len() > password::PASSWORD_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak_password",
            format!(
                "a password must have at least {min} characters and at most {} octets",
                password::PASSWORD_BYTES_MAX
            ),
        ));
    }
    Ok(())
}

fn signup_open(web: &Web) -> Result<(), ApiError> {
    if !web.config.signup {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "sign-up is closed on this node"));
    }
    Ok(())
}

/// `POST /api/v1/accounts/codes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// Where to send the code; it becomes the new account's recovery address.
    pub email: String,
}

/// A code is on its way.
#[derive(Debug, Serialize, ToSchema)]
pub struct CodeSent {
    /// The address it was sent to (canonical form).
    pub sent_to: String,
    /// Seconds the code works for (600).
    pub expires_in_secs: u64,
}

/// Sends a six-digit verification code to `email` for sign-up: into the INBOX of a local
/// account, or through `[outbound] smarthost` to any other address. Asking again replaces the
/// earlier code.
#[utoipa::path(post, path = "/api/v1/accounts/codes", tag = "accounts", request_body = CodeRequest,
    responses(
        (status = 202, description = "The code was sent", body = CodeSent),
        (status = 400, description = "Not an email address", body = ErrorBody),
        (status = 403, description = "Sign-up is closed", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "The address cannot be mailed (unknown local user, or no smarthost for other domains)", body = ErrorBody),
        (status = 429, description = "Too many codes for this address or from this client", body = ErrorBody),
        (status = 502, description = "The smarthost refused the mail or did not answer", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn request_code(
    State(web): State<Arc<Web>>,
    Extension(conn): Extension<Arc<ConnInfo>>,
    Body(request): Body<CodeRequest>,
) -> Result<Response, ApiError> {
    signup_open(&web)?;
    let email = parse_email(&request.email)?;
    let subject = email.to_string();
    web.codes
        .limit_request(&subject, conn.peer.ip(), Instant::now())
        .map_err(|secs| ApiError::rate_limited("too many codes asked for; try again later", secs))?;
    let code = web
        .codes
        .issue(Purpose::Signup, &subject, Instant::now())
        .map_err(|secs| ApiError::rate_limited("too many codes outstanding; try again later", secs))?;
    if let Err(e) = send_code(&web, &email, &code, Purpose::Signup).await {
        web.codes.revoke(Purpose::Signup, &subject);
        return Err(e.into());
    }
    info!(peer = %conn.peer, email = %email, "api: sign-up code sent");
    let body = CodeSent { sent_to: subject, expires_in_secs: CODE_TTL.as_secs() };
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

/// `POST /api/v1/accounts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The new account: a full address in a local domain, or a local part (in the sign-up domain).
    pub address: String,
    /// Its password (1 to 1,024 octets).
    pub password: String,
    /// The address the code was sent to; it becomes the recovery address.
    pub email: String,
    /// The six-digit code.
    pub code: String,
}

/// An account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountCreated {
    /// Its canonical address.
    pub address: String,
}

/// Creates an account, given the code sent to `email`, which becomes the account's recovery
/// address. The code is used up only when the account is made. A password over plaintext from
/// outside `[auth] plaintext` is refused.
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = RegisterRequest,
    responses(
        (status = 201, description = "The account exists", body = AccountCreated),
        (status = 400, description = "Not a registration request, or a malformed address", body = ErrorBody),
        (status = 403, description = "Wrong, used or expired code (invalid_code); sign-up closed or a password over plaintext (forbidden)", body = ErrorBody),
        (status = 409, description = "The address is taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Not a local domain, or an unusable password", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn register(
    State(web): State<Arc<Web>>,
    Extension(conn): Extension<Arc<ConnInfo>>,
    Body(request): Body<RegisterRequest>,
) -> Result<Response, ApiError> {
    signup_open(&web)?;
    check_plaintext(&web, &conn)?;
    let address = account_address(&web, &request.address)?;
    let email = parse_email(&request.email)?;
    check_password(&web, &request.password)?;
    if !web.directory.is_local_domain(address.domain()).await? {
        return Err(unprocessable(format!("{} is not a domain of this node", address.domain())));
    }
    let exists = || ApiError::new(StatusCode::CONFLICT, "exists", format!("{address} is taken"));
    if web.directory.store().account(&address).await?.is_some() {
        return Err(exists());
    }
    let spent = web
        .codes
        .take(Purpose::Signup, &email.to_string(), &request.code, Instant::now())
        .map_err(|InvalidCode| invalid_code())?;
    match web.directory.create_account(&address, &request.password).await {
        Ok(()) => {}
        Err(e) => {
            web.codes.give_back(spent);
            return Err(match e {
                AccountError::Store(StoreError::AccountExists(_)) => exists(),
                AccountError::Password(e) => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "weak_password", e.to_string())
                }
                AccountError::Store(e) => ApiError::unavailable(&e),
            });
        }
    }
    if let Err(e) = web.directory.set_recovery_address(&address, Some(&email)).await {
        // The account exists; only its recovery address is missing (`tidings account recovery`).
        warn!(account = %address, error = %e, "api: cannot set the new account's recovery address");
    }
    info!(peer = %conn.peer, account = %address, "api: account created");
    Ok((StatusCode::CREATED, axum::Json(AccountCreated { address: address.to_string() })).into_response())
}

/// `GET /api/v1/accounts/exists`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExistsQuery {
    /// A full address, or a local part (in the sign-up domain).
    pub address: String,
}

/// Whether an address is taken.
#[derive(Debug, Serialize, ToSchema)]
pub struct Existence {
    /// The address asked about (canonical form).
    pub address: String,
    /// Whether it names an account of this node.
    pub exists: bool,
}

/// Whether an account exists (for a sign-up form). Limited per client IP.
#[utoipa::path(get, path = "/api/v1/accounts/exists", tag = "accounts", params(ExistsQuery),
    responses(
        (status = 200, description = "The answer", body = Existence),
        (status = 400, description = "No address, or a malformed one", body = ErrorBody),
        (status = 422, description = "A local part, and this node has no sign-up domain", body = ErrorBody),
        (status = 429, description = "Too many checks from this client", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn exists(
    State(web): State<Arc<Web>>,
    Extension(conn): Extension<Arc<ConnInfo>>,
    Params(query): Params<ExistsQuery>,
) -> Result<axum::Json<Existence>, ApiError> {
    web.codes
        .limit_exists(conn.peer.ip(), Instant::now())
        .map_err(|secs| ApiError::rate_limited("too many checks; try again later", secs))?;
    let address = account_address(&web, &query.address)?;
    let exists = web.directory.store().account(&address).await?.is_some();
    Ok(axum::Json(Existence { address: address.to_string(), exists }))
}

/// `POST /api/v1/accounts/password-reset/code`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetCodeRequest {
    /// The account: a full address, or a local part (in the sign-up domain).
    pub address: String,
}

/// The answer to a reset-code request, the same whether or not the account exists.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetCodeAccepted {
    /// Seconds a code, if one was sent, works for (600).
    pub expires_in_secs: u64,
}

/// Sends a password-reset code to the account's recovery address, if the account exists and has
/// one. The answer is the same either way (it says nothing about the account), and the mail is
/// sent after it.
#[utoipa::path(post, path = "/api/v1/accounts/password-reset/code", tag = "accounts", request_body = ResetCodeRequest,
    responses(
        (status = 202, description = "A code is on its way if the account has a recovery address", body = ResetCodeAccepted),
        (status = 400, description = "Not a request, or a malformed address", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A local part, and this node has no sign-up domain", body = ErrorBody),
        (status = 429, description = "Too many codes for this account or from this client", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn request_reset_code(
    State(web): State<Arc<Web>>,
    Extension(conn): Extension<Arc<ConnInfo>>,
    Body(request): Body<ResetCodeRequest>,
) -> Result<Response, ApiError> {
    let address = account_address(&web, &request.address)?;
    web.codes
        .limit_request(&format!("reset:{address}"), conn.peer.ip(), Instant::now())
        .map_err(|secs| ApiError::rate_limited("too many codes asked for; try again later", secs))?;
    let recovery = web.directory.store().account(&address).await?.and_then(|a| a.recovery);
    if let Some(recovery) = recovery {
        let subject = address.to_string();
        // A full table is not told to the client either: that would say the account exists.
        let Ok(code) = web.codes.issue(Purpose::Reset, &subject, Instant::now()) else {
            warn!(account = %address, "api: too many codes outstanding; no password reset code sent");
            return Ok(reset_code_accepted());
        };
        let web = Arc::clone(&web);
        // Sent after the answer, so that neither its time nor its failure tells whether the
        // account exists. outbound::send is bounded by its own timeouts.
        tokio::spawn(async move {
            match send_code(&web, &recovery, &code, Purpose::Reset).await {
                Ok(()) => info!(account = %address, "api: password reset code sent"),
                Err(e) => {
                    web.codes.revoke(Purpose::Reset, &subject);
                    warn!(account = %address, error = %e, "api: cannot send a password reset code");
                }
            }
        });
    }
    Ok(reset_code_accepted())
}

fn reset_code_accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(ResetCodeAccepted { expires_in_secs: CODE_TTL.as_secs() })).into_response()
}

/// `POST /api/v1/accounts/password-reset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The account: a full address, or a local part (in the sign-up domain).
    pub address: String,
    /// The six-digit code sent to its recovery address.
    pub code: String,
    /// The new password (1 to 1,024 octets).
    pub password: String,
}

/// Sets a new password with a reset code, and ends every session of the account. A password over
/// plaintext from outside `[auth] plaintext` is refused.
#[utoipa::path(post, path = "/api/v1/accounts/password-reset", tag = "accounts", request_body = ResetRequest,
    responses(
        (status = 204, description = "The password is set; the account's sessions are ended"),
        (status = 400, description = "Not a request, or a malformed address", body = ErrorBody),
        (status = 403, description = "Wrong, used or expired code (invalid_code), or a password over plaintext (forbidden)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "An unusable password, or a local part with no sign-up domain", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn reset_password(
    State(web): State<Arc<Web>>,
    Extension(conn): Extension<Arc<ConnInfo>>,
    Body(request): Body<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    check_plaintext(&web, &conn)?;
    let address = account_address(&web, &request.address)?;
    check_password(&web, &request.password)?;
    let spent = web
        .codes
        .take(Purpose::Reset, &address.to_string(), &request.code, Instant::now())
        .map_err(|InvalidCode| invalid_code())?;
    match web.directory.set_password(&address, &request.password).await {
        Ok(()) => {}
        Err(AccountError::Store(StoreError::NoSuchAccount(_))) => return Err(invalid_code()),
        Err(e) => {
            web.codes.give_back(spent);
            return Err(match e {
                AccountError::Password(e) => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "weak_password", e.to_string())
                }
                AccountError::Store(e) => ApiError::unavailable(&e),
            });
        }
    }
    let ended = web.sessions.end_account(&address);
    web.sessions.login_succeeded(&address.to_string());
    info!(peer = %conn.peer, account = %address, sessions_ended = ended, "api: password reset");
    Ok(StatusCode::NO_CONTENT)
}

/// The account endpoints' document.
#[derive(OpenApi)]
#[openapi(paths(request_code, register, exists, request_reset_code, reset_password))]
pub struct AccountsApi;

/// `/accounts/…`.
pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/accounts", post(register))
        .route("/accounts/codes", post(request_code))
        .route("/accounts/exists", get(exists))
        .route("/accounts/password-reset/code", post(request_reset_code))
        .route("/accounts/password-reset", post(reset_password))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(config: HttpConfig) -> Codes {
        Codes::new(&config)
    }

    #[test]
    fn a_code_works_once_for_its_subject_only() {
        let c = codes(HttpConfig::default());
        let now = Instant::now();
        let code = c.issue(Purpose::Signup, "Ann@Example.org", now).unwrap();
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert!(c.take(Purpose::Reset, "ann@example.org", &code, now).is_err(), "another purpose");
        assert!(c.take(Purpose::Signup, "bob@example.org", &code, now).is_err(), "another subject");
        assert!(c.take(Purpose::Signup, "ann@example.org", &code, now).is_ok());
        assert!(c.take(Purpose::Signup, "ann@example.org", &code, now).is_err(), "used up");
        assert!(c.is_empty());
    }

    #[test]
    fn a_code_given_back_works_again_but_not_over_a_newer_one() {
        let c = codes(HttpConfig::default());
        let now = Instant::now();
        let code = c.issue(Purpose::Signup, "ann@example.org", now).unwrap();
        let spent = c.take(Purpose::Signup, "ann@example.org", &code, now).unwrap();
        c.give_back(spent);
        let spent = c.take(Purpose::Signup, "ann@example.org", &code, now).unwrap();
        let newer = c.issue(Purpose::Signup, "ann@example.org", now).unwrap();
        c.give_back(spent);
        assert!(c.take(Purpose::Signup, "ann@example.org", &newer, now).is_ok());
    }

    #[test]
    fn a_code_expires_after_ten_minutes() {
        let c = codes(HttpConfig::default());
        let now = Instant::now();
        let code = c.issue(Purpose::Reset, "ann@example.org", now).unwrap();
        let late = now + CODE_TTL;
        assert_eq!(c.take(Purpose::Reset, "ann@example.org", &code, late).unwrap_err(), InvalidCode);
        let code = c.issue(Purpose::Reset, "ann@example.org", now).unwrap();
        assert!(c.take(Purpose::Reset, "ann@example.org", &code, late - Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn five_wrong_tries_void_a_code() {
        let c = codes(HttpConfig::default());
        let now = Instant::now();
        let code = c.issue(Purpose::Signup, "ann@example.org", now).unwrap();
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        for _ in 0..CODE_TRIES_MAX - 1 {
            assert!(c.take(Purpose::Signup, "ann@example.org", &wrong, now).is_err());
        }
        assert!(c.take(Purpose::Signup, "ann@example.org", "not a code", now).is_err());
        assert!(c.take(Purpose::Signup, "ann@example.org", &code, now).is_err(), "void after five wrong tries");
    }

    #[test]
    fn requests_are_limited_per_address_and_per_ip_within_the_window() {
        let config =
            HttpConfig { codes_per_address: 2, codes_per_ip: 3, code_window_secs: 60, ..HttpConfig::default() };
        let c = codes(config);
        let now = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(c.limit_request("ann@example.org", ip, now).is_ok());
        assert!(c.limit_request("ANN@example.org", other, now).is_ok());
        let secs = c.limit_request("ann@example.org", ip, now + Duration::from_secs(10)).unwrap_err();
        assert_eq!(secs, 50);
        assert!(c.limit_request("bob@example.org", ip, now).is_ok());
        assert!(c.limit_request("dee@example.org", ip, now).is_ok());
        assert!(c.limit_request("cy@example.org", ip, now).is_err(), "the IP had three");
        assert!(c.limit_request("cy@example.org", other, now).is_ok());
        let later = now + Duration::from_secs(60);
        assert!(c.limit_request("ann@example.org", ip, later).is_ok(), "a new window");
    }

    #[test]
    fn existence_checks_are_limited_per_ip() {
        let c = codes(HttpConfig { exists_checks_per_ip: 2, ..HttpConfig::default() });
        let now = Instant::now();
        let ip: IpAddr = "::1".parse().unwrap();
        assert!(c.limit_exists(ip, now).is_ok() && c.limit_exists(ip, now).is_ok());
        assert!(c.limit_exists(ip, now).is_err());
    }

    #[test]
    fn outstanding_codes_are_bounded() {
        let c = codes(HttpConfig { codes_max: 2, ..HttpConfig::default() });
        let now = Instant::now();
        c.issue(Purpose::Signup, "a@example.org", now).unwrap();
        c.issue(Purpose::Signup, "b@example.org", now).unwrap();
        assert!(c.issue(Purpose::Signup, "a@example.org", now).is_ok(), "a replacement is no new code");
        assert!(c.issue(Purpose::Signup, "c@example.org", now).is_err());
        assert!(c.issue(Purpose::Signup, "c@example.org", now + CODE_TTL).is_ok(), "expired ones make room");
    }

    #[test]
    fn the_code_mail_is_a_plain_text_message_with_the_code_on_its_own_line() {
        let to = Address::from_parts("ann", "example.org");
        let octets = code_message("mmsys.upenn.edu", &to, "012345", Purpose::Signup, 1_700_000_000_000);
        let text = String::from_utf8(octets).unwrap();
        for field in [
            "Date: ",
            "From: tidings <postmaster@mmsys.upenn.edu>\r\n",
            "To: ann@example.org\r\n",
            "Subject: Your tidings verification code\r\n",
            "Message-ID: <1700000000000.",
            "Content-Type: text/plain; charset=utf-8\r\n",
        ] {
            assert!(text.contains(field), "{field} in {text}");
        }
        assert!(text.contains("\r\n012345\r\n"));
    }
}
