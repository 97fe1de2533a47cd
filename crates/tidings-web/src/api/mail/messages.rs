//! Messages in a folder: pages of summaries, one message (JSON, or its HTML as a page for a
//! sandboxed frame), attachment downloads, flags, moving, deleting, and searching.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tidings_core::{Address, FlagChange, Flags, MessageMeta, Op, Outcome, StoredMessage, SystemFlag};
use tidings_store::Store;
use utoipa::{IntoParams, ToSchema};

use super::render::{self, MessageView, Seen, Summary};
use super::{PathParams, Role, folder_name, folder_with_role, role, store, store_error};
use crate::Web;
use crate::api::auth::Authenticated;
use crate::api::{ApiError, Body, ErrorBody, Params};

/// Summaries per page by default.
pub const PER_PAGE_DEFAULT: usize = 50;
/// Most summaries per page.
pub const PER_PAGE_MAX: usize = 200;
/// Messages read from the store at once while building a page or searching.
const BATCH: usize = 16;
/// Most results of a search.
pub const SEARCH_RESULTS_MAX: usize = 100;
/// Most messages a search looks at (the newest of each folder first).
pub const SEARCH_SCAN_MAX: usize = 5_000;
/// Octets of each message a search reads and looks in: its first 1 MiB (header and the text that
/// comes first; text past it is not searched).
pub const SEARCH_MESSAGE_BYTES_MAX: usize = 1024 * 1024;
/// Most octets one search reads in all (each message counting as the part of it that is read,
/// at most [`SEARCH_MESSAGE_BYTES_MAX`]): 256 MiB. A search stops (`truncated`) past it.
pub const SEARCH_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Longest search text, characters.
pub const SEARCH_TEXT_MAX: usize = 200;

fn flags_of(meta: &MessageMeta) -> Seen {
    Seen {
        seen: meta.flags.has(SystemFlag::Seen),
        flagged: meta.flags.has(SystemFlag::Flagged),
        answered: meta.flags.has(SystemFlag::Answered),
    }
}

fn no_message(folder: &str, uid: u32) -> ApiError {
    ApiError::not_found(format!("no message {uid} in {folder:?}"))
}

/// Reads the first `bytes_max` octets of messages, [`BATCH`] at a time, and maps each (on a
/// blocking thread) until `keep` refuses one.
async fn each_message<T: Send + 'static>(
    store: &Arc<dyn Store>,
    account: &Address,
    folder: &str,
    uids: &[u32],
    bytes_max: usize,
    mut keep: impl FnMut(&T) -> bool,
    map: impl Fn(&StoredMessage) -> Option<T> + Send + Sync + Clone + 'static,
) -> Result<Vec<T>, ApiError> {
    let mut out = Vec::new();
    for chunk in uids.chunks(BATCH) {
        let Some(messages) = store.message_prefixes(account, folder, chunk.to_vec(), bytes_max).await? else {
            return Err(ApiError::not_found(format!("no folder {folder:?}")));
        };
        let map = map.clone();
        let mapped = tokio::task::spawn_blocking(move || messages.iter().filter_map(map).collect::<Vec<T>>())
            .await
            .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "try again later"))?;
        for item in mapped {
            if !keep(&item) {
                return Ok(out);
            }
            out.push(item);
        }
    }
    Ok(out)
}

fn summary_of(folder: &str, stored: &StoredMessage) -> Option<Summary> {
    let meta = &stored.meta;
    let raw = stored.content.as_deref()?;
    Some(render::summary(folder, meta.uid, raw, meta.size, meta.internal_date, flags_of(meta)))
}

/// `?page=&per_page=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// From 1 (default 1).
    #[param(minimum = 1)]
    pub page: Option<usize>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub per_page: Option<usize>,
}

/// A page of a folder's messages, newest (highest UID) first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    /// The folder.
    pub folder: String,
    /// Messages in the folder.
    pub total: usize,
    /// This page's number, from 1.
    pub page: usize,
    /// Page size.
    pub per_page: usize,
    /// Pages in all (at least 1).
    pub pages: usize,
    /// The page's messages.
    pub messages: Vec<Summary>,
}

