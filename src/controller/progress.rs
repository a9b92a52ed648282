//! Where a Job's state becomes a Labelbox stage: the pure mapping from a Job
//! and its pods to the run's phase, stage and final result.
//!
//! | what the cluster shows                                   | stage          |
//! |----------------------------------------------------------|----------------|
//! | Job created, training container not started yet         | PREPARING_DATA |
//! | an init container mapped to a stage runs                 | that stage     |
//! | the training container runs (or has run)                 | TRAINING_MODEL |
//! | Job condition `Complete`                                 | COMPLETE       |
//! | Job condition `Failed`, or the Job deleted before the end | FAILED         |
//! | Job suspended                                            | none (queued)  |

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use serde_json::Value;

use crate::labelbox::{MAX_ERROR_MESSAGE_CHARS, truncate_chars};
use crate::resources::training_run::ContainerTermination;
use crate::resources::{InitContainerStage, PipelineStatus, RunPhase};

/// Job annotation naming the container whose start marks training.
pub const TRAINING_CONTAINER_ANNOTATION: &str = "trainhook.dev/training-container";

/// Job annotation holding the template's init container stages as JSON, so
/// that the Job keeps its meaning when the template changes or goes away.
pub const INIT_STAGES_ANNOTATION: &str = "trainhook.dev/init-container-stages";

/// State of a run as the cluster shows it at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Phase to show on the run.
    pub phase: RunPhase,
    /// Stage to report, `None` while the Job is queued.
    pub stage: Option<PipelineStatus>,
    /// Explanation of the phase: the failure, or why the run waits.
    pub message: Option<String>,
    /// Metadata for the final status, from a JSON termination message.
    pub metadata: BTreeMap<String, String>,
    /// Latest termination of the training container seen in a pod.
    pub termination: Option<ContainerTermination>,
}

impl Observation {
    /// Creates the observation of a run that failed before or without its
    /// Job, with `message` giving the reason.
    pub fn failed(message: String) -> Self {
        Observation {
            phase: RunPhase::Failed,
            stage: Some(PipelineStatus::Failed),
            message: Some(truncate_chars(&message, MAX_ERROR_MESSAGE_CHARS)),
            metadata: BTreeMap::new(),
            termination: None,
        }
    }
}

impl Observation {
    /// Creates the observation of a run that waits for something other than
    /// its Job, with `message` naming it.
    pub fn waiting(message: String) -> Self {
        Observation {
            phase: RunPhase::Pending,
            stage: None,
            message: Some(message),
            metadata: BTreeMap::new(),
            termination: None,
        }
    }
}

/// Maps a Job and its pods to an observation. `earlier` is the termination
/// recorded by a previous pass, used when the pods are gone already.
pub fn observe(job: &Job, pods: &[Pod], earlier: Option<&ContainerTermination>) -> Observation {
    let job_name = job.metadata.name.clone().unwrap_or_default();
    let training_container = training_container(job);
    let termination = latest_termination(pods, &training_container).or_else(|| earlier.cloned());
    let metadata = termination.as_ref().map(metadata_of).unwrap_or_default();

    if job_condition(job, "Complete").is_some() {
        return Observation {
            phase: RunPhase::Succeeded,
            stage: Some(PipelineStatus::Complete),
            message: None,
            metadata,
            termination,
        };
    }

    if let Some((reason, message)) = job_condition(job, "Failed") {
        let why = failure_message(&job_name, &reason, &message, termination.as_ref());
        return Observation {
            metadata,
            termination,
            ..Observation::failed(why)
        };
    }

    if job.metadata.deletion_timestamp.is_some() {
        let why = format!("Job {job_name} was deleted before it finished");
        return Observation {
            termination,
            ..Observation::failed(why)
        };
    }

    if job.spec.as_ref().and_then(|spec| spec.suspend) == Some(true) {
        return Observation {
            phase: RunPhase::Queued,
            stage: None,
            message: Some(format!(
                "Job {job_name} is suspended until a queue admits it"
            )),
            metadata: BTreeMap::new(),
            termination,
        };
    }

    let stage = running_stage(job, pods, &training_container);
    let phase = if stage == PipelineStatus::TrainingModel {
        RunPhase::Training
    } else {
        RunPhase::Preparing
    };
    Observation {
        phase,
        stage: Some(stage),
        message: None,
        metadata: BTreeMap::new(),
        termination,
    }
}

/// Returns the `(reason, message)` of a true condition of the Job.
fn job_condition(job: &Job, condition_type: &str) -> Option<(String, String)> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|condition| condition.type_ == condition_type && condition.status == "True")
        .map(|condition| {
            (
                condition.reason.clone().unwrap_or_default(),
                condition.message.clone().unwrap_or_default(),
            )
        })
}

/// Returns the training container's name: the Job's annotation, or the
/// first container of its pod template.
fn training_container(job: &Job) -> String {
    let annotated = job
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(TRAINING_CONTAINER_ANNOTATION))
        .filter(|name| !name.is_empty());
    if let Some(name) = annotated {
        return name.clone();
    }

    job.spec
        .as_ref()
        .and_then(|spec| spec.template.spec.as_ref())
        .and_then(|pod| pod.containers.first())
        .map(|container| container.name.clone())
        .unwrap_or_default()
}

