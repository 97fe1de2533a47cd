//! Accounts (docs/web-api.md): emailed verification codes, registration, existence checks and
//! password resets.
//!
//! A verification code is six random decimal digits, sent by mail ([`crate::outbound`]) and kept
//! here only as an HMAC-SHA256 (with a key drawn at start-up, so the table is useless to anyone
//! who reads memory after a restart) bound to what it was sent for: an email address for
//! sign-up, an account for a password reset. A code lives [`CODE_TTL`], works once, and after
//! [`CODE_TRIES_MAX`] wrong tries it is void; a new code for the same subject inherits the tries
//! left of the one it replaces. Beyond that, a subject that has had [`SUBJECT_FAILURES_MAX`]
//! wrong codes within [`SUBJECT_FAILURE_WINDOW`] accepts none until that window passes, whatever
//! codes it is sent; and a client (IPv4 address or IPv6 /64, [`super::client_key`]) that gave
//! `[web] code_failures_per_ip` wrong codes within `code_window_secs` gets `429`.
//!
//! Requests for codes are limited per address and per client (`[web] codes_per_address`,
//! `codes_per_ip` within `code_window_secs`), codes sent outside the node's domains across the
//! node (`outside_codes_per_window`); existence checks per client (`exists_checks_per_ip`).
//! Everything lives in memory, bounded: a full limit table forgets its oldest entry.

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

use super::limit::Counter;
use super::{ApiError, Body, ErrorBody, Params, client_key};
use crate::{ConnInfo, HttpConfig, Web, outbound};

/// How long a verification code works after it is sent: 10 minutes.
pub const CODE_TTL: Duration = Duration::from_secs(600);
/// Wrong tries after which a code is void.
pub const CODE_TRIES_MAX: u32 = 5;
/// Digits in a code.
pub const CODE_DIGITS: usize = 6;
/// Wrong codes one subject (an email address at sign-up, an account for a reset) may be given
/// within [`SUBJECT_FAILURE_WINDOW`], across every code it is sent; past it, every code for it is
/// refused (as `invalid_code`) until the window passes.
pub const SUBJECT_FAILURES_MAX: u32 = 10;
/// The window of [`SUBJECT_FAILURES_MAX`]: 24 hours from the first wrong code.
pub const SUBJECT_FAILURE_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Local parts sign-up refuses (`422 reserved`): the role mailboxes of RFC 2142 §§4–5 that
/// matter for mail and abuse handling, the names certificate authorities accept as proof of
/// control of a domain (CA/Browser Forum Baseline Requirements §3.2.2.4.4: admin,
/// administrator, hostmaster, postmaster, webmaster), and system names.
pub const RESERVED_LOCAL_PARTS: &[&str] = &[
    "postmaster",
    "abuse",
    "hostmaster",
    "webmaster",
    "noc",
    "security",
    "admin",
    "administrator",
    "root",
    "mailer-daemon",
    "nobody",
];

/// Whether sign-up refuses `local_part` (compared without case and quotes).
pub fn is_reserved_local_part(local_part: &str) -> bool {
    let bare = local_part.trim_matches('"').to_lowercase();
    RESERVED_LOCAL_PARTS.contains(&bare.as_str())
}

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
    ticket: Ticket,
}

/// Which issue of a code this is: each [`Codes::issue`] makes a new one, so that undoing one issue
/// ([`Codes::revoke`]) cannot remove a later code for the same subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// A code just made, with its ticket.
#[derive(Debug)]
pub struct Issued {
    /// The six digits to send.
    pub code: String,
    /// What [`Codes::revoke`] takes to undo this issue.
    pub ticket: Ticket,
}

struct Table {
    codes: HashMap<(Purpose, String), Pending>,
    tickets: u64,
    per_address: Counter<String>,
    per_ip: Counter<IpAddr>,
    exists_per_ip: Counter<IpAddr>,
    failures_per_subject: Counter<(Purpose, String)>,
    failures_per_ip: Counter<IpAddr>,
    outside: Counter<()>,
}

