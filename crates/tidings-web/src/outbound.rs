//! Mail the HTTP API sends (verification codes, and messages written in the web app), delivered
//! the way submission delivers: each recipient is resolved by the [`Directory`]; local accounts get
//! the message in their INBOX through the store's one write path, and every other address gets it
//! through `[outbound] smarthost`, an SMTP relay (RFC 5321 §2.3.10).
//!
//! Every recipient is resolved before anything is sent, so an unknown local user or an outside
//! address without a smarthost refuses the whole message. The relay is tried before the local
//! copies are stored: a relay that refuses then leaves no local copy behind. A store failure
//! after the relay accepted leaves the outside copies sent (the error says so).
//!
//! [`Directory`]: tidings_store::Directory

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use tidings_client::net::{ConnectOptions, Security, ServerAddress, TlsOptions};
use tidings_client::smtp::SmtpClient;
use tidings_core::{Address, Path, date};
use tidings_store::{Resolution, StoreError};
use tracing::{info, warn};

use crate::Web;
use crate::api::ApiError;

/// How long the smarthost has to accept the connection and greet, seconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long any later reply of the smarthost may take (and sending the message), seconds.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a whole relay transaction may take, from connecting to the reply to the message.
pub const RELAY_TIMEOUT: Duration = Duration::from_secs(120);

/// Where a message went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// Local accounts whose INBOX now holds it (canonical addresses).
    pub local: Vec<Address>,
    /// Outside addresses the smarthost accepted it for.
    pub relayed: Vec<Address>,
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The message has no recipient.
    #[error("no recipients")]
    NoRecipients,
    /// An address in a local domain that names no account (and is no alias of one).
    #[error("no such local user: {0}")]
    UnknownUser(Address),
    /// An outside address, and `[outbound] smarthost` is empty.
    #[error("cannot send mail to {0}: this node has no smarthost for other domains")]
    NoSmarthost(Address),
    /// The smarthost could not be reached, did not answer in time, or refused the message. The
    /// text (the relay's address and reply) is for the log: it never reaches a client.
    #[error("the smarthost did not take the message: {0}")]
    Smarthost(String),
    /// The store could not resolve a recipient or keep the local copies.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a client is told when the smarthost fails: nothing about the relay (its address, its
/// replies), which are logged instead.
pub const SMARTHOST_MESSAGE: &str = "the mail relay did not take the message; try again later";

impl From<SendError> for ApiError {
    /// `400` for no recipients; `422 undeliverable` for an unknown local user or an outside
    /// address without a smarthost; `502 smarthost` with [`SMARTHOST_MESSAGE`] (the details are
    /// logged, not answered); the store's failures as `503`.
    fn from(e: SendError) -> ApiError {
        match e {
            SendError::NoRecipients => ApiError::bad_request(e.to_string()),
            SendError::UnknownUser(_) | SendError::NoSmarthost(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "undeliverable", e.to_string())
            }
            SendError::Smarthost(_) => ApiError::new(StatusCode::BAD_GATEWAY, "smarthost", SMARTHOST_MESSAGE),
            SendError::Store(e) => ApiError::unavailable(&e),
        }
    }
}

/// Sends `message` (complete RFC 5322 octets, CRLF line ends) to `recipients`, with `from` as the
/// envelope sender (`None`: the null reverse-path `<>`, for automated mail that must not be
/// answered with a bounce, RFC 5321 §4.5.5). A `Received:` trace field naming this node is put in
/// front (RFC 5321 §4.4). Duplicate recipients get one copy.
///
/// Local recipients are delivered with one store op per shard, durable when this returns; outside
/// ones go to `[outbound] smarthost` in one SMTP transaction (STARTTLS when the relay offers it;
/// connect within [`CONNECT_TIMEOUT`], each reply within [`IO_TIMEOUT`], all within
/// [`RELAY_TIMEOUT`]).
///
/// # Errors
/// [`SendError`]: nothing is sent when a recipient is unknown or cannot be reached without a
/// smarthost.
pub async fn send(
    web: &Web,
    from: Option<&Address>,
    recipients: &[Address],
    message: Bytes,
) -> Result<Sent, SendError> {
    if recipients.is_empty() {
        return Err(SendError::NoRecipients);
    }
    let mut sent = Sent::default();
    for rcpt in recipients {
        match web.directory.resolve(&Path::Mailbox(rcpt.clone())).await? {
            Resolution::Local(account) => push_new(&mut sent.local, account),
            Resolution::UnknownUser => return Err(SendError::UnknownUser(rcpt.clone())),
            Resolution::NotLocal if web.outbound.smarthost.is_empty() => {
                return Err(SendError::NoSmarthost(rcpt.clone()));
            }
            Resolution::NotLocal => push_new(&mut sent.relayed, rcpt.clone()),
        }
    }
    let now = date::now_secs();
    let mut octets = received_field(&web.hostname, now).into_bytes();
    octets.extend_from_slice(&message);
    let octets = Bytes::from(octets);
    if !sent.relayed.is_empty() {
        relay(web, from, &sent.relayed, &octets).await?;
        info!(recipients = sent.relayed.len(), smarthost = web.outbound.smarthost, "api: mail relayed");
    }
    if !sent.local.is_empty() {
        web.directory.store().deliver(&sent.local, "INBOX", now, octets).await?;
    }
    Ok(sent)
}

