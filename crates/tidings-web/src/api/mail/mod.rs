//! Webmail (docs/web-api.md "Mail"): folders, message lists, messages with sanitised HTML,
//! attachments, flags, moving, deleting, searching and sending. Every endpoint acts for the
//! [`Authenticated`] account on its own mailboxes, through the store's reads and [`Op`]s.
//!
//! A folder is a mailbox by its full UTF-8 name (levels separated by `/`; one percent-encoded path
//! segment); a message is named by its folder and UID.

pub mod messages;
pub mod render;
pub mod send;

pub use send::SendBudget;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tidings_core::{Address, INBOX, MailboxInfo, Op, canonical_mailbox_name, date, uidvalidity_at};
use tidings_store::{Store, StoreError};
use utoipa::{OpenApi, ToSchema};

use super::auth::Authenticated;
use super::{ApiError, Body, ErrorBody};
use crate::Web;

/// The store the account's mail is in.
pub(crate) fn store(web: &Web) -> &Arc<dyn Store> {
    web.directory.store()
}

/// A store refusal as an API error: `404` (no such folder), `409 exists` / `409 has_children`,
/// `403 forbidden`, `400` (a name the store refuses); anything else `503`.
pub(crate) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NoSuchMailbox(name) => ApiError::not_found(format!("no folder {name:?}")),
        StoreError::MailboxExists(name) => {
            ApiError::new(StatusCode::CONFLICT, "exists", format!("a folder {name:?} exists already"))
        }
        StoreError::HasChildren(name) => ApiError::new(
            StatusCode::CONFLICT,
            "has_children",
            format!("folder {name:?} has folders inside it: delete or move them first"),
        ),
        StoreError::Forbidden(why) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", why),
        StoreError::InvalidMailboxName(why) => ApiError::bad_request(format!("invalid folder name: {why}")),
        other => ApiError::unavailable(&other),
    }
}

/// Path parameters whose refusals are `400` [`ApiError`]s (a UID that is not a number, say).
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathParams<T>, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(PathParams(value)),
            Err(rejection) => Err(path_rejection(&rejection)),
        }
    }
}

fn path_rejection(rejection: &PathRejection) -> ApiError {
    ApiError::bad_request(rejection.body_text())
}

/// A folder name from a request, in canonical form (`inbox` is `INBOX`); `400` when invalid.
pub(crate) fn folder_name(name: &str) -> Result<String, ApiError> {
    canonical_mailbox_name(name).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// What a folder is for (RFC 6154 special use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// INBOX.
    Inbox,
    /// `\Sent`.
    Sent,
    /// `\Drafts`.
    Drafts,
    /// `\Trash`.
    Trash,
    /// `\Junk`.
    Junk,
    /// `\Archive`.
    Archive,
}

impl Role {
    fn of_special_use(special_use: &str) -> Option<Role> {
        Some(match special_use.to_ascii_lowercase().as_str() {
            "\\sent" => Role::Sent,
            "\\drafts" => Role::Drafts,
            "\\trash" => Role::Trash,
            "\\junk" => Role::Junk,
            "\\archive" => Role::Archive,
            _ => return None,
        })
    }

    /// The standard folder name of this role (tidings_core::STANDARD_MAILBOXES).
    pub fn standard_name(self) -> &'static str {
        match self {
            Role::Inbox => INBOX,
            Role::Sent => "Sent",
            Role::Drafts => "Drafts",
            Role::Trash => "Trash",
            Role::Junk => "Junk",
            Role::Archive => "Archive",
        }
    }
}

/// The role of `folder` among `all`: INBOX; the special-use attribute; else, when no folder has
/// that attribute, a top-level folder with the standard name of a role (`Trash`, any case).
pub fn role(folder: &MailboxInfo, all: &[MailboxInfo]) -> Option<Role> {
    if folder.name == INBOX {
        return Some(Role::Inbox);
    }
    if let Some(role) = folder.special_use.as_deref().and_then(Role::of_special_use) {
        return Some(role);
    }
    [Role::Sent, Role::Drafts, Role::Trash, Role::Junk, Role::Archive].into_iter().find(|role| {
        folder.name.eq_ignore_ascii_case(role.standard_name())
            && !all.iter().any(|f| f.special_use.as_deref().and_then(Role::of_special_use) == Some(*role))
    })
}

