//! `TrainingRun`: one Labelbox model run being trained on the cluster, and
//! what has been reported back to Labelbox about it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a TrainingRun: the Labelbox model run to train and the
/// template to train it with.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    doc = "A request from Labelbox to train one model run. The webhook creates one for each POST /model_run; a user re-runs a training by creating one by hand.",
    group = "trainhook.dev",
    version = "v1alpha1",
    kind = "TrainingRun",
    namespaced,
    status = "TrainingRunStatus",
    shortname = "tr",
    category = "trainhook",
    validation = Rule::new("self.metadata.name.size() <= 63").message("a TrainingRun name must be at most 63 characters, because it also names the run's Job"),
    validation = Rule::new("self.spec.modelRunId == oldSelf.spec.modelRunId").message("spec.modelRunId cannot change, because stages already reported belong to the first model run; create a new TrainingRun instead"),
    printcolumn(name = "Model Type", type_ = "string", json_path = ".spec.modelType"),
    printcolumn(name = "Model Run", type_ = "string", json_path = ".spec.modelRunId"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Labelbox", type_ = "string", json_path = ".status.labelbox.lastAcknowledged", description = "Last status that Labelbox acknowledged"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct TrainingRunSpec {
    /// Model name, as offered by a TrainingTemplate in this namespace.
    #[schemars(length(min = 1))]
    pub model_type: String,

    /// Labelbox model run to train on; every status update names it.
    #[schemars(length(min = 1))]
    pub model_run_id: String,

    /// Labelbox model that the run belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,

    /// Labelbox organization of the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,

    /// TrainingTemplate to run, in this namespace. When empty, trainhook
    /// uses the template whose model type is `modelType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// Observed state of a TrainingRun.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrainingRunStatus {
    /// Where the run stands: Pending, Queued, Preparing, Training,
    /// Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RunPhase>,

    /// Human-readable explanation of the phase, such as why the run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// Standard conditions: `Complete`, `Failed` and `Reported`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// TrainingTemplate the Job was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,

    /// Name of the Job that runs the training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,

    /// When the Job was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,

    /// When the run reached Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,

    /// Last training container that terminated, kept so that its result
    /// survives the deletion of its pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_termination: Option<ContainerTermination>,

    /// Record of the stages reported to Labelbox.
    #[serde(default)]
    pub labelbox: LabelboxReport,

    /// Generation of the spec that this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Phase of a run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RunPhase {
    /// The Job is not created yet.
    Pending,
    /// The Job is suspended, for example queued by Kueue.
    Queued,
    /// The Job's pod is not yet running its training container.
    Preparing,
    /// The training container runs.
    Training,
    /// The Job completed.
    Succeeded,
    /// The Job failed, went missing, or could not be created.
    Failed,
}

impl std::fmt::Display for RunPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl RunPhase {
    /// Tells whether the run has ended for good.
    pub fn is_finished(self) -> bool {
        matches!(self, RunPhase::Succeeded | RunPhase::Failed)
    }
}

/// The result of a terminated training container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerTermination {
    /// Pod that ran the container.
    pub pod: String,

    /// Name of the container.
    pub container: String,

    /// Exit code of the container.
    pub exit_code: i32,

    /// Kubernetes' reason for the termination, such as `Error` or `OOMKilled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    /// Termination message the container wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The statuses of one run that go to Labelbox, in the order they are sent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelboxReport {
    /// Last status that Labelbox acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_acknowledged: Option<PipelineStatus>,

    /// Every stage recorded for Labelbox, oldest first. A stage is recorded
    /// here before it is sent, and sent until Labelbox acknowledges it or
    /// rejects it for good.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageReport>,
}

/// One status to report to Labelbox, and how its delivery went.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageReport {
    /// Labelbox pipeline status.
    pub status: PipelineStatus,

    /// Delivery state: Pending, Acknowledged or Rejected.
    pub state: StageState,

    /// Error message sent with a `FAILED` status, at most 255 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,

    /// Metadata sent with the status, such as where the trained weights are.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,

    /// When the stage was recorded.
    pub recorded_time: Time,

    /// When Labelbox acknowledged the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_time: Option<Time>,

    /// Sends tried so far.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub attempts: i32,

    /// When the last send was tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_time: Option<Time>,

    /// Earliest time of the next send after a failed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_time: Option<Time>,

    /// Error of the last failed send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,

    /// Fingerprint of the Labelbox endpoint and API key that a rejected
    /// stage was rejected under. A stage is sent again once it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_config: Option<String>,
}

/// Delivery state of a stage.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum StageState {
    /// Recorded and not yet acknowledged.
    Pending,
    /// Labelbox acknowledged it.
    Acknowledged,
    /// Labelbox responded with a permanent error.
    Rejected,
}

/// Status of a Labelbox training pipeline, in the order the stages happen.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PipelineStatus {
    /// Data is being exported from Labelbox.
    ExportingData,
    /// The Job exists and its pod prepares to train.
    PreparingData,
    /// The training container runs.
    TrainingModel,
    /// The Job completed.
    Complete,
    /// The run failed.
    Failed,
}

impl PipelineStatus {
    /// Returns the name Labelbox uses for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            PipelineStatus::ExportingData => "EXPORTING_DATA",
            PipelineStatus::PreparingData => "PREPARING_DATA",
            PipelineStatus::TrainingModel => "TRAINING_MODEL",
            PipelineStatus::Complete => "COMPLETE",
            PipelineStatus::Failed => "FAILED",
        }
    }

    /// Returns the status in CamelCase, such as `TrainingModel`.
    pub fn camel_case(self) -> &'static str {
        match self {
            PipelineStatus::ExportingData => "ExportingData",
            PipelineStatus::PreparingData => "PreparingData",
            PipelineStatus::TrainingModel => "TrainingModel",
            PipelineStatus::Complete => "Complete",
            PipelineStatus::Failed => "Failed",
        }
    }

    /// Tells whether nothing is reported after this status.
    pub fn is_final(self) -> bool {
        matches!(self, PipelineStatus::Complete | PipelineStatus::Failed)
    }
}

impl std::fmt::Display for PipelineStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TrainingRun {
    /// Returns the run's status, or an empty one for a run never reconciled.
    pub fn status_or_default(&self) -> TrainingRunStatus {
        self.status.clone().unwrap_or_default()
    }
}
