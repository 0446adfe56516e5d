//! The one mapping from errors to SCIM Error responses (RFC 7644 §3.12).
//!
//! Client mistakes carry their `ScimError` to the client. Store and internal failures become an
//! opaque 500 (or 503 when the store is unreachable), logged once here with their cause; their
//! text never reaches a response body.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use scimgw_scim::{ScimError, ScimType};
use scimgw_store::StoreError;

use crate::http::SCIM_CONTENT_TYPE;

/// An error on its way to becoming a SCIM Error response.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A SCIM protocol error for the client.
    #[error(transparent)]
    Scim(#[from] ScimError),
    /// The request is not authenticated: 401 with `WWW-Authenticate: Bearer`.
    #[error("unauthorized")]
    Unauthorized,
    /// Too many failed authentications from this client: 429 with `Retry-After` of these seconds.
    #[error("too many failed authentications")]
    Throttled(u64),
    /// The store failed; the text is for the log only.
    #[error("store: {0}")]
    Store(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(scim) => ApiError::Scim(scim),
            StoreError::Conflict { attribute } => ApiError::Scim(ScimError::uniqueness(format!(
                "{attribute} is already in use in this tenant (compared ignoring case)"
            ))),
            StoreError::VersionMismatch { current } => ApiError::Scim(ScimError::new(
                412,
                None,
                format!("If-Match does not match the current version W/\"{current}\"; read the resource again"),
            )),
            // Its tenant was removed under the request: to the client, its key is gone.
            StoreError::TenantGone(_) => ApiError::Unauthorized,
            other => ApiError::Store(other),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        ApiError::Store(StoreError::Internal("the blocking thread pool is gone (shutting down)".into()))
    }
}

impl ApiError {
    fn scim(&self) -> ScimError {
        match self {
            ApiError::Scim(e) => e.clone(),
            ApiError::Unauthorized => ScimError::new(
                401,
                None,
                "missing, malformed, unknown or revoked bearer token; send Authorization: Bearer scimgw_<key id>_<secret> as printed by `scimgw key issue`",
            ),
            ApiError::Throttled(secs) => ScimError::new(
                429,
                None,
                format!("too many failed authentications from this client; retry in {secs} s with a valid token"),
            ),
            ApiError::Store(StoreError::Unavailable(_)) => {
                ScimError::new(503, None, "the store is unavailable; retry later")
            }
            ApiError::Store(_) => ScimError::new(500, None, "internal error; the gateway's log has the details"),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.scim().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let scim = self.scim();
        if let ApiError::Store(cause) = self {
            tracing::error!(error = %cause, status = scim.status, "request failed in the store");
        }
        let mut resp = HttpResponse::build(self.status_code());
        resp.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE)));
        if matches!(self, ApiError::Unauthorized) {
            resp.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"scimgw\"")));
        }
        if scim.status == 503 {
            resp.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
        }
        if let ApiError::Throttled(secs) = self {
            resp.insert_header((header::RETRY_AFTER, HeaderValue::from(*secs)));
        }
        resp.body(serde_json::to_vec(&scim.to_response()).unwrap_or_default())
    }
}

/// 400 `invalidSyntax` for a body that is not JSON, with serde's position.
pub(crate) fn bad_json(e: &serde_json::Error) -> ApiError {
    ApiError::Scim(ScimError::bad_request(ScimType::InvalidSyntax, format!("the request body is not valid JSON: {e}")))
}
