//! How an [`Error`] goes out (`{"error": {"code", "message"}}`, with `problems` when there are
//! several), and `ApiJson`, the JSON body extractor whose refusals are such errors.

use adapter_core::agent_api::{ErrorBody, ErrorDetail};
use axum::{
    extract::{rejection::JsonRejection, FromRequest, Request},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::de::DeserializeOwned;

use crate::error::{Code, Error};

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message,
                problems: self.problems,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(wait.as_secs().max(1)),
            );
        }
        response
    }
}

/// `Json<T>` whose rejections are API errors (400 malformed, 413 too large, 415 not JSON, 422
/// fields that do not fit).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => {
                let code = match &rejection {
                    JsonRejection::MissingJsonContentType(_) => Code::NotJson,
                    JsonRejection::JsonSyntaxError(_) => Code::MalformedJson,
                    JsonRejection::JsonDataError(_) => Code::InvalidFields,
                    JsonRejection::BytesRejection(_) => Code::BodyTooLarge,
                    _ => Code::BadRequest,
                };
                Err(Error::new(code, rejection.body_text()))
            }
        }
    }
}

/// The answer for a path no route has.
pub async fn not_found() -> Error {
    Error::new(Code::NotFound, "No such endpoint in the agent API.")
}
