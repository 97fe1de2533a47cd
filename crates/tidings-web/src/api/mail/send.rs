//! `POST /api/v1/mail/send`: a message written in the web app, built as the mail client builds
//! one ([`tidings_client::mime::build`]), delivered as submission delivers ([`crate::outbound`]),
//! and kept in the account's Sent folder. A reply carries `In-Reply-To:` and `References:` and
//! marks the original `\Answered`; a forward carries the original's attachments.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tidings_client::mime::{self, Attachment, Draft, Mailbox};
use tidings_core::{Address, Flags, Op, Outcome, SystemFlag, date};
use utoipa::ToSchema;

use super::render;
use super::{Role, folder_name, folder_with_role, store, store_error};
use crate::Web;
use crate::api::auth::Authenticated;
use crate::api::limit::Counter;
use crate::api::{ApiError, Body, ErrorBody};

/// Most recipients (`to` and `cc` together).
pub const RECIPIENTS_MAX: usize = 100;

/// The window of `[web] recipients_per_hour`.
const SEND_WINDOW: Duration = Duration::from_secs(3600);

/// How many recipients each account has sent to through the API within the hour: what keeps a
/// signed-up account from turning the node (and its smarthost) into a bulk mailer.
#[derive(Default)]
pub struct SendBudget {
    by_account: Mutex<Counter<Address>>,
}

impl SendBudget {
    /// Takes `recipients` from `account`'s budget of `per_hour`, or gives the seconds until its
    /// window ends.
    pub fn take(&self, account: &Address, recipients: u32, per_hour: u32, now: Instant) -> Result<(), u64> {
        let mut counter = self.by_account.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(secs) = counter.over_by(account, recipients, per_hour, SEND_WINDOW, now) {
            return Err(secs);
        }
        counter.bump_by(account.clone(), recipients, SEND_WINDOW, now);
        Ok(())
    }
}
/// Most attachments.
pub const ATTACHMENTS_MAX: usize = 100;
/// Longest subject, octets.
pub const SUBJECT_BYTES_MAX: usize = 998;
/// Longest attachment file name, octets.
pub const FILENAME_BYTES_MAX: usize = 255;

/// A file to attach.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAttachment {
    /// The file name (no directory).
    pub filename: String,
    /// `type/subtype` (default: guessed from the file name); one that is longer than 127 octets or
    /// malformed is sent as `application/octet-stream`. A `text/*` file in UTF-8 is labelled
    /// `charset=utf-8`.
    pub content_type: Option<String>,
    /// The content, base64 (RFC 4648 §4).
    pub data_base64: String,
}

/// A message of the account's, by folder and UID.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRef {
    /// The folder's full name.
    pub folder: String,
    /// The UID.
    pub uid: u32,
}

/// `POST /api/v1/mail/send`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// `To:` recipients: `addr@example.org` or `Name <addr@example.org>`.
    pub to: Vec<String>,
    /// `Cc:` recipients.
    #[serde(default)]
    pub cc: Vec<String>,
    /// The subject: one line.
    #[serde(default)]
    pub subject: String,
    /// The text body.
    #[serde(default)]
    pub text: String,
    /// Files to attach.
    #[serde(default)]
    pub attachments: Vec<NewAttachment>,
    /// The message this answers: the new one gets `In-Reply-To:` and `References:`, and the
    /// original is marked `\Answered`.
    pub reply_to: Option<MessageRef>,
    /// The message this forwards: its attachments are attached too.
    pub forward_of: Option<MessageRef>,
}

/// A message sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct SentMessage {
    /// Its `Message-ID:`, with angle brackets.
    pub message_id: String,
    /// Local accounts that received it.
    pub delivered: Vec<String>,
    /// Outside addresses the smarthost accepted it for.
    pub relayed: Vec<String>,
    /// The copy kept: the Sent folder and its UID there (null when it could not be kept).
    pub sent_copy: Option<SentCopy>,
}

/// Where the sent copy is.
#[derive(Debug, Serialize, ToSchema)]
pub struct SentCopy {
    /// The folder.
    pub folder: String,
    /// The UID.
    pub uid: u32,
}

fn mailboxes(list: &[String], field: &str) -> Result<Vec<Mailbox>, ApiError> {
    list.iter()
        .map(|text| Mailbox::from_str(text).map_err(|e| ApiError::bad_request(format!("{field}: {e:#}"))))
        .collect()
}

