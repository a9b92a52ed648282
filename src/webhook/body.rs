//! Reads a request body up to the configured limit.

use actix_web::{HttpRequest, http::header::CONTENT_LENGTH, web};
use futures::StreamExt;

use super::answer::WebhookError;

/// Reads the whole raw body, refusing it as soon as it is known to exceed
/// `limit`: from `Content-Length` before reading anything, or while reading
/// a body of unknown length.
pub async fn read_limited(
    request: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, WebhookError> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(WebhookError::TooLarge { limit });
    }

    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| {
            WebhookError::BadRequest(format!("failed to read the request body: {error}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(WebhookError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
