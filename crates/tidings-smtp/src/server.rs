//! The SMTP service: runs a [`proto::Session`] per connection and answers its requests from the
//! directory and the store.
//!
//! Delivery is where durability is decided: the message, with the `Return-Path:` and `Received:`
//! fields prepended, goes to every recipient's shard as one op per shard, and the session says
//! `250` only when every copy is committed (RFC 5321 §6.1: a server that said 250 is responsible
//! for the message).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use tracing::{info, warn};

use tidings_core::{Address, INBOX, date};
use tidings_net::{Accepted, ConnectionLimits, DriveOptions, Handler, PlaintextAuth, Service};
use tidings_store::{Directory, LoginError, Resolution};

use crate::proto::{
    self, AuthVerdict, DeliveryVerdict, Mode, RcptVerdict, Request, Response, Session, SessionConfig, Transaction,
};

/// `[smtp]`: limits of the `smtp` and `submission` services.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Largest message, in octets; advertised as `SIZE` (RFC 1870). Default 26,214,400 (25 MiB).
    pub message_bytes_max: usize,
    /// Most recipients per transaction; more get `452 4.5.3` (RFC 5321 §4.5.3.1.10). Default 100.
    pub recipients_max: usize,
    /// Longest command line, octets including CRLF (RFC 5321 §4.5.3.1.4 sets 512 as a minimum;
    /// RFC 4954 AUTH lines need more). Default 4096.
    pub command_line_bytes_max: usize,
    /// Longest line of message text, octets including CRLF, not counting a leading dot doubled for
    /// transparency (RFC 5321 §4.5.3.1.6). Default 1000.
    pub text_line_bytes_max: usize,
    /// Error replies after which the session is closed with `421`. Default 20.
    pub errors_max: u32,
    /// More `Received:` fields than this mean a mail loop: `554 5.4.6` (RFC 5321 §6.3). Default 100.
    pub received_fields_max: usize,
    /// What a bare CR or bare LF in message data does: `reject` (the default: `550 5.6.0`, as
    /// lines must end in CRLF, RFC 5321 §2.3.8) or `normalize` (stored as CRLF). Either way only
    /// CRLF.CRLF ends the data, so SMTP smuggling does not work.
    pub bare_line_ending: BareLineEnding,
    /// Seconds to wait for the next command (RFC 5321 §4.5.3.2.7: at least 5 minutes). Default 300.
    pub command_timeout_secs: u64,
    /// Seconds to wait for the next octets of DATA or BDAT content. Default 300.
    pub data_timeout_secs: u64,
    /// Most simultaneous connections per service. Default 1000.
    pub connections_max: usize,
    /// Most simultaneous connections per service from one IP address. Default 50.
    pub connections_per_ip_max: usize,
}

/// `[smtp] bare_line_ending`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BareLineEnding {
    /// Refuse the message.
    #[default]
    Reject,
    /// Store each bare CR or LF as CRLF.
    Normalize,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        // The protocol limits' defaults are the core's own.
        let limits = proto::Limits::default();
        SmtpConfig {
            message_bytes_max: limits.message_bytes_max,
            recipients_max: limits.recipients_max,
            command_line_bytes_max: limits.command_line_bytes_max,
            text_line_bytes_max: limits.text_line_bytes_max,
            errors_max: limits.errors_max,
            received_fields_max: limits.received_fields_max,
            bare_line_ending: BareLineEnding::Reject,
            command_timeout_secs: 300,
            data_timeout_secs: 300,
            connections_max: 1000,
            connections_per_ip_max: 50,
        }
    }
}

