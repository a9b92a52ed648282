//! Client for Labelbox's training pipeline status mutation.
//!
//! The request matches what the official Python SDK (`labelbox` on PyPI,
//! `ModelRun.update_status`) sends: the `setPipelineStatusPyApi` operation,
//! `modelRunId` and `data` as variables, `errorMessage` and `metadata` only
//! when they are not empty.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::resources::PipelineStatus;
use crate::secrets::SecretSource;

/// Labelbox's endpoint for experimental SDK calls, where the SDK sends the
/// status mutation.
pub const DEFAULT_ENDPOINT: &str = "https://api.labelbox.com/_gql";

/// Maximum length of an error message that Labelbox accepts, in characters.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 255;

const STATUS_MUTATION: &str =
    "mutation setPipelineStatusPyApi($modelRunId: ID!, $data: UpdateTrainingPipelineInput!) {
  updateTrainingPipeline(modelRun: {id: $modelRunId}, data: $data) { status }
}";

/// GraphQL error codes worth retrying; every other code is permanent.
const TRANSIENT_CODES: &[&str] = &["INTERNAL_SERVER_ERROR"];

/// One status update for a model run.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// Labelbox model run id.
    pub model_run_id: String,
    /// Pipeline status to set.
    pub status: PipelineStatus,
    /// Error message, sent only with `FAILED` and when not empty.
    pub error_message: Option<String>,
    /// Metadata merged into the model run's, sent only when not empty.
    pub metadata: BTreeMap<String, String>,
}

/// Reason a status update was not acknowledged.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SendError {
    /// Worth retrying: a network error, a timeout, a 5xx or a rate limit.
    #[error("{message}")]
    Transient {
        /// Description of the failure.
        message: String,
        /// How long Labelbox asked to wait, from `Retry-After`.
        retry_after: Option<Duration>,
    },

    /// Not worth retrying with the same configuration, such as a bad API
    /// key or an unknown model run.
    #[error("{message}")]
    Permanent {
        /// Description of the failure, with Labelbox's error code.
        message: String,
    },
}

/// Labelbox GraphQL client.
#[derive(Clone)]
pub struct LabelboxClient {
    http: reqwest::Client,
    endpoint: String,
    api_key: SecretSource,
}

impl LabelboxClient {
    /// Creates a client for `endpoint` that authenticates with the key from
    /// `api_key`, re-read before every request.
    pub fn new(endpoint: String, api_key: SecretSource, timeout: Duration) -> anyhow::Result<Self> {
        let user_agent = format!("trainhook {}", env!("CARGO_PKG_VERSION"));
        let http = reqwest::Client::builder()
            .user_agent(user_agent)
            .timeout(timeout)
            .build()?;
        Ok(Self {
            http,
            endpoint,
            api_key,
        })
    }

    /// Returns the endpoint requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Returns a short fingerprint of the endpoint and API key, which shows
    /// whether the configuration changed since a stage was rejected.
    pub async fn config_fingerprint(&self) -> String {
        let key = self.api_key.read().await.unwrap_or_default();
        let mut hasher = Sha256::new();
        hasher.update(self.endpoint.as_bytes());
        hasher.update(b"\n");
        hasher.update(&key);
        hex::encode(hasher.finalize())[..12].to_owned()
    }

    /// Sends one status update and waits for Labelbox to acknowledge it.
    pub async fn update_status(&self, update: &StatusUpdate) -> Result<(), SendError> {
        let api_key = self
            .api_key
            .read()
            .await
            .map_err(|error| SendError::Permanent {
                message: format!("cannot read the Labelbox API key: {error}"),
            })?;
        let api_key = String::from_utf8(api_key).map_err(|_| SendError::Permanent {
            message: "the Labelbox API key is not valid UTF-8; check the key file".to_owned(),
        })?;
        if api_key.trim().is_empty() {
            return Err(SendError::Permanent {
                message: format!(
                    "the Labelbox API key from {:?} is empty; set it to a key from Labelbox's API keys settings",
                    self.api_key
                ),
            });
        }

        let response = self
            .http
            .post(&self.endpoint)
            .bearer_auth(api_key.trim())
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                "X-User-Agent",
                format!("trainhook {}", env!("CARGO_PKG_VERSION")),
            )
            .json(&request_body(update))
            .send()
            .await
            .map_err(|error| SendError::Transient {
                message: format!(
                    "request to {} failed: {}",
                    self.endpoint,
                    error_chain(&error)
                ),
                retry_after: None,
            })?;

