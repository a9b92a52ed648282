//! Reads a request body up to the configured limit and within a time limit.

use std::time::Duration;

use actix_web::{HttpRequest, http::header::CONTENT_LENGTH, web};
use futures::StreamExt;

use super::answer::WebhookError;

/// Time allowed for the whole body once the headers are in. actix-web
/// limits only the time to the end of the headers, so without this a client
/// could hold a connection open by sending the body a byte at a time.
/// A Labelbox body is a few hundred bytes, so 10 s leaves a wide margin.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the whole raw body, rejecting it as soon as it is known to exceed
/// `limit`: from `Content-Length` before reading anything, or while reading
/// a body of unknown length. Rejects a body that takes longer than
/// [`BODY_TIMEOUT`].
pub async fn read_limited(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, WebhookError> {
    tokio::time::timeout(BODY_TIMEOUT, read_within_limit(request, payload, limit))
        .await
        .map_err(|_| WebhookError::BodyTimeout {
            seconds: BODY_TIMEOUT.as_secs(),
        })?
}

async fn read_within_limit(
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
