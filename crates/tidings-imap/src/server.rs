//! The IMAP service: runs a [`proto::Session`] per connection and answers its requests from the
//! directory and the store.
//!
//! Every change a session asks for is an op through the account's shard (so it is replicated and
//! durable before the tagged OK; a STORE's flags are committed, and under the default
//! `[store] fsync_flag_changes = false` synced with a later commit), and every session of an
//! account watches the account's changes: a delivery over SMTP, a deletion over POP3 or a flag set
//! by another IMAP session becomes a notice, which the session turns into EXISTS, EXPUNGE and
//! FETCH responses where RFC 9051 allows.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tracing::{info, warn};

use tidings_core::{Address, Op, Outcome, date, uidvalidity_at};
use tidings_net::{Accepted, ConnectionLimits, DriveOptions, Handler, PlaintextAuth, Service};
use tidings_store::{Directory, LoginError, StoreError};

use crate::proto::{self, AuthVerdict, CopyResult, MailboxError, Notice, Request, Response, Session, SessionConfig};

/// `[imap]`: limits of the IMAP service.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ImapConfig {
    /// Largest literal (an APPENDed message), in octets. Default 26,279,936 (25 MiB + 64 KiB).
    pub literal_bytes_max: u32,
    /// Largest command including its literals, in octets. Default `literal_bytes_max` + 64 KiB.
    pub command_bytes_max: u32,
    /// BAD and NO replies after which the session ends with BYE. Default 20.
    pub errors_max: u32,
    /// Messages whose content one store read loads for FETCH or SEARCH. Default 64.
    pub fetch_batch_messages: usize,
    /// Octets of content one store read loads (at least one message). Default 16 MiB.
    pub fetch_batch_bytes: u64,
    /// Autologout: a session is closed after this many seconds without a command (RFC 9051 §5.4:
    /// at least 30 minutes; an IDLE client renews its command before then). Default 1800.
    pub idle_timeout_secs: u64,
    /// Most simultaneous IMAP connections. Default 1000.
    pub connections_max: usize,
    /// Most simultaneous IMAP connections from one client network. Default 50.
    pub connections_per_ip_max: usize,
}

impl Default for ImapConfig {
    fn default() -> Self {
        // The protocol limits' defaults are the core's own.
        let limits = proto::Limits::default();
        ImapConfig {
            literal_bytes_max: limits.literal_bytes_max,
            command_bytes_max: limits.command_bytes_max,
            errors_max: limits.errors_max,
            fetch_batch_messages: limits.fetch_batch_messages,
            fetch_batch_bytes: limits.fetch_batch_bytes,
            idle_timeout_secs: 1800,
            connections_max: 1000,
            connections_per_ip_max: 50,
        }
    }
}

impl ImapConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// A message naming the bad key.
    pub fn validate(&self) -> Result<(), String> {
        if self.literal_bytes_max < 1024 || self.command_bytes_max < 1024 {
            return Err("[imap] literal_bytes_max and command_bytes_max must be at least 1024".into());
        }
        if self.fetch_batch_messages == 0 || self.fetch_batch_bytes == 0 {
            return Err("[imap] fetch_batch_messages and fetch_batch_bytes must be positive".into());
        }
        if self.idle_timeout_secs == 0 || self.connections_max == 0 || self.connections_per_ip_max == 0 {
            return Err("[imap] idle_timeout_secs, connections_max and connections_per_ip_max must be positive".into());
        }
        Ok(())
    }

    /// The connection caps.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits { connections_max: self.connections_max, connections_per_ip_max: self.connections_per_ip_max }
    }

    fn limits(&self) -> proto::Limits {
        proto::Limits {
            literal_bytes_max: self.literal_bytes_max,
            command_bytes_max: self.command_bytes_max,
            errors_max: self.errors_max,
            fetch_batch_messages: self.fetch_batch_messages,
            fetch_batch_bytes: self.fetch_batch_bytes,
        }
    }
}

/// Everything an IMAP service needs.
pub struct ImapSettings {
    /// Our host name, in the greeting.
    pub hostname: String,
    /// `[imap]`.
    pub config: ImapConfig,
    /// Accounts and the store.
    pub directory: Arc<Directory>,
    /// Where LOGIN and AUTHENTICATE PLAIN may be used without TLS.
    pub plaintext_auth: PlaintextAuth,
    /// Wait before answering a failed login.
    pub auth_failure_delay: Duration,
    /// Socket settings; `tls` set means STARTTLS is offered. The read timeouts are taken from
    /// `config` by [`ImapService::new`].
    pub drive: DriveOptions,
}

/// One IMAP listener's service.
pub struct ImapService {
    settings: ImapSettings,
}

impl ImapService {
    /// A service for one listener.
    pub fn new(mut settings: ImapSettings) -> Arc<ImapService> {
        settings.drive.idle_timeout = Duration::from_secs(settings.config.idle_timeout_secs);
        settings.drive.content_timeout = settings.drive.idle_timeout;
        Arc::new(ImapService { settings })
    }
}

