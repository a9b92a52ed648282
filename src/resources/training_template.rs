//! `TrainingTemplate`: one model that this cluster can train, and the Job
//! that trains it.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::JobSpec;
use kube::{CustomResource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::PipelineStatus;

/// Desired state of a TrainingTemplate: the model type offered to Labelbox
/// and the Job that trains each of its runs.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    doc = "A model that Labelbox can ask this cluster to train, and the Job that trains it.",
    group = "trainhook.dev",
    version = "v1alpha1",
    kind = "TrainingTemplate",
    namespaced,
    shortname = "ttpl",
    category = "trainhook",
    printcolumn(name = "Model Type", type_ = "string", json_path = ".spec.modelType"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TrainingTemplateSpec {
    /// Model name that Labelbox shows in its "modelType" list and posts back
    /// when a user starts a training. Free text such as `bounding_box`;
    /// defaults to this object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,

    /// Job that trains the model. trainhook creates one Job from it for each
    /// TrainingRun, named after the run and owned by it.
    pub job_template: JobTemplate,

    /// Name of the container whose start marks the `TRAINING_MODEL` stage.
    /// Defaults to the first container of the pod template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_container: Option<String>,

    /// Init containers that show in Labelbox as a stage of their own while
    /// they run, such as a data export step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_container_stages: Vec<InitContainerStage>,

    /// Secret key holding a Labelbox API key. When set, every container of
    /// the Job gets it as the environment variable `LABELBOX_API_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labelbox_api_key_secret: Option<SecretKeyRef>,
}

/// Labels, annotations and spec of the Job created for each run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobTemplate {
    /// Labels and annotations added to the Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JobTemplateMetadata>,

    /// The batch/v1 Job spec: pod template, backoff limit, deadline, TTL,
    /// pod failure policy and the rest. trainhook adds the run's ids to
    /// every container's environment.
    pub spec: JobSpec,
}

/// Labels and annotations of a generated Job.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobTemplateMetadata {
    /// Labels added to the Job.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,

    /// Annotations added to the Job.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An init container that maps to its own Labelbox stage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InitContainerStage {
    /// Name of the init container in the pod template.
    pub container: String,

    /// Stage reported while the init container runs: `EXPORTING_DATA` or
    /// `PREPARING_DATA`.
    pub status: InitStageStatus,
}

/// Stages that an init container may stand for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InitStageStatus {
    /// Labelbox's `EXPORTING_DATA`.
    ExportingData,
    /// Labelbox's `PREPARING_DATA`.
    PreparingData,
}

impl From<InitStageStatus> for PipelineStatus {
    fn from(stage: InitStageStatus) -> Self {
        match stage {
            InitStageStatus::ExportingData => PipelineStatus::ExportingData,
            InitStageStatus::PreparingData => PipelineStatus::PreparingData,
        }
    }
}

/// A key of a Secret in the template's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    pub name: String,

    /// Key inside the Secret. Defaults to `api-key`.
    #[serde(default = "default_api_key_key")]
    pub key: String,
}

fn default_api_key_key() -> String {
    "api-key".to_owned()
}

impl TrainingTemplate {
    /// Returns the model name this template offers to Labelbox.
    pub fn model_type(&self) -> String {
        self.spec
            .model_type
            .clone()
            .filter(|model_type| !model_type.is_empty())
            .unwrap_or_else(|| self.name_any())
    }
}