fn init_stages(job: &Job) -> Vec<InitContainerStage> {
    job.metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(INIT_STAGES_ANNOTATION))
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// The stage of a Job that runs: training once any pod's training container
/// has started; the stage of a mapped init container while it runs; before
/// that, `EXPORTING_DATA` when the template maps an init container to it
/// (the export is then the first step), else `PREPARING_DATA`.
fn running_stage(job: &Job, pods: &[Pod], training_container: &str) -> PipelineStatus {
    let started = |status: &ContainerStatus| {
        status
            .state
            .as_ref()
            .is_some_and(|state| state.running.is_some() || state.terminated.is_some())
    };
    let training_started = pods
        .iter()
        .flat_map(|pod| container_statuses(pod, false))
        .any(|status| status.name == training_container && started(status));
    if training_started {
        return PipelineStatus::TrainingModel;
    }

    let stages = init_stages(job);
    let running_init = pods
        .iter()
        .flat_map(|pod| container_statuses(pod, true))
        .filter(|status| {
            status
                .state
                .as_ref()
                .is_some_and(|state| state.running.is_some())
        })
        .find_map(|status| stages.iter().find(|stage| stage.container == status.name));
    if let Some(stage) = running_init {
        return stage.status.into();
    }

    let any_init_started = pods
        .iter()
        .flat_map(|pod| container_statuses(pod, true))
        .any(|status| started(status));
    let exports = stages
        .iter()
        .any(|stage| PipelineStatus::from(stage.status) == PipelineStatus::ExportingData);
    if exports && !any_init_started {
        PipelineStatus::ExportingData
    } else {
        PipelineStatus::PreparingData
    }
}

fn container_statuses(pod: &Pod, init: bool) -> impl Iterator<Item = &ContainerStatus> {
    let statuses = pod.status.as_ref().and_then(|status| {
        if init {
            status.init_container_statuses.as_ref()
        } else {
            status.container_statuses.as_ref()
        }
    });
    statuses.into_iter().flatten()
}

/// Finds the most recent termination of the training container in any pod.
fn latest_termination(pods: &[Pod], training_container: &str) -> Option<ContainerTermination> {
    pods.iter()
        .flat_map(|pod| {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            container_statuses(pod, false)
                .filter(|status| status.name == training_container)
                .filter_map(move |status| {
                    let terminated = status.state.as_ref()?.terminated.as_ref()?;
                    let termination = ContainerTermination {
                        pod: pod_name.clone(),
                        container: status.name.clone(),
                        exit_code: terminated.exit_code,
                        reason: terminated.reason.clone(),
                        message: terminated.message.clone().filter(|m| !m.trim().is_empty()),
                    };
                    Some((terminated.finished_at.clone(), termination))
                })
        })
        .max_by(|(left, _), (right, _)| {
            left.as_ref().map(|t| t.0).cmp(&right.as_ref().map(|t| t.0))
        })
        .map(|(_, termination)| termination)
}

/// Reads metadata from a termination message that is a JSON object. String
/// values are kept as they are; other values become their JSON text,
/// because Labelbox types metadata as string to string.
fn metadata_of(termination: &ContainerTermination) -> BTreeMap<String, String> {
    let Some(fields) = json_object(termination) else {
        return BTreeMap::new();
    };

    fields
        .into_iter()
        .map(|(key, value)| match value {
            Value::String(text) => (key, text),
            other => (key, other.to_string()),
        })
        .collect()
}

/// Returns why a termination message that starts with `{`, and so was
/// meant as metadata, is not a JSON object, or `None` when it is one or is
/// plain text. Kubernetes keeps at most 4096 bytes of the message, so a
/// longer object arrives cut off.
pub fn unreadable_metadata(termination: &ContainerTermination) -> Option<String> {
    let message = termination.message.as_deref()?.trim();
    if !message.starts_with('{') {
        return None;
    }
    match serde_json::from_str::<Value>(message) {
        Ok(Value::Object(_)) => None,
        Ok(_) => Some("it is not a JSON object".to_owned()),
        Err(error) => Some(format!(
            "it is not valid JSON ({error}, in {} bytes)",
            message.len()
        )),
    }
}

/// Returns the termination message parsed as a JSON object, or `None` when
/// it is absent or anything else.
fn json_object(termination: &ContainerTermination) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_str(termination.message.as_deref()?) {
        Ok(Value::Object(fields)) => Some(fields),
        _ => None,
    }
}

/// Says why a Job failed: the container's exit code and plain-text
/// termination message first, because they are what a user acts on, then
/// the Job condition.
fn failure_message(
    job_name: &str,
    reason: &str,
    message: &str,
    termination: Option<&ContainerTermination>,
) -> String {
    let mut parts = Vec::new();
    if let Some(termination) = termination.filter(|t| t.exit_code != 0) {
        let mut part = format!(
            "container {} in pod {} exited with code {}",
            termination.container, termination.pod, termination.exit_code
        );
        // A JSON object is metadata, not a reason; anything else, even a
        // cut-off object, may be the only hint of what went wrong.
        let is_object = json_object(termination).is_some();
        let text = termination.message.as_deref().filter(|_| !is_object);
        if let Some(text) = text {
            part.push_str(": ");
            part.push_str(text.trim());
        } else if let Some(reason) = &termination.reason {
            part.push_str(&format!(" ({reason})"));
        }
        parts.push(part);
    }
    parts.push(format!("Job {job_name} failed: {reason}: {message}"));
    truncate_chars(&parts.join("; "), MAX_ERROR_MESSAGE_CHARS)
}

#[cfg(test)]
mod tests;