impl Service for ImapService {
    /// RFC 9051 §7.1.5 BYE with RFC 5530 UNAVAILABLE.
    fn refusal(&self, reason: &str) -> Vec<u8> {
        format!("* BYE [UNAVAILABLE] {reason}, try again later\r\n").into_bytes()
    }

    /// Serves one connection until it ends.
    async fn handle(self: Arc<Self>, conn: Accepted) {
        let s = &self.settings;
        let tls = conn.stream.is_tls();
        let config = SessionConfig {
            hostname: s.hostname.clone(),
            limits: s.config.limits(),
            starttls: !tls && s.drive.tls.is_some(),
            tls,
            plaintext_auth: s.plaintext_auth.allows(conn.peer.ip()),
            transcript: tracing::enabled!(target: "tidings::transcript", tracing::Level::DEBUG),
        };
        let mut session = Session::new(config);
        let mut handler = ImapHandler {
            service: Arc::clone(&self),
            account: None,
            changes: None,
            heard: Heard::default(),
            peer: conn.peer,
        };
        tidings_net::drive(conn, &mut session, &mut handler, &s.drive).await;
    }
}

/// Carries out one session's requests.
struct ImapHandler {
    service: Arc<ImapService>,
    /// The logged-in account.
    account: Option<Address>,
    /// The account's change counter, once logged in: the store adds one for every committed
    /// op that touched the account.
    changes: Option<watch::Receiver<u64>>,
    /// What the session has heard of the counter.
    heard: Heard,
    peer: std::net::SocketAddr,
}

impl Handler<Session> for ImapHandler {
    fn next_notice(&mut self) -> impl Future<Output = Notice> + Send {
        let due = self.heard.take_due();
        let changes = self.changes.as_mut();
        let heard = &mut self.heard;
        async move {
            if due {
                return Notice::Changed;
            }
            if let Some(changes) = changes
                && changes.changed().await.is_ok()
            {
                heard.told(*changes.borrow_and_update());
                return Notice::Changed;
            }
            // Not logged in, or the store is gone: no news will come.
            std::future::pending().await
        }
    }

    async fn handle(&mut self, request: Request) -> Response {
        if let Request::Authenticate { user, password } = request {
            return Response::Auth(self.login(&user, &password).await);
        }
        let Some(account) = self.account.clone() else {
            // The core asks for nothing but a login before one succeeded.
            debug_assert!(false, "request before login: {request:?}");
            return Response::Done(Err(MailboxError::TryLater));
        };
        let store = self.service.settings.directory.store();
        let now_ms = date::now_millis();
        let apply = |op: Op| store.apply(&account, op);
        match request {
            Request::Authenticate { .. } => unreachable!("handled above"),
            Request::ListMailboxes => Response::Mailboxes(store.mailboxes(&account).await.map_err(mailbox_error)),
            Request::Select { mailbox } => Response::Selected(found(store.snapshot(&account, &mailbox).await)),
            Request::Sync { mailbox, since_modseq } => {
                Response::Synced(found(store.sync(&account, &mailbox, since_modseq).await))
            }
            Request::Fetch { mailbox, uids, content } => {
                Response::Messages(found(store.messages(&account, &mailbox, uids, content).await))
            }
            Request::Create { mailbox } => {
                let op =
                    Op::CreateMailbox { address: account.clone(), name: mailbox, uidvalidity: uidvalidity_at(now_ms) };
                Response::Done(apply(op).await.map(drop).map_err(mailbox_error))
            }
            Request::Delete { mailbox } => {
                let op = Op::DeleteMailbox { address: account.clone(), name: mailbox };
                Response::Done(apply(op).await.map(drop).map_err(mailbox_error))
            }
            Request::Rename { from, to } => {
                let op = Op::RenameMailbox { address: account.clone(), from, to, uidvalidity: uidvalidity_at(now_ms) };
                Response::Done(apply(op).await.map(drop).map_err(mailbox_error))
            }
            Request::Subscribe { mailbox, subscribed } => {
                let op = Op::SetSubscription { address: account.clone(), name: mailbox, subscribed };
                Response::Done(apply(op).await.map(drop).map_err(mailbox_error))
            }
            Request::Append { mailbox, flags, internal_date, message } => {
                let op = Op::Append {
                    address: account.clone(),
                    mailbox,
                    flags,
                    internal_date: internal_date.unwrap_or(now_ms / 1000),
                    message: message.into(),
                };
                Response::Appended(match apply(op).await {
                    Ok(Outcome::Appended { uidvalidity, uid }) => Ok((uidvalidity, uid)),
                    Ok(other) => Err(unexpected(other)),
                    Err(e) => Err(mailbox_error(e)),
                })
            }
            Request::Store { mailbox, uids, change, flags } => {
                let op = Op::SetFlags { address: account.clone(), mailbox, uids, change, flags };
                Response::Stored(match apply(op).await {
                    Ok(Outcome::FlagsSet(changed)) => {
                        self.own_change_committed();
                        Ok(changed)
                    }
                    Ok(other) => Err(unexpected(other)),
                    Err(e) => Err(mailbox_error(e)),
                })
            }
            Request::Copy { from, to, uids, remove } => {
                let op = Op::Copy { address: account.clone(), from, to, uids, remove };
                Response::Copied(match apply(op).await {
                    Ok(Outcome::Copied { uidvalidity, pairs }) => Ok(CopyResult { uidvalidity, pairs }),
                    Ok(other) => Err(unexpected(other)),
                    Err(e) => Err(mailbox_error(e)),
                })
            }
            Request::Expunge { mailbox, uids } => {
                let op = Op::Expunge { address: account.clone(), mailbox, uids };
                Response::Expunged(match apply(op).await {
                    Ok(Outcome::Expunged(removed)) => Ok(removed),
                    Ok(other) => Err(unexpected(other)),
                    Err(e) => Err(mailbox_error(e)),
                })
            }
        }
    }
}