/// A page of a folder's messages, newest first.
#[utoipa::path(get, path = "/api/v1/mail/folders/{folder}/messages", tag = "mail",
    params(("folder" = String, Path, description = "The folder's full name, percent-encoded as one segment"), PageQuery),
    security(("session_cookie" = []), ("bearer_token" = [])),
    responses(
        (status = 200, description = "The page", body = MessagePage),
        (status = 400, description = "Bad folder name or paging", body = ErrorBody),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 404, description = "No such folder", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn list_messages(
    State(web): State<Arc<Web>>,
    auth: Authenticated,
    PathParams((folder,)): PathParams<(String,)>,
    Params(query): Params<PageQuery>,
) -> Result<axum::Json<MessagePage>, ApiError> {
    let folder = folder_name(&folder)?;
    let page = query.page.unwrap_or(1);
    let per_page = query.per_page.unwrap_or(PER_PAGE_DEFAULT);
    if page == 0 || per_page == 0 || per_page > PER_PAGE_MAX {
        return Err(ApiError::bad_request(format!("page is from 1; per_page is 1 to {PER_PAGE_MAX}")));
    }
    let store = store(&web);
    let Some(snapshot) = store.snapshot(&auth.account, &folder).await? else {
        return Err(ApiError::not_found(format!("no folder {folder:?}")));
    };
    let total = snapshot.messages.len();
    let newest_first: Vec<u32> = snapshot.messages.iter().rev().map(|m| m.uid).collect();
    let uids = &newest_first[render::page_range(total, page, per_page)];
    let name = folder.clone();
    let messages = each_message(
        store,
        &auth.account,
        &folder,
        uids,
        render::SUMMARY_PARSE_BYTES_MAX,
        |_| true,
        move |m| summary_of(&name, m),
    )
    .await?;
    Ok(axum::Json(MessagePage { folder, total, page, per_page, pages: render::page_count(total, per_page), messages }))
}

/// Whether remote images are loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Images {
    /// Removed (default).
    #[default]
    Block,
    /// Kept.
    Allow,
}

/// `?images=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImagesQuery {
    /// `allow` keeps remote images in the HTML; `block` (default) removes them.
    pub images: Option<Images>,
}

/// The stored message and its metadata; `404` when it is not there.
async fn load(
    store: &Arc<dyn Store>,
    account: &Address,
    folder: &str,
    uid: u32,
) -> Result<(MessageMeta, bytes::Bytes), ApiError> {
    let Some(mut found) = store.messages(account, folder, vec![uid], true).await? else {
        return Err(ApiError::not_found(format!("no folder {folder:?}")));
    };
    match found.pop() {
        Some(StoredMessage { meta, content: Some(content) }) => Ok((meta, content)),
        _ => Err(no_message(folder, uid)),
    }
}

async fn set_flag(
    store: &Arc<dyn Store>,
    account: &Address,
    folder: &str,
    uid: u32,
    flag: SystemFlag,
    on: bool,
) -> Result<Option<Flags>, ApiError> {
    let mut flags = Flags::new();
    flags.set(flag, true);
    let op = Op::SetFlags {
        address: account.clone(),
        mailbox: folder.to_owned(),
        uids: vec![uid],
        change: if on { FlagChange::Add } else { FlagChange::Remove },
        flags,
    };
    match store.apply(account, op).await.map_err(store_error)? {
        Outcome::FlagsSet(metas) => Ok(metas.into_iter().find(|m| m.uid == uid).map(|m| m.flags)),
        _ => Ok(None),
    }
}

