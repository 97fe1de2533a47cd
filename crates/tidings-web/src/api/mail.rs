//! Webmail (docs/web-api.md): folders, message lists, messages with sanitised HTML, attachments,
//! sending, moving, deleting and searching.

use std::sync::Arc;

use axum::Router;
use utoipa::OpenApi;

use crate::Web;

/// The mail endpoints' document.
#[derive(OpenApi)]
#[openapi(paths())]
pub struct MailApi;

/// `/mail/…`.
pub fn routes() -> Router<Arc<Web>> {
    Router::new()
}
