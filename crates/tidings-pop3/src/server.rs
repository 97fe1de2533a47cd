//! The POP3 service: runs a [`proto::Session`] per connection over the store.
//!
//! The driver's part of RFC 1939: it checks passwords (with a delay after a failure), locks the
//! maildrop for the session (a second session gets `[IN-USE]`), serves messages from INBOX, and
//! applies the session's deletions as one op in the UPDATE state.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use tracing::{info, warn};

use tidings_core::{Address, INBOX, Op};
use tidings_net::{Accepted, ConnectionLimits, DriveOptions, Handler, PlaintextAuth, Service};
use tidings_store::{Directory, LoginError};

use crate::proto::{self, MessageInfo, Request, Response, Session, SessionConfig};

/// `[pop3]`: limits of the POP3 service.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Pop3Config {
    /// Longest command line, octets including CRLF. Default 2048 (RFC 2449 §4 needs 255; SASL
    /// responses need more). At least 255.
    pub command_line_bytes_max: usize,
    /// `-ERR` replies after which the session is closed. Default 10.
    pub errors_max: u32,
    /// Autologout: an idle session is closed after this many seconds without a command, without
    /// applying its deletions (RFC 1939 §3: at least 10 minutes). Default 600.
    pub idle_timeout_secs: u64,
    /// Most simultaneous POP3 connections. Default 1000.
    pub connections_max: usize,
    /// Most simultaneous POP3 connections from one IP address. Default 50.
    pub connections_per_ip_max: usize,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            command_line_bytes_max: 2048,
            errors_max: 10,
            idle_timeout_secs: 600,
            connections_max: 1000,
            connections_per_ip_max: 50,
        }
    }
}

impl Pop3Config {
    /// Checks the values.
    ///
    /// # Errors
    /// A message naming the bad key.
    pub fn validate(&self) -> Result<(), String> {
        if self.command_line_bytes_max < proto::COMMAND_LINE_BYTES_MIN {
            return Err(format!("[pop3] command_line_bytes_max must be at least {}", proto::COMMAND_LINE_BYTES_MIN));
        }
        if self.idle_timeout_secs == 0 || self.connections_max == 0 || self.connections_per_ip_max == 0 {
            return Err("[pop3] idle_timeout_secs, connections_max and connections_per_ip_max must be positive".into());
        }
        Ok(())
    }

    /// The connection caps.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits { connections_max: self.connections_max, connections_per_ip_max: self.connections_per_ip_max }
    }
}

/// Everything a POP3 service needs.
pub struct Pop3Settings {
    /// Our host name, in the greeting.
    pub hostname: String,
    /// `[pop3]`.
    pub config: Pop3Config,
    /// Accounts and the store.
    pub directory: Arc<Directory>,
    /// Where USER/PASS may be used without TLS.
    pub plaintext_auth: PlaintextAuth,
    /// Wait before answering a failed login.
    pub auth_failure_delay: Duration,
    /// Socket settings; `tls` set means STLS is offered. The read timeouts are taken from
    /// `config` by [`Pop3Service::new`].
    pub drive: DriveOptions,
    /// The node's maildrop locks.
    pub locks: MaildropLocks,
}

/// One POP3 listener's service.
pub struct Pop3Service {
    settings: Pop3Settings,
}

impl Pop3Service {
    /// A service for one listener.
    pub fn new(mut settings: Pop3Settings) -> Arc<Pop3Service> {
        // RFC 1939 §3's autologout timer; POP3 has no message content phase.
        settings.drive.idle_timeout = Duration::from_secs(settings.config.idle_timeout_secs);
        settings.drive.content_timeout = settings.drive.idle_timeout;
        Arc::new(Pop3Service { settings })
    }
}

impl Service for Pop3Service {
    fn refusal(&self, reason: &str) -> Vec<u8> {
        proto::refuse_connection(&format!("{reason}, try again later"))
    }

