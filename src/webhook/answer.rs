//! Responses of the webhook: the success body and every error as JSON with a
//! message a person can act on.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde::Serialize;
use serde_json::json;

/// Reason a webhook call was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Missing, malformed or wrong signature.
    #[error("{0}")]
    Unauthorized(#[from] crate::signature::SignatureError),

    /// No webhook secret could be read, so no call can be verified.
    #[error(
        "trainhook cannot read its webhook secret ({0}); check the webhook secret file or Secret"
    )]
    SecretUnavailable(String),

    /// The body is not what `POST /model_run` takes.
    #[error("{0}")]
    BadRequest(String),

    /// The body is larger than the limit.
    #[error(
        "request body is larger than the limit of {limit} bytes; raise --body-limit if Labelbox really sends bodies this large"
    )]
    TooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },

    /// The body did not arrive in time.
    #[error("the request body was not received within {seconds} s; send the whole body at once")]
    BodyTimeout {
        /// The time allowed, in seconds.
        seconds: u64,
    },

    /// No template offers the model type.
    #[error("unknown modelType {model_type:?}: this cluster offers {known}; create a TrainingTemplate with spec.modelType {model_type:?} or pick one of those", known = list_or_none(.known))]
    UnknownModelType {
        /// The model type asked for.
        model_type: String,
        /// Model types offered.
        known: Vec<String>,
    },

    /// More than one template offers the model type.
    #[error("modelType {model_type:?} is offered by more than one TrainingTemplate ({templates}); delete one or change its spec.modelType", templates = .templates.join(", "))]
    AmbiguousModelType {
        /// The model type asked for.
        model_type: String,
        /// The templates offering it, as `namespace/name`.
        templates: Vec<String>,
    },

    /// A TrainingRun of that name exists for another model run.
    #[error("{0}")]
    NameTaken(String),

    /// The Kubernetes API could not be reached or timed out.
    #[error(
        "the Kubernetes API is unavailable ({0}); nothing was created, so Labelbox can retry this call"
    )]
    ApiUnavailable(String),

    /// The Kubernetes API refused the request for another reason.
    #[error("the Kubernetes API refused the request: {0}")]
    ApiRefused(String),
}

fn list_or_none(known: &[String]) -> String {
    if known.is_empty() {
        "no model types (no TrainingTemplate exists in the watched namespaces)".to_owned()
    } else {
        known.join(", ")
    }
}

impl WebhookError {
    /// Returns a short, stable code for the error, for clients and tests.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::Unauthorized(_) => "invalid_signature",
            WebhookError::SecretUnavailable(_) => "secret_unavailable",
            WebhookError::BadRequest(_) => "bad_request",
            WebhookError::TooLarge { .. } => "body_too_large",
            WebhookError::BodyTimeout { .. } => "body_timeout",
            WebhookError::UnknownModelType { .. } => "unknown_model_type",
            WebhookError::AmbiguousModelType { .. } => "ambiguous_model_type",
            WebhookError::NameTaken(_) => "name_taken",
            WebhookError::ApiUnavailable(_) => "kubernetes_unavailable",
            WebhookError::ApiRefused(_) => "kubernetes_refused",
        }
    }

    /// Classifies a Kubernetes client error: unreachable or overloaded API
    /// servers are 503, anything else is a refusal.
    pub fn from_kube(action: &str, error: kube::Error) -> Self {
        match &error {
            kube::Error::Api(status) if status.code < 500 && status.code != 429 => {
                WebhookError::ApiRefused(format!("{action}: {}", status.message))
            }
            _ => WebhookError::ApiUnavailable(format!("{action}: {error}")),
        }
    }
}

impl ResponseError for WebhookError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebhookError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            WebhookError::SecretUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebhookError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebhookError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            WebhookError::UnknownModelType { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            WebhookError::AmbiguousModelType { .. } => StatusCode::CONFLICT,
            WebhookError::NameTaken(_) => StatusCode::CONFLICT,
            WebhookError::ApiUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebhookError::ApiRefused(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({ "error": self.code(), "message": self.to_string() });
        if let WebhookError::UnknownModelType { known, .. } = self {
            body["knownModelTypes"] = json!(known);
        }
        HttpResponse::build(self.status_code()).json(body)
    }
}

/// Response to an accepted `POST /model_run`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunAccepted {
    /// Namespace of the TrainingRun.
    pub namespace: String,
    /// Name of the TrainingRun.
    pub name: String,
    /// Whether this call created the run; false when it existed already.
    pub created: bool,
    /// The model run id from the request.
    pub model_run_id: String,
}