fn attachment(new: &NewAttachment) -> Result<Attachment, ApiError> {
    // Bidi controls could make the name display other than it is: they go.
    let filename: String = new.filename.chars().filter(|&c| !render::is_bidi_control(c)).collect();
    let filename = filename.trim();
    if filename.is_empty()
        || filename.len() > FILENAME_BYTES_MAX
        || filename.chars().any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(ApiError::bad_request(format!(
            "an attachment's file name is 1 to {FILENAME_BYTES_MAX} octets without control characters or slashes"
        )));
    }
    let data = BASE64
        .decode(new.data_base64.as_bytes())
        .map_err(|e| ApiError::bad_request(format!("attachment {filename:?}: data_base64 is not base64: {e}")))?;
    let content_type = new.content_type.clone().unwrap_or_else(|| mime::content_type_for(filename).to_owned());
    Ok(Attachment { filename: filename.to_owned(), content_type, data })
}

/// `413 too_large` when `bytes` (a message's content so far, or the message built) is over the
/// node's message size limit (`[smtp] message_bytes_max`).
fn within_limit(bytes: usize, message_bytes_max: usize) -> Result<(), ApiError> {
    if bytes > message_bytes_max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the message is too large: at most {message_bytes_max} octets"),
        ));
    }
    Ok(())
}

async fn original(web: &Web, account: &Address, reference: &MessageRef) -> Result<(String, Bytes), ApiError> {
    let folder = folder_name(&reference.folder)?;
    match store(web).message(account, &folder, reference.uid).await? {
        Some(raw) => Ok((folder, raw)),
        None => Err(ApiError::not_found(format!("no message {} in {folder:?}", reference.uid))),
    }
}