    /// Serves one connection until it ends.
    async fn handle(self: Arc<Self>, conn: Accepted) {
        let s = &self.settings;
        let tls = conn.stream.is_tls();
        let config = SessionConfig {
            hostname: s.hostname.clone(),
            limits: proto::Limits {
                command_line_bytes_max: s.config.command_line_bytes_max,
                errors_max: s.config.errors_max,
            },
            stls: !tls && s.drive.tls.is_some(),
            tls,
            plaintext_auth: s.plaintext_auth.allows(conn.peer.ip()),
            transcript: tracing::enabled!(target: "tidings::transcript", tracing::Level::DEBUG),
        };
        let mut session = Session::new(config);
        let mut handler = Pop3Handler {
            service: Arc::clone(&self),
            account: None,
            lock: None,
            peer: conn.peer,
            order: Vec::new(),
            ahead: Vec::new(),
        };
        tidings_net::drive(conn, &mut session, &mut handler, &s.drive).await;
    }
}

/// The maildrops with a session in TRANSACTION state (RFC 1939 §4: exclusive access). One table
/// per node, shared by all its POP3 listeners.
#[derive(Clone, Default)]
pub struct MaildropLocks(Arc<Mutex<HashSet<Address>>>);

impl MaildropLocks {
    /// Locks `address`'s maildrop, or `None` when another session holds it.
    fn try_lock(&self, address: &Address) -> Option<MaildropLock> {
        let fresh = self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(address.clone());
        fresh.then(|| MaildropLock { locks: self.clone(), address: address.clone() })
    }
}

/// The UIDs one RETR of `uid` reads: `uid`, then those after it in `order` while they fit in
/// [`READ_AHEAD_BYTES_MAX`] (counting `uid`'s own size) and [`READ_AHEAD_MESSAGES_MAX`].
fn read_ahead(order: &[(u32, u64)], uid: u32) -> Vec<u32> {
    let Some(start) = order.iter().position(|(u, _)| *u == uid) else { return vec![uid] };
    let mut total = order[start].1;
    let mut uids = vec![uid];
    for (next, size) in &order[start + 1..] {
        total = total.saturating_add(*size);
        if total > READ_AHEAD_BYTES_MAX || uids.len() >= READ_AHEAD_MESSAGES_MAX {
            break;
        }
        uids.push(*next);
    }
    uids
}

/// A held maildrop lock; released on drop (the session ended, however it ended).
struct MaildropLock {
    locks: MaildropLocks,
    address: Address,
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        self.locks.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.address);
    }
}

/// Most octets of messages one RETR reads ahead of the client (read in one store read with the
/// message asked for, kept for the RETRs that follow); a message larger than this is read alone.
const READ_AHEAD_BYTES_MAX: u64 = 256 * 1024;
/// Most messages one RETR reads ahead.
const READ_AHEAD_MESSAGES_MAX: usize = 32;

/// Carries out one session's requests.
struct Pop3Handler {
    service: Arc<Pop3Service>,
    /// The logged-in account.
    account: Option<Address>,
    lock: Option<MaildropLock>,
    peer: std::net::SocketAddr,
    /// The maildrop's UIDs and sizes, in message-number order (from login).
    order: Vec<(u32, u64)>,
    /// Messages read ahead, by UID, at most [`READ_AHEAD_BYTES_MAX`] octets in all: clients
    /// retrieve in order, and one store read of several messages costs little more than one.
    ahead: Vec<(u32, Bytes)>,
}

impl Handler<Session> for Pop3Handler {
    /// Releases the maildrop before the sign-off reaches the client, so that a client that
    /// reconnects at once never finds its own old session holding it.
    fn on_close(&mut self) {
        self.lock = None;
    }

    async fn handle(&mut self, request: Request) -> Response {
        match request {
            Request::Authenticate { user, password } => self.login(&user, &password).await,
            Request::Retrieve { uid, .. } => self.retrieve(uid).await,
            Request::Update { uids } => {
                let Some(account) = &self.account else { return Response::UpdateFailed };
                let op = Op::Expunge { address: account.clone(), mailbox: INBOX.into(), uids };
                match self.service.settings.directory.store().apply(account, op).await {
                    Ok(outcome) => {
                        info!(%account, ?outcome, "pop3: deletions applied");
                        Response::Updated
                    }
                    Err(e) => {
                        warn!(%account, error = %e, "pop3: deletions failed; none applied");
                        Response::UpdateFailed
                    }
                }
            }
        }
    }
}