        let status = response.status();
        let retry_after = retry_after(response.headers());
        let text = response
            .text()
            .await
            .map_err(|error| SendError::Transient {
                message: format!("reading the response of {} failed: {error}", self.endpoint),
                retry_after: None,
            })?;

        classify(status, retry_after, &text)
    }
}

/// Builds the GraphQL request body that the SDK sends for this update.
pub fn request_body(update: &StatusUpdate) -> Value {
    let mut data = json!({ "status": update.status.as_str() });
    if let Some(message) = update.error_message.as_deref().filter(|m| !m.is_empty()) {
        data["errorMessage"] = json!(truncate_chars(message, MAX_ERROR_MESSAGE_CHARS));
    }
    if !update.metadata.is_empty() {
        data["metadata"] = json!(update.metadata);
    }

    #[derive(Serialize)]
    struct Body<'a> {
        query: &'a str,
        variables: Value,
    }
    let variables = json!({ "modelRunId": update.model_run_id, "data": data });
    serde_json::to_value(Body {
        query: STATUS_MUTATION,
        variables,
    })
    .expect("JSON values serialize")
}

/// Turns Labelbox's response into success or a transient or permanent error.
fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    text: &str,
) -> Result<(), SendError> {
    let body: Option<Value> = serde_json::from_str(text).ok();
    let excerpt = truncate_chars(text.trim(), 200);

    let rate_limited = body
        .as_ref()
        .and_then(|b| b.get("message"))
        .and_then(Value::as_str)
        .is_some_and(|m| m.starts_with("You have exceeded"));
    if status == StatusCode::TOO_MANY_REQUESTS || rate_limited {
        let message = format!("Labelbox rate limit (HTTP {status}): {excerpt}");
        return Err(SendError::Transient {
            message,
            retry_after,
        });
    }
    if status.is_server_error() {
        let message = format!("Labelbox responded with HTTP {status}: {excerpt}");
        return Err(SendError::Transient {
            message,
            retry_after,
        });
    }
    if !status.is_success() {
        let message = format!("Labelbox rejected the request with HTTP {status}: {excerpt}");
        return Err(SendError::Permanent { message });
    }

    let Some(body) = body else {
        let message =
            format!("Labelbox responded with HTTP {status} and a body that is not JSON: {excerpt}");
        return Err(SendError::Transient {
            message,
            retry_after: None,
        });
    };
    if let Some(errors) = body
        .get("errors")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
    {
        return Err(graphql_error(errors));
    }
    if body
        .pointer("/data/updateTrainingPipeline")
        .is_none_or(Value::is_null)
    {
        let message = format!("Labelbox's response has no data.updateTrainingPipeline: {excerpt}");
        return Err(SendError::Transient {
            message,
            retry_after: None,
        });
    }

    Ok(())
}

/// Turns the first GraphQL error into a send error by its code.
fn graphql_error(errors: &[Value]) -> SendError {
    let first = &errors[0];
    let code = first
        .pointer("/extensions/code")
        .and_then(Value::as_str)
        .unwrap_or("UNKNOWN");
    let detail = first
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no message");
    let message = format!("Labelbox GraphQL error {code}: {detail}");

    if TRANSIENT_CODES.contains(&code) {
        SendError::Transient {
            message,
            retry_after: None,
        }
    } else {
        SendError::Permanent { message }
    }
}

/// Reads `Retry-After` given in seconds.
// NOTE: the HTTP-date form of Retry-After is ignored and the usual backoff applies.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Cuts `text` to at most `limit` characters, ending with `…` when cut.
pub fn truncate_chars(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit - 1).collect();
    cut.push('…');
    cut
}