/// One message: headers, text, sanitised HTML and attachments. Reading it marks it `\Seen`.
#[utoipa::path(get, path = "/api/v1/mail/folders/{folder}/messages/{uid}", tag = "mail",
    params(
        ("folder" = String, Path, description = "The folder's full name, percent-encoded as one segment"),
        ("uid" = u32, Path, description = "The message's UID in the folder"),
        ImagesQuery,
    ),
    security(("session_cookie" = []), ("bearer_token" = [])),
    responses(
        (status = 200, description = "The message", body = MessageView),
        (status = 400, description = "Bad folder name or UID", body = ErrorBody),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 404, description = "No such folder or message", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn read_message(
    State(web): State<Arc<Web>>,
    auth: Authenticated,
    PathParams((folder, uid)): PathParams<(String, u32)>,
    Params(query): Params<ImagesQuery>,
) -> Result<axum::Json<MessageView>, ApiError> {
    let folder = folder_name(&folder)?;
    let store = store(&web);
    let (meta, raw) = load(store, &auth.account, &folder, uid).await?;
    let mut flags = flags_of(&meta);
    if !flags.seen {
        set_flag(store, &auth.account, &folder, uid, SystemFlag::Seen, true).await?;
        flags.seen = true;
    }
    let allow = query.images.unwrap_or_default() == Images::Allow;
    let name = folder.clone();
    let view = tokio::task::spawn_blocking(move || render::view(uid, &name, &raw, meta.internal_date, flags, allow))
        .await
        .ok()
        .flatten()
        .ok_or_else(|| no_message(&folder, uid))?;
    Ok(axum::Json(view))
}

/// The message's sanitised HTML (or its text, escaped, when it has none) as a page for a
/// sandboxed frame, under its own Content-Security-Policy (`sandbox`; inline styles and `data:`
/// images only, remote images too with `images=allow`; framable by this origin only).
#[utoipa::path(get, path = "/api/v1/mail/folders/{folder}/messages/{uid}/html", tag = "mail",
    params(
        ("folder" = String, Path, description = "The folder's full name, percent-encoded as one segment"),
        ("uid" = u32, Path, description = "The message's UID in the folder"),
        ImagesQuery,
    ),
    security(("session_cookie" = []), ("bearer_token" = [])),
    responses(
        (status = 200, description = "The HTML page", content_type = "text/html", body = String),
        (status = 400, description = "Bad folder name or UID", body = ErrorBody),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 404, description = "No such folder or message", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn html_view(
    State(web): State<Arc<Web>>,
    auth: Authenticated,
    PathParams((folder, uid)): PathParams<(String, u32)>,
    Params(query): Params<ImagesQuery>,
) -> Result<Response, ApiError> {
    let folder = folder_name(&folder)?;
    let (meta, raw) = load(store(&web), &auth.account, &folder, uid).await?;
    let allow = query.images.unwrap_or_default() == Images::Allow;
    let name = folder.clone();
    let view =
        tokio::task::spawn_blocking(move || render::view(uid, &name, &raw, meta.internal_date, flags_of(&meta), allow))
            .await
            .ok()
            .flatten()
            .ok_or_else(|| no_message(&folder, uid))?;
    let body = match view.html {
        Some(html) => html,
        None => format!("<pre style=\"white-space: pre-wrap\">{}</pre>", escape(&view.text)),
    };
    let mut response = render::html_page(&body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    if let Ok(policy) = HeaderValue::from_str(&render::html_view_policy(allow)) {
        h.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    Ok(response)
}

/// Text with `&`, `<`, `>`, `"` and `'` escaped for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One attachment's decoded content, as a download (`Content-Disposition: attachment`; types a
/// browser would render as a page are served as `application/octet-stream`).
#[utoipa::path(get, path = "/api/v1/mail/folders/{folder}/messages/{uid}/attachments/{index}", tag = "mail",
    params(
        ("folder" = String, Path, description = "The folder's full name, percent-encoded as one segment"),
        ("uid" = u32, Path, description = "The message's UID in the folder"),
        ("index" = usize, Path, description = "The attachment's index, from 0, as the message lists them"),
    ),
    security(("session_cookie" = []), ("bearer_token" = [])),
    responses(
        (status = 200, description = "The attachment: its own type, or application/octet-stream", content_type = "*/*", body = Vec<u8>),
        (status = 400, description = "Bad folder name, UID or index", body = ErrorBody),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 404, description = "No such folder, message or attachment", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn download_attachment(
    State(web): State<Arc<Web>>,
    auth: Authenticated,
    PathParams((folder, uid, index)): PathParams<(String, u32, usize)>,
) -> Result<Response, ApiError> {
    let folder = folder_name(&folder)?;
    let (_, raw) = load(store(&web), &auth.account, &folder, uid).await?;
    let attachment = tokio::task::spawn_blocking(move || render::attachment(&raw, index))
        .await
        .ok()
        .flatten()
        .ok_or_else(|| ApiError::not_found(format!("message {uid} has no attachment {index}")))?;
    let mut response = attachment.data.into_response();
    let h = response.headers_mut();
    let content_type = render::download_type(&attachment.content_type);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(value) = HeaderValue::from_str(&render::content_disposition(&attachment.filename)) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    Ok(response)
}

/// `PATCH /api/v1/mail/folders/{folder}/messages/{uid}`: the flags to set or clear.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagUpdate {
    /// `\Seen`.
    pub seen: Option<bool>,
    /// `\Flagged`.
    pub flagged: Option<bool>,
}

/// A message's flags after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlagState {
    /// The UID.
    pub uid: u32,
    /// `\Seen`.
    pub seen: bool,
    /// `\Flagged`.
    pub flagged: bool,
    /// `\Answered`.
    pub answered: bool,
}

/// Sets or clears `\Seen` and `\Flagged`.
#[utoipa::path(patch, path = "/api/v1/mail/folders/{folder}/messages/{uid}", tag = "mail", request_body = FlagUpdate,
    params(
        ("folder" = String, Path, description = "The folder's full name, percent-encoded as one segment"),
        ("uid" = u32, Path, description = "The message's UID in the folder"),
    ),
    security(("session_cookie" = []), ("bearer_token" = [])),
    responses(
        (status = 200, description = "The flags now", body = FlagState),
        (status = 400, description = "Bad folder name, UID or body", body = ErrorBody),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 403, description = "A cookie session without its CSRF token", body = ErrorBody),
        (status = 404, description = "No such folder or message", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn update_flags(
    State(web): State<Arc<Web>>,
    auth: Authenticated,
    PathParams((folder, uid)): PathParams<(String, u32)>,
    Body(update): Body<FlagUpdate>,
) -> Result<axum::Json<FlagState>, ApiError> {
    let folder = folder_name(&folder)?;
    let store = store(&web);
    let Some(mut found) = store.messages(&auth.account, &folder, vec![uid], false).await? else {
        return Err(ApiError::not_found(format!("no folder {folder:?}")));
    };
    let mut flags = found.pop().map(|m| m.meta.flags).ok_or_else(|| no_message(&folder, uid))?;
    for (flag, wanted) in [(SystemFlag::Seen, update.seen), (SystemFlag::Flagged, update.flagged)] {
        if let Some(on) = wanted
            && flags.has(flag) != on
        {
            flags = set_flag(store, &auth.account, &folder, uid, flag, on)
                .await?
                .ok_or_else(|| no_message(&folder, uid))?;
        }
    }
    Ok(axum::Json(FlagState {
        uid,
        seen: flags.has(SystemFlag::Seen),
        flagged: flags.has(SystemFlag::Flagged),
        answered: flags.has(SystemFlag::Answered),
    }))
}

/// `POST …/move`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    /// The destination folder's full name.
    pub to: String,
}

/// Where a message went.
#[derive(Debug, Serialize, ToSchema)]
pub struct Moved {
    /// The folder it is in now.
    pub folder: String,
    /// Its UID there.
    pub uid: u32,
}

async fn move_to(store: &Arc<dyn Store>, account: &Address, from: &str, to: &str, uid: u32) -> Result<Moved, ApiError> {
    let op =
        Op::Copy { address: account.clone(), from: from.to_owned(), to: to.to_owned(), uids: vec![uid], remove: true };
    match store.apply(account, op).await.map_err(store_error)? {
        Outcome::Copied { pairs, .. } => pairs
            .into_iter()
            .find(|(old, _)| *old == uid)
            .map(|(_, new)| Moved { folder: to.to_owned(), uid: new })
            .ok_or_else(|| no_message(from, uid)),
        _ => Err(no_message(from, uid)),
    }
}

/// Moves a message to another folder (it gets a new UID there).
#[utoipa::path(post, path = "/api/v1/mail/folders/{folder}/messages/{uid}/move", tag = "mail", request_body = MoveRequest,
    params(
        ("folder" = String, Path, description = "The folder's full name, percent-encoded as one segment"),
        ("uid" = u32, Path, description = "The message's UID in the folder"),
    ),
    security(("session_cookie" = []), ("bearer_token" = [])),
    responses(
        (status = 200, description = "Moved", body = Moved),
        (status = 400, description = "Bad folder name or UID, or the same folder", body = ErrorBody),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 403, description = "A cookie session without its CSRF token", body = ErrorBody),
        (status = 404, description = "No such folder or message", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn move_message(
    State(web): State<Arc<Web>>,
    auth: Authenticated,
    PathParams((folder, uid)): PathParams<(String, u32)>,
    Body(request): Body<MoveRequest>,
) -> Result<axum::Json<Moved>, ApiError> {
    let from = folder_name(&folder)?;
    let to = folder_name(&request.to)?;
    if from == to {
        return Err(ApiError::bad_request("the message is in that folder already"));
    }
    Ok(axum::Json(move_to(store(&web), &auth.account, &from, &to, uid).await?))
}

/// Deletes a message: moves it to the Trash folder (created when missing); from Trash, removes it
/// for good.
#[utoipa::path(delete, path = "/api/v1/mail/folders/{folder}/messages/{uid}", tag = "mail",
    params(
        ("folder" = String, Path, description = "The folder's full name, percent-encoded as one segment"),
        ("uid" = u32, Path, description = "The message's UID in the folder"),
    ),
    security(("session_cookie" = []), ("bearer_token" = [])),
    responses(
        (status = 200, description = "Moved to Trash", body = Moved),
        (status = 204, description = "Removed for good (it was in Trash)"),
        (status = 400, description = "Bad folder name or UID", body = ErrorBody),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 403, description = "A cookie session without its CSRF token", body = ErrorBody),
        (status = 404, description = "No such folder or message", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn delete_message(
    State(web): State<Arc<Web>>,
    auth: Authenticated,
    PathParams((folder, uid)): PathParams<(String, u32)>,
) -> Result<Response, ApiError> {
    let folder = folder_name(&folder)?;
    let store = store(&web);
    let all = store.mailboxes(&auth.account).await?;
    let Some(info) = all.iter().find(|f| f.name == folder) else {
        return Err(ApiError::not_found(format!("no folder {folder:?}")));
    };
    if role(info, &all) == Some(Role::Trash) {
        let op = Op::Expunge { address: auth.account.clone(), mailbox: folder.clone(), uids: vec![uid] };
        return match store.apply(&auth.account, op).await.map_err(store_error)? {
            Outcome::Expunged(uids) if uids.contains(&uid) => Ok(StatusCode::NO_CONTENT.into_response()),
            _ => Err(no_message(&folder, uid)),
        };
    }
    let trash = folder_with_role(store, &auth.account, Role::Trash).await?;
    Ok(axum::Json(move_to(store, &auth.account, &folder, &trash, uid).await?).into_response())
}

/// `?q=&folder=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// The text to look for (1 to 200 characters), ignoring case.
    pub q: String,
    /// Only this folder (default: every folder).
    pub folder: Option<String>,
}

/// Search results, newest first within each folder.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    /// At most 100 matches.
    pub messages: Vec<Summary>,
    /// Whether the search left something out: more than 100 matches, or it stopped before
    /// looking at every message (5,000 messages or 256 MiB read).
    pub truncated: bool,
}

/// The UIDs of a folder's messages a search looks at, newest first, within what is left of the
/// budgets ([`SEARCH_SCAN_MAX`] messages, [`SEARCH_BYTES_MAX`] octets), which it updates; and
/// whether it had to leave some out.
fn scan_plan(messages: &[MessageMeta], scanned: &mut usize, bytes_read: &mut u64) -> (Vec<u32>, bool) {
    let mut uids = Vec::new();
    for meta in messages.iter().rev() {
        let cost = meta.size.min(SEARCH_MESSAGE_BYTES_MAX as u64);
        if *scanned >= SEARCH_SCAN_MAX || *bytes_read + cost > SEARCH_BYTES_MAX {
            return (uids, true);
        }
        *scanned += 1;
        *bytes_read += cost;
        uids.push(meta.uid);
    }
    (uids, false)
}

/// Messages whose subject, `From:`, `To:`, `Cc:` or text contains `q`, ignoring case: at most
/// 100, looking at the newest 5,000 messages (INBOX first, then the other folders by name), in
/// the first 1 MiB of each, reading at most 256 MiB in all.
#[utoipa::path(get, path = "/api/v1/mail/search", tag = "mail",
    params(SearchQuery),
    security(("session_cookie" = []), ("bearer_token" = [])),
    responses(
        (status = 200, description = "The matches", body = SearchResult),
        (status = 400, description = "Empty or too long text, or a bad folder name", body = ErrorBody),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 404, description = "No such folder", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn search(
    State(web): State<Arc<Web>>,
    auth: Authenticated,
    Params(query): Params<SearchQuery>,
) -> Result<axum::Json<SearchResult>, ApiError> {
    let needle = query.q.trim().to_owned();
    if needle.is_empty() || needle.chars().count() > SEARCH_TEXT_MAX || needle.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!("q is 1 to {SEARCH_TEXT_MAX} characters of one line")));
    }
    let store = store(&web);
    let folders: Vec<String> = match &query.folder {
        Some(folder) => vec![folder_name(folder)?],
        None => {
            let mut names: Vec<String> = store.mailboxes(&auth.account).await?.into_iter().map(|f| f.name).collect();
            names.sort_by_key(|n| n != tidings_core::INBOX);
            names
        }
    };
    let mut found = Vec::new();
    let mut scanned = 0;
    let mut bytes_read: u64 = 0;
    let mut truncated = false;
    for folder in folders {
        let Some(snapshot) = store.snapshot(&auth.account, &folder).await? else {
            if query.folder.is_some() {
                return Err(ApiError::not_found(format!("no folder {folder:?}")));
            }
            continue;
        };
        let (uids, stopped) = scan_plan(&snapshot.messages, &mut scanned, &mut bytes_read);
        truncated |= stopped;
        let (name, text) = (folder.clone(), needle.clone());
        // One match more than there is room for shows that one was left out.
        let wanted = SEARCH_RESULTS_MAX + 1 - found.len();
        let mut kept = 0;
        let matches = each_message(
            store,
            &auth.account,
            &folder,
            &uids,
            SEARCH_MESSAGE_BYTES_MAX,
            |_| {
                kept += 1;
                kept <= wanted
            },
            move |m| {
                let raw = m.content.as_deref()?;
                let message = tidings_message::Message::parse(raw);
                let hit = ["subject", "from", "to", "cc"].iter().any(|f| message.header_contains(f, &text))
                    || message.body_contains(&text);
                if hit { summary_of(&name, m) } else { None }
            },
        )
        .await?;
        found.extend(matches);
        if found.len() > SEARCH_RESULTS_MAX {
            found.truncate(SEARCH_RESULTS_MAX);
            truncated = true;
        }
        if truncated {
            break;
        }
    }
    Ok(axum::Json(SearchResult { messages: found, truncated }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
    }

    fn metas(sizes: &[u64]) -> Vec<MessageMeta> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| MessageMeta { uid: i as u32 + 1, flags: Flags::new(), modseq: 1, size, internal_date: 0 })
            .collect()
    }

    #[test]
    fn a_search_reads_within_its_octet_and_message_budgets() {
        let (mut scanned, mut read) = (0, 0);
        let (uids, stopped) = scan_plan(&metas(&[10, 20, 30]), &mut scanned, &mut read);
        assert_eq!((uids, stopped, scanned, read), (vec![3, 2, 1], false, 3, 60));

        // Each message counts as at most its first 1 MiB; the total stops at 256 MiB.
        let big = metas(&[u64::MAX / 4; 300]);
        let (mut scanned, mut read) = (0, 0);
        let (uids, stopped) = scan_plan(&big, &mut scanned, &mut read);
        assert_eq!((uids.len(), stopped, read), (256, true, SEARCH_BYTES_MAX));
        assert_eq!(uids[0], 300, "newest first");
        let (uids, stopped) = scan_plan(&metas(&[1]), &mut scanned, &mut read);
        assert!(uids.is_empty() && stopped, "the budget is for the whole search");

        let (mut scanned, mut read) = (SEARCH_SCAN_MAX - 1, 0);
        let (uids, stopped) = scan_plan(&metas(&[1, 1]), &mut scanned, &mut read);
        assert_eq!((uids, stopped), (vec![2], true));
        let (mut scanned, mut read) = (SEARCH_SCAN_MAX - 2, 0);
        assert!(!scan_plan(&metas(&[1, 1]), &mut scanned, &mut read).1, "exactly the last messages fit");
    }
}