impl SmtpConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// A message naming the bad key.
    pub fn validate(&self) -> Result<(), String> {
        if self.command_line_bytes_max < 512 {
            return Err("[smtp] command_line_bytes_max must be at least 512 (RFC 5321 §4.5.3.1.4)".into());
        }
        if self.text_line_bytes_max < 1000 {
            return Err("[smtp] text_line_bytes_max must be at least 1000 (RFC 5321 §4.5.3.1.6)".into());
        }
        if self.recipients_max < 1 || self.message_bytes_max < 1024 {
            return Err("[smtp] recipients_max must be positive and message_bytes_max at least 1024".into());
        }
        if self.command_timeout_secs == 0 || self.data_timeout_secs == 0 {
            return Err("[smtp] timeouts must be positive".into());
        }
        if self.connections_max == 0 || self.connections_per_ip_max == 0 {
            return Err("[smtp] connections_max and connections_per_ip_max must be positive".into());
        }
        Ok(())
    }

    /// The connection caps.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits { connections_max: self.connections_max, connections_per_ip_max: self.connections_per_ip_max }
    }

    fn limits(&self) -> proto::Limits {
        proto::Limits {
            message_bytes_max: self.message_bytes_max,
            recipients_max: self.recipients_max,
            command_line_bytes_max: self.command_line_bytes_max,
            text_line_bytes_max: self.text_line_bytes_max,
            errors_max: self.errors_max,
            received_fields_max: self.received_fields_max,
        }
    }
}

/// Everything an SMTP service needs.
pub struct SmtpSettings {
    /// Mail exchange (port 25 rules) or submission (RFC 6409).
    pub mode: Mode,
    /// Our host name, in the greeting and `Received:` fields.
    pub hostname: String,
    /// `[smtp]`.
    pub config: SmtpConfig,
    /// Accounts and the store.
    pub directory: Arc<Directory>,
    /// Where AUTH may be used without TLS.
    pub plaintext_auth: PlaintextAuth,
    /// Wait before answering a failed AUTH.
    pub auth_failure_delay: Duration,
    /// Socket settings; `tls` set means STARTTLS is offered. The read timeouts are taken from
    /// `config` by [`SmtpService::new`].
    pub drive: DriveOptions,
}

/// One SMTP listener's service.
pub struct SmtpService {
    settings: SmtpSettings,
}

impl SmtpService {
    /// A service for one listener.
    pub fn new(mut settings: SmtpSettings) -> Arc<SmtpService> {
        settings.drive.idle_timeout = Duration::from_secs(settings.config.command_timeout_secs);
        settings.drive.content_timeout = Duration::from_secs(settings.config.data_timeout_secs);
        Arc::new(SmtpService { settings })
    }
}

impl Service for SmtpService {
    fn refusal(&self, reason: &str) -> Vec<u8> {
        proto::refuse_connection(&self.settings.hostname, &format!("{reason}, try again later"))
    }

    /// Serves one connection until it ends.
    async fn handle(self: Arc<Self>, conn: Accepted) {
        let s = &self.settings;
        let tls = conn.stream.is_tls();
        let config = SessionConfig {
            hostname: s.hostname.clone(),
            mode: s.mode,
            limits: s.config.limits(),
            bare_line_ending: match s.config.bare_line_ending {
                BareLineEnding::Reject => proto::BareLineEnding::Reject,
                BareLineEnding::Normalize => proto::BareLineEnding::Normalize,
            },
            starttls: !tls && s.drive.tls.is_some(),
            tls,
            plaintext_auth: s.plaintext_auth.allows(conn.peer.ip()),
            peer: conn.peer.ip(),
            transcript: tracing::enabled!(target: "tidings::transcript", tracing::Level::DEBUG),
        };
        let mut session = Session::new(config);
        let mut handler = SmtpHandler { service: Arc::clone(&self), authenticated: None, peer: conn.peer };
        tidings_net::drive(conn, &mut session, &mut handler, &s.drive).await;
    }
}

/// Carries out one session's requests.
struct SmtpHandler {
    service: Arc<SmtpService>,
    /// The account that authenticated on this connection.
    authenticated: Option<Address>,
    peer: std::net::SocketAddr,
}