impl Pop3Handler {
    /// One message's octets: read ahead already, or read now with the messages that follow it in
    /// the maildrop (within the read-ahead bounds), which are kept for the next RETRs.
    async fn retrieve(&mut self, uid: u32) -> Response {
        let Some(account) = &self.account else { return Response::TempFail };
        if let Some(i) = self.ahead.iter().position(|(u, _)| *u == uid) {
            return Response::Message(self.ahead.swap_remove(i).1);
        }
        let uids = read_ahead(&self.order, uid);
        let store = self.service.settings.directory.store();
        match store.messages(account, INBOX, uids, true).await {
            Ok(Some(messages)) => {
                self.ahead.clear();
                let mut wanted = None;
                for message in messages {
                    let Some(content) = message.content else { continue };
                    if message.meta.uid == uid {
                        wanted = Some(content);
                    } else {
                        self.ahead.push((message.meta.uid, content));
                    }
                }
                wanted.map_or(Response::MessageGone, Response::Message)
            }
            Ok(None) => Response::MessageGone,
            Err(e) => {
                warn!(%account, uid, error = %e, "pop3: cannot read message");
                Response::TempFail
            }
        }
    }

    async fn login(&mut self, user: &str, password: &str) -> Response {
        let settings = &self.service.settings;
        let account = match settings.directory.authenticate(user, password).await {
            Ok(account) => account.address,
            Err(LoginError::Invalid) => {
                info!(peer = %self.peer, user, "pop3: login failed");
                tokio::time::sleep(settings.auth_failure_delay).await;
                return Response::AuthFailed;
            }
            Err(LoginError::Unavailable(e)) => {
                warn!(error = %e, "pop3: cannot check a login");
                return Response::TempFail;
            }
        };
        let Some(lock) = settings.locks.try_lock(&account) else {
            return Response::InUse;
        };
        match settings.directory.store().mailbox(&account, INBOX).await {
            Ok(Some(listing)) => {
                // RFC 1939 §7 asks only for uniqueness within a maildrop; the account's hash makes the
                // identifiers differ between maildrops too, so a client holding several never confuses them.
                let maildrop = tidings_core::address_hash(&account) as u32;
                self.order = listing.messages.iter().map(|m| (m.uid, m.size)).collect();
                let messages = listing
                    .messages
                    .iter()
                    .map(|m| MessageInfo {
                        uid: m.uid,
                        size: m.size,
                        unique_id: format!("{maildrop:08x}{:08x}{:08x}", listing.uidvalidity, m.uid),
                    })
                    .collect();
                info!(peer = %self.peer, %account, "pop3: logged in");
                self.account = Some(account);
                self.lock = Some(lock);
                Response::LoggedIn(messages)
            }
            Ok(None) => Response::TempFail,
            Err(e) => {
                warn!(%account, error = %e, "pop3: cannot list INBOX");
                Response::TempFail
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retr_reads_ahead_in_maildrop_order_within_its_bounds() {
        let order: Vec<(u32, u64)> = (1..=100).map(|uid| (uid, 10_240)).collect();
        let uids = read_ahead(&order, 5);
        assert_eq!(uids.first(), Some(&5));
        assert_eq!(uids.len(), 25, "256 KiB of 10 KiB messages");
        assert!(uids.windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(read_ahead(&order, 100), vec![100], "nothing after the last");
        assert_eq!(read_ahead(&order, 1_000), vec![1_000], "an unknown UID is read alone");
        let small: Vec<(u32, u64)> = (1..=100).map(|uid| (uid, 100)).collect();
        assert_eq!(read_ahead(&small, 1).len(), READ_AHEAD_MESSAGES_MAX);
        let large = [(1, 10 * 1024 * 1024), (2, 100)];
        assert_eq!(read_ahead(&large, 1), vec![1], "a message over the bound is read alone");
    }
}
