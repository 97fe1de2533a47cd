//! Accounts (docs/web-api.md): emailed verification codes, registration, existence checks and
//! password resets.

use std::sync::Arc;

use axum::Router;
use utoipa::OpenApi;

use crate::Web;

/// The account endpoints' document.
#[derive(OpenApi)]
#[openapi(paths())]
pub struct AccountsApi;

/// `/accounts/…`.
pub fn routes() -> Router<Arc<Web>> {
    Router::new()
}
