//! `POST /model_run`: where a verified Labelbox request becomes a
//! TrainingRun.

use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::answer::{RunAccepted, WebhookError};
use crate::FIELD_MANAGER;
use crate::resources::{TrainingRun, TrainingRunSpec, naming};

/// Longest id accepted in a request, in bytes. Labelbox ids are UUIDs and
/// cuids of a few dozen characters; the limit only keeps junk out of etcd.
pub const MAX_ID_LEN: usize = 1024;

/// The fields of a `POST /model_run` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRunRequest {
    /// Model name, as offered by `GET /models`.
    pub model_type: String,
    /// Labelbox model run id.
    pub model_run_id: String,
    /// Labelbox model id, when sent.
    pub model_id: Option<String>,
    /// Labelbox organization id, when sent.
    pub organization_id: Option<String>,
}

/// Parses a body: a JSON object with non-empty string fields `modelType`
/// and `modelRunId`, and optional string fields `modelId` and
/// `organizationId`. Unknown keys are allowed, because Labelbox may add
/// fields.
pub fn parse(body: &[u8]) -> Result<ModelRunRequest, WebhookError> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        WebhookError::BadRequest(format!(
            "the body is not valid JSON ({error}); send a JSON object with modelType and modelRunId"
        ))
    })?;
    let Value::Object(fields) = value else {
        return Err(WebhookError::BadRequest(format!(
            "the body is JSON {}, not an object; send a JSON object with modelType and modelRunId",
            kind_of(&value)
        )));
    };
    if let Some(key) = duplicate_key(body) {
        return Err(WebhookError::BadRequest(format!(
            "key {key:?} appears more than once in the body; send each key once"
        )));
    }

    Ok(ModelRunRequest {
        model_type: required(&fields, "modelType")?,
        model_run_id: required(&fields, "modelRunId")?,
        model_id: optional(&fields, "modelId")?,
        organization_id: optional(&fields, "organizationId")?,
    })
}

fn required(fields: &Map<String, Value>, key: &str) -> Result<String, WebhookError> {
    match optional(fields, key)? {
        Some(text) => Ok(text),
        None if fields.contains_key(key) => Err(WebhookError::BadRequest(format!(
            "field {key} is empty; it must be a non-empty string"
        ))),
        None => Err(WebhookError::BadRequest(format!(
            "required field {key} is missing; it must be a non-empty string"
        ))),
    }
}

/// Reads a string field; absent, null and empty all read as `None`.
fn optional(fields: &Map<String, Value>, key: &str) -> Result<Option<String>, WebhookError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) if text.len() > MAX_ID_LEN => {
            Err(WebhookError::BadRequest(format!(
                "field {key} is {} bytes long; at most {MAX_ID_LEN} are accepted",
                text.len()
            )))
        }
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(WebhookError::BadRequest(format!(
            "field {key} is {}, but it must be a string",
            kind_of(other)
        ))),
    }
}