/// Joins an error with its sources, because reqwest's own message hides the
/// cause (such as "connection refused") in the source chain.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(status: PipelineStatus) -> StatusUpdate {
        StatusUpdate {
            model_run_id: "run-1".into(),
            status,
            error_message: None,
            metadata: BTreeMap::new(),
        }
    }

    #[test]
    fn body_omits_empty_fields() {
        let body = request_body(&update(PipelineStatus::TrainingModel));
        assert_eq!(
            body["variables"],
            json!({"modelRunId": "run-1", "data": {"status": "TRAINING_MODEL"}})
        );
        assert!(
            body["query"]
                .as_str()
                .unwrap()
                .contains("setPipelineStatusPyApi")
        );
    }

    #[test]
    fn body_carries_metadata_as_object() {
        let mut with_metadata = update(PipelineStatus::Complete);
        with_metadata
            .metadata
            .insert("weights".into(), "s3://bucket/w.pt".into());
        let body = request_body(&with_metadata);
        assert_eq!(
            body["variables"]["data"]["metadata"],
            json!({"weights": "s3://bucket/w.pt"})
        );
    }

    #[test]
    fn long_error_message_is_cut_to_255_chars() {
        let mut failed = update(PipelineStatus::Failed);
        failed.error_message = Some("é".repeat(300));
        let body = request_body(&failed);
        let sent = body["variables"]["data"]["errorMessage"].as_str().unwrap();
        assert_eq!(sent.chars().count(), MAX_ERROR_MESSAGE_CHARS);
    }

    #[test]
    fn server_error_is_transient() {
        let result = classify(StatusCode::BAD_GATEWAY, None, "oops");
        assert!(
            matches!(result, Err(SendError::Transient { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn rate_limit_keeps_retry_after() {
        let wait = Some(Duration::from_secs(2));
        let result = classify(StatusCode::TOO_MANY_REQUESTS, wait, "{}");
        assert!(
            matches!(result, Err(SendError::Transient { retry_after, .. }) if retry_after == wait),
            "{result:?}"
        );
    }

    #[test]
    fn exceeded_message_is_rate_limit() {
        let body = r#"{"message": "You have exceeded the rate limit"}"#;
        let result = classify(StatusCode::OK, None, body);
        assert!(
            matches!(result, Err(SendError::Transient { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn authentication_error_is_permanent() {
        let body = r#"{"errors": [{"message": "bad key", "extensions": {"code": "AUTHENTICATION_ERROR"}}]}"#;
        let result = classify(StatusCode::OK, None, body);
        assert!(
            matches!(result, Err(SendError::Permanent { ref message }) if message.contains("AUTHENTICATION_ERROR")),
            "{result:?}"
        );
    }

    #[test]
    fn internal_server_error_code_is_transient() {
        let body =
            r#"{"errors": [{"message": "boom", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}"#;
        let result = classify(StatusCode::OK, None, body);
        assert!(
            matches!(result, Err(SendError::Transient { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn acknowledged_update_is_ok() {
        let body = r#"{"data": {"updateTrainingPipeline": {"status": "COMPLETE"}}}"#;
        assert_eq!(classify(StatusCode::OK, None, body), Ok(()));
    }

    #[tokio::test]
    async fn empty_api_key_is_rejected_before_sending() {
        // Nothing listens on port 9 of loopback; the key check comes first.
        let client = LabelboxClient::new(
            "http://127.0.0.1:9/graphql".into(),
            SecretSource::Value(" \n".into()),
            Duration::from_secs(1),
        )
        .unwrap();

        let result = client
            .update_status(&update(PipelineStatus::Complete))
            .await;

        let Err(SendError::Permanent { message }) = result else {
            panic!("expected a permanent error, got {result:?}");
        };
        assert!(
            message.contains("API key from Value(<redacted>) is empty"),
            "{message}"
        );
    }
}