/// The folder that has `role`, created (with the standard name) when the account has none.
pub(crate) async fn folder_with_role(
    store: &Arc<dyn Store>,
    account: &Address,
    wanted: Role,
) -> Result<String, ApiError> {
    let all = store.mailboxes(account).await?;
    if let Some(folder) = all.iter().find(|f| role(f, &all) == Some(wanted)) {
        return Ok(folder.name.clone());
    }
    let name = wanted.standard_name().to_owned();
    let op = Op::CreateMailbox {
        address: account.clone(),
        name: name.clone(),
        uidvalidity: uidvalidity_at(date::now_millis()),
    };
    match store.apply(account, op).await {
        Ok(_) | Err(StoreError::MailboxExists(_)) => Ok(name),
        Err(e) => Err(store_error(e)),
    }
}

/// A folder and its counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Folder {
    /// Full name, levels separated by `/`.
    pub name: String,
    /// What it is for, if anything.
    pub role: Option<Role>,
    /// Messages in it.
    pub total: u32,
    /// Messages without `\Seen`.
    pub unread: u32,
    /// Octets of its messages.
    pub size: u64,
}

fn folder_of(info: &MailboxInfo, all: &[MailboxInfo]) -> Folder {
    Folder {
        name: info.name.clone(),
        role: role(info, all),
        total: info.status.messages,
        unread: info.status.unseen,
        size: info.status.size,
    }
}

/// The account's folders.
#[derive(Debug, Serialize, ToSchema)]
pub struct FolderList {
    /// Sorted by name.
    pub folders: Vec<Folder>,
}

/// `POST /api/v1/mail/folders`, `PATCH /api/v1/mail/folders/{folder}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FolderName {
    /// The full name (levels separated by `/`; at most 512 octets and 32 levels; no control
    /// characters, `*` or `%`).
    pub name: String,
}

async fn folder_info(store: &Arc<dyn Store>, account: &Address, name: &str) -> Result<Folder, ApiError> {
    let all = store.mailboxes(account).await?;
    all.iter()
        .find(|f| f.name == name)
        .map(|f| folder_of(f, &all))
        .ok_or_else(|| ApiError::not_found(format!("no folder {name:?}")))
}

/// The account's folders with their counts and roles.
#[utoipa::path(get, path = "/api/v1/mail/folders", tag = "mail",
    security(("session_cookie" = []), ("bearer_token" = [])),
    responses(
        (status = 200, description = "The folders", body = FolderList),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn list_folders(
    State(web): State<Arc<Web>>,
    auth: Authenticated,
) -> Result<axum::Json<FolderList>, ApiError> {
    let all = store(&web).mailboxes(&auth.account).await?;
    Ok(axum::Json(FolderList { folders: all.iter().map(|f| folder_of(f, &all)).collect() }))
}

/// Creates a folder (and any missing folders above it).
#[utoipa::path(post, path = "/api/v1/mail/folders", tag = "mail", request_body = FolderName,
    security(("session_cookie" = []), ("bearer_token" = [])),
    responses(
        (status = 201, description = "Created", body = Folder),
        (status = 400, description = "Not a valid folder name", body = ErrorBody),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 403, description = "A cookie session without its CSRF token", body = ErrorBody),
        (status = 409, description = "The folder exists", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn create_folder(
    State(web): State<Arc<Web>>,
    auth: Authenticated,
    Body(request): Body<FolderName>,
) -> Result<Response, ApiError> {
    let name = folder_name(&request.name)?;
    if name == INBOX {
        return Err(store_error(StoreError::MailboxExists(name)));
    }
    let store = store(&web);
    let op = Op::CreateMailbox {
        address: auth.account.clone(),
        name: name.clone(),
        uidvalidity: uidvalidity_at(date::now_millis()),
    };
    store.apply(&auth.account, op).await.map_err(store_error)?;
    let folder = folder_info(store, &auth.account, &name).await?;
    Ok((StatusCode::CREATED, axum::Json(folder)).into_response())
}

/// Renames a folder (and the folders inside it). INBOX cannot be renamed.
#[utoipa::path(patch, path = "/api/v1/mail/folders/{folder}", tag = "mail", request_body = FolderName,
    params(("folder" = String, Path, description = "The folder's full name, percent-encoded as one segment")),
    security(("session_cookie" = []), ("bearer_token" = [])),
    responses(
        (status = 200, description = "Renamed", body = Folder),
        (status = 400, description = "Not a valid folder name", body = ErrorBody),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 403, description = "INBOX, or a cookie session without its CSRF token", body = ErrorBody),
        (status = 404, description = "No such folder", body = ErrorBody),
        (status = 409, description = "A folder of the new name exists", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn rename_folder(
    State(web): State<Arc<Web>>,
    auth: Authenticated,
    PathParams((folder,)): PathParams<(String,)>,
    Body(request): Body<FolderName>,
) -> Result<axum::Json<Folder>, ApiError> {
    let from = folder_name(&folder)?;
    let to = folder_name(&request.name)?;
    if from == INBOX {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "INBOX cannot be renamed"));
    }
    if to == INBOX {
        return Err(store_error(StoreError::MailboxExists(to)));
    }
    let store = store(&web);
    let op = Op::RenameMailbox {
        address: auth.account.clone(),
        from,
        to: to.clone(),
        uidvalidity: uidvalidity_at(date::now_millis()),
    };
    store.apply(&auth.account, op).await.map_err(store_error)?;
    Ok(axum::Json(folder_info(store, &auth.account, &to).await?))
}

/// Deletes a folder and its messages. INBOX cannot be deleted, nor a folder with folders inside.
#[utoipa::path(delete, path = "/api/v1/mail/folders/{folder}", tag = "mail",
    params(("folder" = String, Path, description = "The folder's full name, percent-encoded as one segment")),
    security(("session_cookie" = []), ("bearer_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Not a valid folder name", body = ErrorBody),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 403, description = "INBOX, or a cookie session without its CSRF token", body = ErrorBody),
        (status = 404, description = "No such folder", body = ErrorBody),
        (status = 409, description = "The folder has folders inside it", body = ErrorBody),
        (status = 503, description = "The store did not answer", body = ErrorBody),
    ))]