impl ImapHandler {
    /// After a flag change of this session's own was committed: see [`Heard::own_op`].
    fn own_change_committed(&mut self) {
        if let Some(changes) = &mut self.changes {
            self.heard.own_op(*changes.borrow_and_update());
        }
    }

    async fn login(&mut self, user: &str, password: &str) -> AuthVerdict {
        let settings = &self.service.settings;
        match settings.directory.authenticate(user, password).await {
            Ok(account) => {
                info!(peer = %self.peer, account = %account.address, "imap: logged in");
                let changes = settings.directory.store().watch(&account.address);
                self.heard.told(*changes.borrow());
                self.changes = Some(changes);
                let name = account.address.to_string();
                self.account = Some(account.address);
                AuthVerdict::Ok { account: name }
            }
            Err(LoginError::Invalid) => {
                info!(peer = %self.peer, user, "imap: login failed");
                tokio::time::sleep(settings.auth_failure_delay).await;
                AuthVerdict::Invalid
            }
            Err(LoginError::Unavailable(e)) => {
                warn!(error = %e, "imap: cannot check a login");
                AuthVerdict::TempFail
            }
        }
    }
}

/// What a session has heard of its account's change counter (which the store raises by one for
/// every committed op that touched the account, before the op's submitter hears back).
#[derive(Debug, Default)]
struct Heard {
    /// The value the session has been told of, or has accounted for by its own op.
    seen: u64,
    /// A change the session has not been told of was taken off the counter along with its own
    /// op: a notice is due at once.
    due: bool,
}

impl Heard {
    /// A notice told the session of the changes up to `now`.
    fn told(&mut self, now: u64) {
        self.seen = now;
    }

    /// The counter reads `now` after a flag change of the session's own was committed. Its
    /// answer (every message's new flags) tells the session all it did, so when it is the only
    /// change since the session last heard (`now` is one more), no notice is due for it, and
    /// the session's next command needs no sync of the mailbox; anything else stays a notice.
    fn own_op(&mut self, now: u64) {
        if now != self.seen.wrapping_add(1) {
            self.due = true;
        }
        self.seen = now;
    }

    /// Whether a notice is due at once; it is then no longer.
    fn take_due(&mut self) -> bool {
        std::mem::take(&mut self.due)
    }
}

/// A read that found nothing means the mailbox is gone.
fn found<T>(read: Result<Option<T>, StoreError>) -> Result<T, MailboxError> {
    match read {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(MailboxError::NoSuchMailbox),
        Err(e) => Err(mailbox_error(e)),
    }
}

fn mailbox_error(e: StoreError) -> MailboxError {
    match e {
        StoreError::NoSuchMailbox(_) => MailboxError::NoSuchMailbox,
        StoreError::MailboxExists(_) => MailboxError::AlreadyExists,
        StoreError::HasChildren(_) => MailboxError::HasChildren,
        StoreError::Forbidden(reason) => MailboxError::Forbidden(reason),
        StoreError::InvalidMailboxName(reason) => MailboxError::Invalid(reason),
        other => {
            if !other.is_temporary() {
                warn!(error = %other, "imap: store refused a request");
            }
            MailboxError::TryLater
        }
    }
}

fn unexpected(outcome: Outcome) -> MailboxError {
    warn!(?outcome, "imap: the store answered with an outcome of another op");
    MailboxError::TryLater
}

#[cfg(test)]
mod tests {
    use super::Heard;

    #[test]
    fn an_own_flag_change_alone_needs_no_notice_and_anything_more_does() {
        let mut heard = Heard::default();
        heard.told(5);
        heard.own_op(6);
        assert!(!heard.take_due(), "only our own op");
        // Another op landed before or after ours: the session must sync.
        heard.own_op(8);
        assert!(heard.take_due());
        assert!(!heard.take_due(), "told once");
        heard.own_op(9);
        assert!(!heard.take_due());
        // A change the session was told of, then its own op.
        heard.told(12);
        heard.own_op(13);
        assert!(!heard.take_due());
    }
}