/// Why a code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefused {
    /// A wrong, expired, used, voided or never-sent code, or one for a subject that has had
    /// [`SUBJECT_FAILURES_MAX`] wrong codes: one answer for all, so that it says nothing about
    /// which (`403 invalid_code`).
    Invalid,
    /// The client has given `[web] code_failures_per_ip` wrong codes within the window: the
    /// seconds until it may try again (`429`). The code was not looked at.
    TooManyFailures(u64),
}

/// The node's verification codes and the limits on asking for them (in memory).
pub struct Codes {
    key: hmac::Key,
    table: Mutex<Table>,
    per_address: u32,
    per_ip: u32,
    exists_per_ip: u32,
    failures_per_ip: u32,
    outside: u32,
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
                tickets: 0,
                per_address: Counter::new(),
                per_ip: Counter::new(),
                exists_per_ip: Counter::new(),
                failures_per_subject: Counter::new(),
                failures_per_ip: Counter::new(),
                outside: Counter::with_max(1),
            }),
            per_address: config.codes_per_address,
            per_ip: config.codes_per_ip,
            exists_per_ip: config.exists_checks_per_ip,
            failures_per_ip: config.code_failures_per_ip,
            outside: config.outside_codes_per_window,
            window: Duration::from_secs(config.code_window_secs),
            max: config.codes_max,
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a request for a code to `address` (lower-cased) from `ip` (keyed by
    /// [`client_key`]), unless either is over its limit: then the seconds until it may ask again.
    ///
    /// # Errors
    /// The `Retry-After` seconds when over a limit (nothing is counted then).
    pub fn limit_request(&self, address: &str, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let address = address.to_lowercase();
        let client = client_key(ip);
        let mut table = self.table();
        if let Some(secs) = table.per_address.over(&address, self.per_address, self.window, now) {
            return Err(secs);
        }
        if let Some(secs) = table.per_ip.over(&client, self.per_ip, self.window, now) {
            return Err(secs);
        }
        table.per_address.bump(address, self.window, now);
        table.per_ip.bump(client, self.window, now);
        Ok(())
    }

    /// Counts a code mail to an address outside the node's domains (through the smarthost),
    /// unless the node has sent `[web] outside_codes_per_window` within the window.
    ///
    /// # Errors
    /// The `Retry-After` seconds when over the limit (nothing is counted then).
    pub fn limit_outside(&self, now: Instant) -> Result<(), u64> {
        let mut table = self.table();
        if let Some(secs) = table.outside.over(&(), self.outside, self.window, now) {
            return Err(secs);
        }
        table.outside.bump((), self.window, now);
        Ok(())
    }

    /// Counts an existence check from `ip` (keyed by [`client_key`]), unless it is over
    /// `exists_checks_per_ip`.
    ///
    /// # Errors
    /// The `Retry-After` seconds when over the limit.
    pub fn limit_exists(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let client = client_key(ip);
        let mut table = self.table();
        if let Some(secs) = table.exists_per_ip.over(&client, self.exists_per_ip, self.window, now) {
            return Err(secs);
        }
        table.exists_per_ip.bump(client, self.window, now);
        Ok(())
    }

    fn tag(&self, purpose: Purpose, subject: &str, code: &str) -> hmac::Tag {
        hmac::sign(&self.key, &message(purpose, subject, code))
    }

    /// Makes a new code for `subject` (lower-cased), valid until `now + CODE_TTL`. It replaces
    /// any earlier one, and inherits the tries that one had left if it was still live.
    ///
    /// # Errors
    /// When `[web] codes_max` codes are outstanding: the seconds until the oldest expires.
    pub fn issue(&self, purpose: Purpose, subject: &str, now: Instant) -> Result<Issued, u64> {
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
        let tries_left = match table.codes.get(&key) {
            Some(earlier) if now < earlier.expires => earlier.tries_left,
            _ => CODE_TRIES_MAX,
        };
        let code = random_code();
        let tag = self.tag(purpose, &key.1, &code);
        table.tickets += 1;
        let ticket = Ticket(table.tickets);
        // An instant past what the clock can hold would make the code dead on arrival.
        let expires = now.checked_add(CODE_TTL).unwrap_or(now);
        table.codes.insert(key, Pending { tag, expires, tries_left, ticket });
        Ok(Issued { code, ticket })
    }

    /// Forgets `subject`'s code (one that could not be sent) if it is still the one issued with
    /// `ticket`; a newer code for the subject stays.
    pub fn revoke(&self, purpose: Purpose, subject: &str, ticket: Ticket) {
        let mut table = self.table();
        let key = (purpose, subject.to_lowercase());
        if table.codes.get(&key).is_some_and(|p| p.ticket == ticket) {
            table.codes.remove(&key);
        }
    }

    /// Checks `code` for `subject` in constant time and, when it is right and live, uses it up
    /// (the returned [`Spent`] can give it back if what it was for then fails). `ip` is the
    /// client's address (keyed by [`client_key`]).
    ///
    /// A wrong code costs the code one of its tries (at [`CODE_TRIES_MAX`] it is void) and
    /// counts against the subject ([`SUBJECT_FAILURES_MAX`]); every refusal counts against the
    /// client (`[web] code_failures_per_ip`).
    ///
    /// # Errors
    /// [`CodeRefused::TooManyFailures`] when the client is over its limit (nothing is checked);
    /// else [`CodeRefused::Invalid`] for a wrong, expired, used, voided or unknown code, or any
    /// code for a subject over its limit.
    pub fn take(
        &self,
        purpose: Purpose,
        subject: &str,
        code: &str,
        ip: IpAddr,
        now: Instant,
    ) -> Result<Spent, CodeRefused> {
        let client = client_key(ip);
        let mut table = self.table();
        if let Some(secs) = table.failures_per_ip.over(&client, self.failures_per_ip, self.window, now) {
            return Err(CodeRefused::TooManyFailures(secs));
        }
        let result = self.check(&mut table, (purpose, subject.to_lowercase()), code, now);
        if result.is_err() {
            table.failures_per_ip.bump(client, self.window, now);
        }
        result
    }

    fn check(&self, table: &mut Table, key: (Purpose, String), code: &str, now: Instant) -> Result<Spent, CodeRefused> {
        let Some(pending) = table.codes.get_mut(&key) else { return Err(CodeRefused::Invalid) };
        if now >= pending.expires {
            table.codes.remove(&key);
            return Err(CodeRefused::Invalid);
        }
        let well_formed = code.len() == CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit());
        let right = well_formed && hmac::verify(&self.key, &message(key.0, &key.1, code), pending.tag.as_ref()).is_ok();
        let barred = table.failures_per_subject.over(&key, SUBJECT_FAILURES_MAX, SUBJECT_FAILURE_WINDOW, now);
        if barred.is_some() {
            return Err(CodeRefused::Invalid);
        }
        if !right {
            pending.tries_left = pending.tries_left.saturating_sub(1);
            if pending.tries_left == 0 {
                table.codes.remove(&key);
            }
            table.failures_per_subject.bump(key, SUBJECT_FAILURE_WINDOW, now);
            return Err(CodeRefused::Invalid);
        }
        let pending = table.codes.remove(&key).expect("found above");
        Ok(Spent { purpose: key.0, subject: key.1, pending })
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

/// A sign-up email address: `local@domain` with a domain name (an address literal such as
/// `user@[192.0.2.1]` is refused: codes go to named domains only).
fn parse_email(text: &str) -> Result<Address, ApiError> {
    let address = Address::parse(text.trim(), true)
        .map_err(|e| ApiError::bad_request(format!("{text:?} is not an email address: {e}")))?;
    if address.domain().starts_with('[') {
        return Err(ApiError::bad_request(format!("{text:?} has an address literal; give a domain name")));
    }
    Ok(address)
}

fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", message)
}