pub async fn delete_folder(
    State(web): State<Arc<Web>>,
    auth: Authenticated,
    PathParams((folder,)): PathParams<(String,)>,
) -> Result<StatusCode, ApiError> {
    let name = folder_name(&folder)?;
    if name == INBOX {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "INBOX cannot be deleted"));
    }
    let op = Op::DeleteMailbox { address: auth.account.clone(), name };
    store(&web).apply(&auth.account, op).await.map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The mail endpoints' document.
#[derive(OpenApi)]
#[openapi(paths(
    list_folders,
    create_folder,
    rename_folder,
    delete_folder,
    messages::list_messages,
    messages::read_message,
    messages::html_view,
    messages::download_attachment,
    messages::update_flags,
    messages::move_message,
    messages::delete_message,
    messages::search,
    send::send,
))]
pub struct MailApi;

/// `/mail/…`.
pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/mail/folders", get(list_folders).post(create_folder))
        .route("/mail/folders/{folder}", patch(rename_folder).delete(delete_folder))
        .route("/mail/folders/{folder}/messages", get(messages::list_messages))
        .route(
            "/mail/folders/{folder}/messages/{uid}",
            get(messages::read_message).patch(messages::update_flags).delete(messages::delete_message),
        )
        .route("/mail/folders/{folder}/messages/{uid}/html", get(messages::html_view))
        .route("/mail/folders/{folder}/messages/{uid}/attachments/{index}", get(messages::download_attachment))
        .route("/mail/folders/{folder}/messages/{uid}/move", post(messages::move_message))
        .route("/mail/search", get(messages::search))
        .route("/mail/send", post(send::send))
}

#[cfg(test)]
mod tests {
    use tidings_core::MailboxStatus;

    use super::*;

    fn info(name: &str, special_use: Option<&str>) -> MailboxInfo {
        MailboxInfo {
            name: name.into(),
            special_use: special_use.map(Into::into),
            subscribed: true,
            status: MailboxStatus::default(),
        }
    }

    #[test]
    fn roles_come_from_special_use_then_standard_names() {
        let all = vec![info(INBOX, None), info("Sent", Some("\\Sent")), info("trash", None), info("Sent2", None)];
        assert_eq!(role(&all[0], &all), Some(Role::Inbox));
        assert_eq!(role(&all[1], &all), Some(Role::Sent));
        assert_eq!(role(&all[2], &all), Some(Role::Trash));
        assert_eq!(role(&all[3], &all), None);
        let renamed = vec![info("Old Sent", Some("\\Sent")), info("Sent", None)];
        assert_eq!(role(&renamed[1], &renamed), None, "the special-use folder has the role");
    }

    #[test]
    fn store_refusals_map_to_statuses() {
        assert_eq!(store_error(StoreError::NoSuchMailbox("x".into())).status, StatusCode::NOT_FOUND);
        assert_eq!(store_error(StoreError::MailboxExists("x".into())).status, StatusCode::CONFLICT);
        assert_eq!(store_error(StoreError::HasChildren("x".into())).code, "has_children");
        assert_eq!(store_error(StoreError::Forbidden("no".into())).status, StatusCode::FORBIDDEN);
        assert_eq!(store_error(StoreError::Overloaded).status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