fn push_new(list: &mut Vec<Address>, address: Address) {
    if !list.contains(&address) {
        list.push(address);
    }
}

/// The `Received:` field this node adds to mail the API sends (RFC 5321 §4.4: the message came
/// from the HTTP API, not from an SMTP client).
fn received_field(hostname: &str, now_secs: i64) -> String {
    format!("Received: from web (tidings HTTP API)\r\n\tby {hostname} with HTTP;\r\n\t{}\r\n", date::rfc5322(now_secs))
}

/// The TLS settings for STARTTLS to the smarthost: the relay's certificate is not verified. The
/// smarthost is a relay the operator configured (typically on loopback or the local network),
/// so TLS here keeps passive listeners out; it does not authenticate the relay.
fn relay_tls() -> Result<Arc<rustls::ClientConfig>, String> {
    static TLS: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    TLS.get_or_init(|| {
        tidings_client::net::tls_config(&TlsOptions { ca_file: None, insecure: true }).map_err(|e| format!("{e:#}"))
    })
    .clone()
}

/// One SMTP transaction with the smarthost. Every failure is logged at `warn` with the relay's
/// address and the reason (its reply, if any).
async fn relay(web: &Web, from: Option<&Address>, recipients: &[Address], message: &[u8]) -> Result<(), SendError> {
    let smarthost = &web.outbound.smarthost;
    let setup = |e: String| {
        warn!(smarthost, error = e, "api: cannot set up the connection to the smarthost");
        SendError::Smarthost(format!("{smarthost}: {e}"))
    };
    let primary: ServerAddress = smarthost.parse().map_err(|e| setup(format!("{e:#}")))?;
    let options = ConnectOptions {
        primary,
        backup: None,
        connect_timeout: CONNECT_TIMEOUT,
        io_timeout: IO_TIMEOUT,
        security: Security::StartTls,
        tls: relay_tls().map_err(setup)?,
        allow_plaintext: false,
    };
    let transaction = async {
        let mut client = SmtpClient::connect(&options, &web.hostname).await?;
        client.send_with_reverse_path(from, recipients, message).await?;
        client.quit().await;
        anyhow::Ok(())
    };
    match tokio::time::timeout(RELAY_TIMEOUT, transaction).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            warn!(smarthost, error = format!("{e:#}"), "api: the smarthost did not take a message");
            Err(SendError::Smarthost(format!("{smarthost}: {e:#}")))
        }
        Err(_) => {
            warn!(smarthost, "api: the smarthost did not finish in time");
            Err(SendError::Smarthost(format!("{smarthost}: no answer within {} s", RELAY_TIMEOUT.as_secs())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_received_field_is_a_folded_trace_field() {
        let field = received_field("mail.example.org", 0);
        assert!(field.starts_with("Received: from web (tidings HTTP API)\r\n\tby mail.example.org with HTTP;\r\n\t"));
        assert!(field.ends_with("1970 00:00:00 +0000\r\n"), "{field}");
        assert!(field.lines().all(|l| l.len() < 78));
    }

    #[test]
    fn errors_map_to_api_statuses() {
        let a = Address::from_parts("a", "example.org");
        assert_eq!(ApiError::from(SendError::NoSmarthost(a.clone())).status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(ApiError::from(SendError::UnknownUser(a)).code, "undeliverable");
        let relay = ApiError::from(SendError::Smarthost("10.0.0.5:25: 554 5.7.1 relay denied for 192.0.2.1".into()));
        assert_eq!((relay.status, relay.code), (StatusCode::BAD_GATEWAY, "smarthost"));
        assert_eq!(relay.message, SMARTHOST_MESSAGE, "nothing about the relay reaches the client");
        assert_eq!(ApiError::from(SendError::Store(StoreError::Overloaded)).status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