/// Returns the first top-level key that appears twice in a body already
/// known to be a JSON object. serde_json keeps the last value of a repeated
/// key, while a proxy or log may show the first, so such a body is
/// ambiguous and rejected.
fn duplicate_key(body: &[u8]) -> Option<String> {
    struct FirstDuplicate;

    impl<'de> Visitor<'de> for FirstDuplicate {
        type Value = Option<String>;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut seen = HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                if !seen.insert(key.clone()) {
                    return Ok(Some(key));
                }
            }
            Ok(None)
        }
    }

    let mut deserializer = serde_json::Deserializer::from_slice(body);
    deserializer.deserialize_map(FirstDuplicate).ok().flatten()
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Creates the TrainingRun for a request, or finds the one a previous
/// delivery of the same model run created.
pub async fn create_run(
    client: Client,
    namespace: &str,
    template: &str,
    request: &ModelRunRequest,
) -> Result<RunAccepted, WebhookError> {
    let api: Api<TrainingRun> = Api::namespaced(client, namespace);
    let name = naming::run_name(&request.model_run_id);
    let run = TrainingRun {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        spec: TrainingRunSpec {
            model_type: request.model_type.clone(),
            model_run_id: request.model_run_id.clone(),
            model_id: request.model_id.clone(),
            organization_id: request.organization_id.clone(),
            template: Some(template.to_owned()),
        },
        status: None,
    };

    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    let created = match api.create(&params, &run).await {
        Ok(_) => true,
        Err(kube::Error::Api(status)) if status.code == 409 => false,
        Err(error) => return Err(WebhookError::from_kube("creating the TrainingRun", error)),
    };

    if !created {
        let existing = api
            .get(&name)
            .await
            .map_err(|error| WebhookError::from_kube("reading the existing TrainingRun", error))?;
        if existing.spec.model_run_id != request.model_run_id {
            return Err(WebhookError::NameTaken(format!(
                "TrainingRun {namespace}/{name} exists for model run {:?}, not {:?}; delete or rename it",
                existing.spec.model_run_id, request.model_run_id
            )));
        }
    }

    Ok(RunAccepted {
        namespace: namespace.to_owned(),
        name,
        created,
        model_run_id: request.model_run_id.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> String {
        parse(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn parses_contract_example() {
        let body = r#"{"modelType": "bounding_box",
            "modelRunId": "9e3f331a-551b-0e24-6ab5-f69855df64ea",
            "modelId": "9e3f51f8-5e62-0cab-360e-c0443dcc3008",
            "organizationId": "cjhfn5y6s0pk507024nz1ocys"}"#;
        let request = parse(body.as_bytes()).unwrap();
        assert_eq!(request.model_type, "bounding_box");
        assert_eq!(request.model_run_id, "9e3f331a-551b-0e24-6ab5-f69855df64ea");
        assert_eq!(
            request.model_id.as_deref(),
            Some("9e3f51f8-5e62-0cab-360e-c0443dcc3008")
        );
        assert_eq!(
            request.organization_id.as_deref(),
            Some("cjhfn5y6s0pk507024nz1ocys")
        );
    }

    #[test]
    fn unknown_keys_are_allowed() {
        let request = parse(br#"{"modelType":"ner","modelRunId":"r","extra":[1]}"#).unwrap();
        assert_eq!(request.model_id, None);
    }

    #[test]
    fn repeated_key_is_rejected() {
        let body = r#"{"modelType":"bounding_box","modelRunId":"a","modelRunId":"b"}"#;
        assert_eq!(
            message(body),
            r#"key "modelRunId" appears more than once in the body; send each key once"#
        );

        let nested = r#"{"modelType":"bounding_box","modelRunId":"a","extra":{"k":1,"k":2}}"#;
        assert!(parse(nested.as_bytes()).is_ok());
    }

    #[test]
    fn not_json_is_rejected() {
        assert!(message("modelType=ner").contains("not valid JSON"));
    }

    #[test]
    fn array_is_rejected() {
        assert!(message("[]").contains("JSON an array, not an object"));
    }

    #[test]
    fn missing_run_id_is_named() {
        assert!(message(r#"{"modelType":"ner"}"#).contains("required field modelRunId is missing"));
    }

    #[test]
    fn empty_model_type_is_named() {
        let text = message(r#"{"modelType":" ","modelRunId":"r"}"#);
        assert!(text.contains("field modelType is empty"), "{text}");
    }

    #[test]
    fn number_run_id_is_rejected() {
        let text = message(r#"{"modelType":"ner","modelRunId":7}"#);
        assert!(text.contains("modelRunId is a number"), "{text}");
    }

    #[test]
    fn huge_id_is_rejected() {
        let body = format!(
            r#"{{"modelType":"ner","modelRunId":"{}"}}"#,
            "x".repeat(MAX_ID_LEN + 1)
        );
        assert!(message(&body).contains("at most 1024"));
    }
}