impl Handler<Session> for SmtpHandler {
    async fn handle(&mut self, request: Request) -> Response {
        let settings = &self.service.settings;
        match request {
            Request::Authenticate { authcid, password } => {
                Response::Auth(match settings.directory.authenticate(&authcid, &password).await {
                    Ok(account) => {
                        info!(peer = %self.peer, account = %account.address, "smtp: authenticated");
                        self.authenticated = Some(account.address.clone());
                        AuthVerdict::Ok { account: account.address }
                    }
                    Err(LoginError::Invalid) => {
                        info!(peer = %self.peer, user = authcid, "smtp: authentication failed");
                        tokio::time::sleep(settings.auth_failure_delay).await;
                        AuthVerdict::Invalid
                    }
                    Err(LoginError::Unavailable(e)) => {
                        warn!(error = %e, "smtp: cannot check credentials");
                        AuthVerdict::TempFail
                    }
                })
            }
            Request::CheckSender { address } => {
                let canonical = settings.directory.canonical(&address);
                Response::Sender(self.authenticated.as_ref() == Some(&canonical))
            }
            Request::CheckRecipient { path } => Response::Recipient(match settings.directory.resolve(&path).await {
                Ok(Resolution::Local(address)) => RcptVerdict::Local(address),
                Ok(Resolution::UnknownUser) => RcptVerdict::UnknownUser,
                Ok(Resolution::NotLocal) => RcptVerdict::NotLocal,
                Err(e) => {
                    warn!(error = %e, "smtp: cannot resolve a recipient");
                    RcptVerdict::TempFail
                }
            }),
            Request::Deliver(transaction) => Response::Delivery(self.deliver(transaction).await),
        }
    }
}

impl SmtpHandler {
    /// Prepends the trace fields and stores one copy per recipient; resolves once all are durable.
    async fn deliver(&self, transaction: Transaction) -> DeliveryVerdict {
        let id = queue_id();
        let now = date::now_secs();
        let return_path = match &transaction.reverse_path {
            Some(a) => format!("Return-Path: <{a}>\r\n"),
            None => "Return-Path: <>\r\n".to_owned(),
        };
        let received = transaction.trace.received_field(&id, &date::rfc5322(now));
        let trace = [return_path.as_bytes(), received.as_bytes()].concat();
        // The trace fields go in front of the data in its own buffer (usually within its spare
        // capacity), rather than into a second buffer as large as the message.
        let mut message = transaction.data;
        let data_len = message.len();
        message.resize(data_len + trace.len(), 0);
        message.copy_within(..data_len, trace.len());
        message[..trace.len()].copy_from_slice(&trace);
        let size = message.len();
        let store = self.service.settings.directory.store();
        match store.deliver(&transaction.recipients, INBOX, now, Bytes::from(message)).await {
            Ok(delivered) => {
                if delivered.len() < transaction.recipients.len() {
                    // An account removed between RCPT and the end of DATA: nothing to deliver to.
                    warn!(
                        id,
                        accepted = transaction.recipients.len(),
                        delivered = delivered.len(),
                        "smtp: some recipients no longer exist"
                    );
                }
                info!(
                    id,
                    peer = %self.peer,
                    from = %transaction.reverse_path.as_ref().map_or_else(|| "<>".to_owned(), Address::to_string),
                    recipients = delivered.len(),
                    size,
                    "smtp: delivered"
                );
                DeliveryVerdict::Accepted { id }
            }
            Err(e) if e.is_temporary() => {
                warn!(id, error = %e, "smtp: delivery failed; the client will retry");
                DeliveryVerdict::TempFail { reason: "Local delivery failed, try again later".into() }
            }
            Err(e) => {
                warn!(id, error = %e, "smtp: delivery refused");
                DeliveryVerdict::PermFail { reason: format!("Local delivery failed: {e}") }
            }
        }
    }
}

/// A queue id unique within this process: milliseconds since the epoch and a counter, in hex.
fn queue_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) & 0xFFFF;
    format!("{:011X}{n:04X}", date::now_millis())
}