/// Builds, sends and keeps a message: to local accounts straight into their INBOX, to other
/// addresses through `[outbound] smarthost`; a copy goes to the Sent folder (created when
/// missing) marked `\Seen`. The text and the decoded attachments (the forwarded ones included),
/// and then the message built, must be within `[smtp] message_bytes_max` (else `413 too_large`).
#[utoipa::path(post, path = "/api/v1/mail/send", tag = "mail", request_body = SendRequest,
    security(("session_cookie" = []), ("bearer_token" = [])),
    responses(
        (status = 200, description = "Sent", body = SentMessage),
        (status = 400, description = "No recipients, too many, a bad address, subject or attachment", body = ErrorBody),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 403, description = "A cookie session without its CSRF token", body = ErrorBody),
        (status = 404, description = "The message replied to or forwarded is not there", body = ErrorBody),
        (status = 413, description = "Body too large, or the message over the node's size limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "An unknown local user, or an outside address and no smarthost", body = ErrorBody),
        (status = 429, description = "Over [web] recipients_per_hour for the account", body = ErrorBody),
        (status = 502, description = "The smarthost refused the message or did not answer", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn send(
    State(web): State<Arc<Web>>,
    auth: Authenticated,
    Body(request): Body<SendRequest>,
) -> Result<axum::Json<SentMessage>, ApiError> {
    if request.to.len() + request.cc.len() > RECIPIENTS_MAX {
        return Err(ApiError::bad_request(format!("at most {RECIPIENTS_MAX} recipients")));
    }
    let to = mailboxes(&request.to, "to")?;
    let cc = mailboxes(&request.cc, "cc")?;
    if to.is_empty() && cc.is_empty() {
        return Err(ApiError::bad_request("give at least one recipient in \"to\" or \"cc\""));
    }
    if request.subject.len() > SUBJECT_BYTES_MAX || request.subject.contains(['\r', '\n', '\0']) {
        return Err(ApiError::bad_request(format!("the subject is one line of at most {SUBJECT_BYTES_MAX} octets")));
    }
    if request.text.contains('\0') {
        return Err(ApiError::bad_request("the text must not contain NUL"));
    }
    if request.attachments.len() > ATTACHMENTS_MAX {
        return Err(ApiError::bad_request(format!("at most {ATTACHMENTS_MAX} attachments")));
    }
    let recipients = (request.to.len() + request.cc.len()) as u32;
    if let Err(secs) = web.sends.take(&auth.account, recipients, web.config.recipients_per_hour, Instant::now()) {
        let message = format!("at most {} recipients an hour; try again later", web.config.recipients_per_hour);
        return Err(ApiError::rate_limited(message, secs));
    }
    let mut attachments = request.attachments.iter().map(attachment).collect::<Result<Vec<_>, _>>()?;
    let mut content_bytes = request.text.len() + attachments.iter().map(|a| a.data.len()).sum::<usize>();
    within_limit(content_bytes, web.message_bytes_max)?;
    let account = &auth.account;

    let mut draft = Draft {
        from: Mailbox { name: None, address: account.clone() },
        to,
        cc,
        subject: request.subject.clone(),
        body: request.text.clone(),
        ..Draft::default()
    };
    let answered = match &request.reply_to {
        Some(reference) => {
            let (folder, raw) = original(&web, account, reference).await?;
            let original = tokio::task::spawn_blocking(move || render::original(&raw)).await.unwrap_or_default();
            if let Some(id) = original.message_id {
                draft.references = original.references;
                draft.references.push(id.clone());
                let keep = draft.references.len().saturating_sub(20);
                draft.references.drain(..keep);
                draft.in_reply_to = Some(id);
            }
            Some((folder, reference.uid))
        }
        None => None,
    };
    if let Some(reference) = &request.forward_of {
        let (_, raw) = original(&web, account, reference).await?;
        let original = tokio::task::spawn_blocking(move || render::original(&raw)).await.unwrap_or_default();
        content_bytes += original.attachments.iter().map(|a| a.data.len()).sum::<usize>();
        within_limit(content_bytes, web.message_bytes_max)?;
        attachments.extend(original.attachments.into_iter().map(|a| Attachment {
            filename: a.filename,
            content_type: a.content_type.split(';').next().unwrap_or("application/octet-stream").trim().to_owned(),
            data: a.data,
        }));
    }
    draft.attachments = attachments;

    let now_ms = date::now_millis();
    let message_id = mime::message_id(&web.hostname, now_ms);
    let octets = Bytes::from(mime::build(&draft, now_ms.div_euclid(1000), &message_id));
    within_limit(octets.len(), web.message_bytes_max)?;
    let mut recipients: Vec<Address> = Vec::new();
    for mailbox in draft.to.iter().chain(&draft.cc) {
        if !recipients.contains(&mailbox.address) {
            recipients.push(mailbox.address.clone());
        }
    }
    let sent = crate::outbound::send(&web, Some(account), &recipients, octets.clone()).await?;

    let store = store(&web);
    if let Some((folder, uid)) = answered {
        let mut flags = Flags::new();
        flags.set(SystemFlag::Answered, true);
        let op = Op::SetFlags {
            address: account.clone(),
            mailbox: folder,
            uids: vec![uid],
            change: tidings_core::FlagChange::Add,
            flags,
        };
        if let Err(e) = store.apply(account, op).await {
            tracing::warn!(%account, error = %e, "web: the answered message was not marked \\Answered");
        }
    }
    let sent_copy = match keep_copy(&web, account, octets, now_ms.div_euclid(1000)).await {
        Ok(copy) => Some(copy),
        Err(e) => {
            tracing::warn!(%account, error = %e.message, "web: no copy of a sent message kept");
            None
        }
    };
    Ok(axum::Json(SentMessage {
        message_id,
        delivered: sent.local.iter().map(ToString::to_string).collect(),
        relayed: sent.relayed.iter().map(ToString::to_string).collect(),
        sent_copy,
    }))
}

async fn keep_copy(web: &Web, account: &Address, octets: Bytes, now_secs: i64) -> Result<SentCopy, ApiError> {
    let store = store(web);
    let folder = folder_with_role(store, account, Role::Sent).await?;
    let mut flags = Flags::new();
    flags.set(SystemFlag::Seen, true);
    let op = Op::Append {
        address: account.clone(),
        mailbox: folder.clone(),
        flags,
        internal_date: now_secs,
        message: octets,
    };
    match store.apply(account, op).await.map_err(store_error)? {
        Outcome::Appended { uid, .. } => Ok(SentCopy { folder, uid }),
        _ => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the copy was not kept")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_lose_bidi_controls() {
        let new = |filename: &str| NewAttachment {
            filename: filename.into(),
            content_type: None,
            data_base64: BASE64.encode(b"MZ"),
        };
        let a = attachment(&new("invoice\u{202E}fdp.exe")).unwrap();
        assert_eq!((a.filename.as_str(), a.content_type.as_str()), ("invoicefdp.exe", "application/octet-stream"));
        assert_eq!(attachment(&new("\u{2066}a.txt\u{2069}\u{200E}")).unwrap().filename, "a.txt");
        assert!(attachment(&new("\u{202E}\u{200F}")).is_err(), "nothing left");
        assert!(attachment(&new("a/b.txt")).is_err());
    }
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn an_accounts_recipients_are_counted_over_the_hour() {
        let budget = SendBudget::default();
        let (alice, bob) = (Address::from_parts("alice", "example.org"), Address::from_parts("bob", "example.org"));
        let now = Instant::now();
        assert_eq!(budget.take(&alice, 6, 10, now), Ok(()));
        assert_eq!(budget.take(&alice, 4, 10, now), Ok(()));
        let wait = budget.take(&alice, 1, 10, now + Duration::from_secs(600)).unwrap_err();
        assert_eq!(wait, 3000, "the seconds left of the hour");
        assert_eq!(budget.take(&bob, 10, 10, now), Ok(()), "each account has its own");
        assert_eq!(budget.take(&alice, 10, 10, now + SEND_WINDOW), Ok(()), "a new hour");
    }
}