fn invalid_code() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "invalid_code", "the code is wrong, used up or expired; ask for a new one")
}

/// `403 invalid_code`, or `429` when the client has given too many wrong codes.
fn code_refused(refused: CodeRefused) -> ApiError {
    match refused {
        CodeRefused::Invalid => invalid_code(),
        CodeRefused::TooManyFailures(secs) => {
            ApiError::rate_limited("too many wrong codes from this client; try again later", secs)
        }
    }
}

/// Whether code mail to `to` would go through the smarthost (an address outside the node's
/// domains, and a smarthost to take it).
async fn goes_outside(web: &Web, to: &Address) -> Result<bool, StoreError> {
    Ok(!web.outbound.smarthost.is_empty() && !web.directory.is_local_domain(to.domain()).await?)
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
    if !web.password_allowed(conn.peer.ip(), conn.tls) {
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
        (status = 400, description = "Not an email address, or one with an address literal", body = ErrorBody),
        (status = 403, description = "Sign-up is closed", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "The address cannot be mailed (unknown local user, or no smarthost for other domains)", body = ErrorBody),
        (status = 429, description = "Too many codes for this address, from this client, or to outside addresses", body = ErrorBody),
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
    if goes_outside(&web, &email).await? {
        web.codes.limit_outside(Instant::now()).map_err(|secs| {
            warn!(email = %email, "api: [web] outside_codes_per_window reached; no sign-up code sent");
            ApiError::rate_limited("too many codes sent to other domains; try again later", secs)
        })?;
    }
    let issued = web
        .codes
        .issue(Purpose::Signup, &subject, Instant::now())
        .map_err(|secs| ApiError::rate_limited("too many codes outstanding; try again later", secs))?;
    if let Err(e) = send_code(&web, &email, &issued.code, Purpose::Signup).await {
        web.codes.revoke(Purpose::Signup, &subject, issued.ticket);
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
/// address. The code is checked before whether the address is taken (so a wrong code answers
/// `403` whatever the address), and used up only when the account is made. Role names
/// ([`RESERVED_LOCAL_PARTS`]) are refused, and so is a local part that an account in another
/// local domain has (a bare name would no longer log in). A password over plaintext from
/// outside `[auth] plaintext` is refused.
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = RegisterRequest,
    responses(
        (status = 201, description = "The account exists", body = AccountCreated),
        (status = 400, description = "Not a registration request, or a malformed address", body = ErrorBody),
        (status = 403, description = "Wrong, used or expired code (invalid_code); sign-up closed or a password over plaintext (forbidden)", body = ErrorBody),
        (status = 409, description = "The address, or its local part in another local domain, is taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Not a local domain (unprocessable), a reserved name such as postmaster (reserved), or an unusable password (weak_password)", body = ErrorBody),
        (status = 429, description = "Too many wrong codes, or too many taken addresses tried, from this client", body = ErrorBody),
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
    if is_reserved_local_part(address.local_part()) {
        let message = format!("{:?} is reserved for the node's own mail", address.local_part());
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "reserved", message));
    }
    // The code first: without the right one, the answer says nothing about the address.
    let spent = web
        .codes
        .take(Purpose::Signup, &email.to_string(), &request.code, conn.peer.ip(), Instant::now())
        .map_err(code_refused)?;
    let taken = match taken(&web, &address).await {
        Ok(taken) => taken,
        Err(e) => {
            web.codes.give_back(spent);
            return Err(e.into());
        }
    };
    if let Some(message) = taken {
        web.codes.give_back(spent);
        return Err(conflict(&web, &conn, message));
    }
    match web.directory.create_account(&address, &request.password).await {
        Ok(()) => {}
        Err(e) => {
            web.codes.give_back(spent);
            return Err(match e {
                AccountError::Store(StoreError::AccountExists(_)) => {
                    conflict(&web, &conn, format!("{address} is taken"))
                }
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

/// Why `address` cannot be signed up for, if it cannot: an account has it, or an account in
/// another local domain has its local part (bare-name login, [`tidings_store::Directory::find_login`],
/// would then find neither).
async fn taken(web: &Web, address: &Address) -> Result<Option<String>, StoreError> {
    let store = web.directory.store();
    if store.account(address).await?.is_some() {
        return Ok(Some(format!("{address} is taken")));
    }
    if !store.accounts_with_local_part(address.local_part()).await?.is_empty() {
        return Ok(Some(format!("the name {:?} is taken in another domain of this node", address.local_part())));
    }
    Ok(None)
}

/// `409 exists` for a registration with a right code, counted as an existence check (so that
/// one code cannot probe more addresses than `GET /accounts/exists` answers): `429` past
/// `exists_checks_per_ip`.
fn conflict(web: &Web, conn: &ConnInfo, message: String) -> ApiError {
    match web.codes.limit_exists(conn.peer.ip(), Instant::now()) {
        Ok(()) => ApiError::new(StatusCode::CONFLICT, "exists", message),
        Err(secs) => ApiError::rate_limited("too many checks; try again later", secs),
    }
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
        // Limits reached are not told to the client either: that would say the account exists.
        // A store that cannot say whether the address is local: counted as outside (an error
        // here would say the account exists).
        let outside = goes_outside(&web, &recovery).await.unwrap_or(true);
        if outside && web.codes.limit_outside(Instant::now()).is_err() {
            warn!(account = %address, "api: [web] outside_codes_per_window reached; no password reset code sent");
            return Ok(reset_code_accepted());
        }
        let Ok(Issued { code, ticket }) = web.codes.issue(Purpose::Reset, &subject, Instant::now()) else {
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
                    web.codes.revoke(Purpose::Reset, &subject, ticket);
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
        (status = 429, description = "Too many wrong codes from this client", body = ErrorBody),
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
        .take(Purpose::Reset, &address.to_string(), &request.code, conn.peer.ip(), Instant::now())
        .map_err(code_refused)?;
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

    const CLIENT: &str = "192.0.2.1";

    fn codes(config: HttpConfig) -> Codes {
        Codes::new(&config)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn issue(c: &Codes, purpose: Purpose, subject: &str, now: Instant) -> String {
        c.issue(purpose, subject, now).unwrap().code
    }

    fn take(c: &Codes, purpose: Purpose, subject: &str, code: &str, now: Instant) -> Result<Spent, CodeRefused> {
        c.take(purpose, subject, code, ip(CLIENT), now)
    }

    fn wrong(code: &str) -> String {
        format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
    }

    #[test]
    fn a_code_works_once_for_its_subject_only() {
        let c = codes(HttpConfig::default());
        let now = Instant::now();
        let code = issue(&c, Purpose::Signup, "Ann@Example.org", now);
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert!(take(&c, Purpose::Reset, "ann@example.org", &code, now).is_err(), "another purpose");
        assert!(take(&c, Purpose::Signup, "bob@example.org", &code, now).is_err(), "another subject");
        assert!(take(&c, Purpose::Signup, "ann@example.org", &code, now).is_ok());
        assert!(take(&c, Purpose::Signup, "ann@example.org", &code, now).is_err(), "used up");
        assert!(c.is_empty());
    }

    #[test]
    fn a_code_given_back_works_again_but_not_over_a_newer_one() {
        let c = codes(HttpConfig::default());
        let now = Instant::now();
        let code = issue(&c, Purpose::Signup, "ann@example.org", now);
        let spent = take(&c, Purpose::Signup, "ann@example.org", &code, now).unwrap();
        c.give_back(spent);
        let spent = take(&c, Purpose::Signup, "ann@example.org", &code, now).unwrap();
        let newer = issue(&c, Purpose::Signup, "ann@example.org", now);
        c.give_back(spent);
        assert!(take(&c, Purpose::Signup, "ann@example.org", &newer, now).is_ok());
    }

    #[test]
    fn a_code_expires_after_ten_minutes() {
        let c = codes(HttpConfig::default());
        let now = Instant::now();
        let code = issue(&c, Purpose::Reset, "ann@example.org", now);
        let late = now + CODE_TTL;
        assert_eq!(take(&c, Purpose::Reset, "ann@example.org", &code, late).unwrap_err(), CodeRefused::Invalid);
        let code = issue(&c, Purpose::Reset, "ann@example.org", now);
        assert!(take(&c, Purpose::Reset, "ann@example.org", &code, late - Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn five_wrong_tries_void_a_code() {
        let c = codes(HttpConfig::default());
        let now = Instant::now();
        let code = issue(&c, Purpose::Signup, "ann@example.org", now);
        for _ in 0..CODE_TRIES_MAX - 1 {
            assert!(take(&c, Purpose::Signup, "ann@example.org", &wrong(&code), now).is_err());
        }
        assert!(take(&c, Purpose::Signup, "ann@example.org", "not a code", now).is_err());
        assert!(take(&c, Purpose::Signup, "ann@example.org", &code, now).is_err(), "void after five wrong tries");
    }

    #[test]
    fn a_new_code_inherits_the_tries_left_of_the_live_one_it_replaces() {
        let c = codes(HttpConfig::default());
        let now = Instant::now();
        let first = issue(&c, Purpose::Signup, "ann@example.org", now);
        for _ in 0..CODE_TRIES_MAX - 1 {
            assert!(take(&c, Purpose::Signup, "ann@example.org", &wrong(&first), now).is_err());
        }
        // Asking again does not buy five more guesses: one wrong one voids the new code too.
        let second = issue(&c, Purpose::Signup, "ann@example.org", now);
        assert!(take(&c, Purpose::Signup, "ann@example.org", &wrong(&second), now).is_err());
        assert!(take(&c, Purpose::Signup, "ann@example.org", &second, now).is_err(), "void");
        // An expired code passes nothing on.
        let third = issue(&c, Purpose::Reset, "bob@example.org", now);
        assert!(take(&c, Purpose::Reset, "bob@example.org", &wrong(&third), now).is_err());
        let later = now + CODE_TTL;
        let fourth = issue(&c, Purpose::Reset, "bob@example.org", later);
        for _ in 0..CODE_TRIES_MAX - 1 {
            assert!(take(&c, Purpose::Reset, "bob@example.org", &wrong(&fourth), later).is_err());
        }
        assert!(take(&c, Purpose::Reset, "bob@example.org", &fourth, later).is_ok());
    }

    #[test]
    fn a_subject_takes_ten_wrong_codes_a_day_whatever_codes_it_is_sent() {
        let c = codes(HttpConfig { code_failures_per_ip: 1000, ..HttpConfig::default() });
        let start = Instant::now();
        let mut now = start;
        let mut failures = 0;
        // Each code is void after five wrong tries, and the subject asks for a new one after it
        // expires: the count goes on across codes.
        while failures < SUBJECT_FAILURES_MAX {
            let code = issue(&c, Purpose::Reset, "ann@example.org", now);
            for _ in 0..CODE_TRIES_MAX.min(SUBJECT_FAILURES_MAX - failures) {
                assert!(take(&c, Purpose::Reset, "ann@example.org", &wrong(&code), now).is_err());
                failures += 1;
            }
            now += CODE_TTL;
        }
        let code = issue(&c, Purpose::Reset, "ann@example.org", now);
        let refused = take(&c, Purpose::Reset, "ann@example.org", &code, now).unwrap_err();
        assert_eq!(refused, CodeRefused::Invalid, "the right code, refused like a wrong one");
        let other = issue(&c, Purpose::Reset, "bob@example.org", now);
        assert!(take(&c, Purpose::Reset, "bob@example.org", &other, now).is_ok(), "other subjects go on");
        let tomorrow = start + SUBJECT_FAILURE_WINDOW;
        let code = issue(&c, Purpose::Reset, "ann@example.org", tomorrow);
        assert!(take(&c, Purpose::Reset, "ann@example.org", &code, tomorrow).is_ok(), "a day later");
    }

    #[test]
    fn wrong_codes_are_limited_per_client_and_an_ipv6_client_is_its_slash_64() {
        let c = codes(HttpConfig { code_failures_per_ip: 3, code_window_secs: 60, ..HttpConfig::default() });
        let now = Instant::now();
        let code = issue(&c, Purpose::Signup, "ann@example.org", now);
        for (n, client) in ["2001:db8:1:1::1", "2001:db8:1:1::2", "2001:db8:1:1:ffff::3"].into_iter().enumerate() {
            let subject = format!("nobody{n}@example.org");
            assert_eq!(c.take(Purpose::Signup, &subject, "123456", ip(client), now).unwrap_err(), CodeRefused::Invalid);
        }
        let refused = c.take(Purpose::Signup, "ann@example.org", &code, ip("2001:db8:1:1::9"), now);
        assert_eq!(refused.unwrap_err(), CodeRefused::TooManyFailures(60), "the /64 had three");
        assert!(c.take(Purpose::Signup, "ann@example.org", &code, ip("2001:db8:1:2::9"), now).is_ok());
        let code = issue(&c, Purpose::Signup, "ann@example.org", now);
        let later = now + Duration::from_secs(60);
        assert!(c.take(Purpose::Signup, "ann@example.org", &code, ip("2001:db8:1:1::9"), later).is_ok());
    }

    #[test]
    fn revoking_an_issue_leaves_a_newer_code_alone() {
        let c = codes(HttpConfig::default());
        let now = Instant::now();
        let first = c.issue(Purpose::Signup, "ann@example.org", now).unwrap();
        let second = c.issue(Purpose::Signup, "ann@example.org", now).unwrap();
        c.revoke(Purpose::Signup, "ann@example.org", first.ticket);
        assert!(take(&c, Purpose::Signup, "ann@example.org", &second.code, now).is_ok(), "the newer code stays");
        let third = c.issue(Purpose::Signup, "ann@example.org", now).unwrap();
        c.revoke(Purpose::Signup, "Ann@example.org", third.ticket);
        assert!(c.is_empty());
    }

    #[test]
    fn a_window_past_the_end_of_the_clock_never_ends_and_does_not_panic() {
        let mut counter = Counter::new();
        let now = Instant::now();
        counter.bump("a", Duration::MAX, now);
        counter.bump("a", Duration::MAX, now);
        assert_eq!(counter.over(&"a", 2, Duration::MAX, now), Some(Duration::MAX.as_secs()));
        let c = codes(HttpConfig { code_window_secs: u64::MAX, codes_per_ip: 1, ..HttpConfig::default() });
        assert!(c.limit_request("ann@example.org", ip(CLIENT), now).is_ok());
        assert!(c.limit_request("bob@example.org", ip(CLIENT), now).is_err());
    }

    #[test]
    fn codes_to_outside_addresses_are_limited_across_the_node() {
        let c = codes(HttpConfig { outside_codes_per_window: 2, code_window_secs: 60, ..HttpConfig::default() });
        let now = Instant::now();
        assert!(c.limit_outside(now).is_ok() && c.limit_outside(now).is_ok());
        assert_eq!(c.limit_outside(now + Duration::from_secs(20)), Err(40));
        assert!(c.limit_outside(now + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn code_requests_from_one_ipv6_slash_64_count_together() {
        let c = codes(HttpConfig { codes_per_ip: 2, ..HttpConfig::default() });
        let now = Instant::now();
        assert!(c.limit_request("a@example.org", ip("2001:db8:5:5::1"), now).is_ok());
        assert!(c.limit_request("b@example.org", ip("2001:db8:5:5:1:2:3:4"), now).is_ok());
        assert!(c.limit_request("c@example.org", ip("2001:db8:5:5::abcd"), now).is_err());
        assert!(c.limit_request("c@example.org", ip("2001:db8:5:6::1"), now).is_ok());
        let c = codes(HttpConfig { exists_checks_per_ip: 1, ..HttpConfig::default() });
        assert!(c.limit_exists(ip("2001:db8::1"), now).is_ok());
        assert!(c.limit_exists(ip("2001:db8::2"), now).is_err());
    }

    #[test]
    fn role_names_are_reserved_and_address_literals_are_no_sign_up_email() {
        for name in ["postmaster", "Abuse", "\"hostmaster\"", "ADMIN", "administrator", "mailer-daemon", "root"] {
            assert!(is_reserved_local_part(name), "{name}");
        }
        for name in ["post", "admins", "info", "instructor"] {
            assert!(!is_reserved_local_part(name), "{name}");
        }
        assert_eq!(parse_email("user@[10.0.0.5]").unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(parse_email("user@[IPv6:2001:db8::1]").unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(parse_email(" Ann@Example.org ").unwrap().to_string(), "ann@example.org");
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
