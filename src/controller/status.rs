//! The run's status: how an observation advances it, and the conditions.
//!
//! Everything here is pure, so the rules (a later stage is never followed by
//! an earlier one; nothing follows a final stage; timestamps change only
//! when their meaning does) are unit-tested without a cluster.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::progress::Observation;
use crate::resources::{PipelineStatus, RunPhase, StageReport, StageState, TrainingRunStatus};

/// Condition type set when the Job completed.
pub const COMPLETE: &str = "Complete";
/// Condition type set when the run failed.
pub const FAILED: &str = "Failed";
/// Condition type telling whether Labelbox acknowledged every stage.
pub const REPORTED: &str = "Reported";

/// Tells whether the run has ended: its phase is final and a final stage is
/// recorded. trainhook writes both at once, so a final phase alone was set
/// by hand and the run is observed again.
pub fn has_ended(status: &TrainingRunStatus) -> bool {
    status.phase.is_some_and(RunPhase::is_finished)
        && status
            .labelbox
            .stages
            .iter()
            .any(|stage| stage.status.is_final())
}

/// Applies an observation to the status. A run that has ended stays as it
/// is, because a run ends once.
pub fn advance(
    status: &TrainingRunStatus,
    observation: &Observation,
    now: &Time,
    generation: Option<i64>,
) -> TrainingRunStatus {
    let mut next = status.clone();
    if has_ended(&next) {
        return next;
    }

    next.phase = Some(observation.phase);
    next.message = observation.message.clone();
    next.observed_generation = generation;
    // NOTE: a pod that a TTL or foreground deletion removes before any pass
    // sees it terminated is not recorded, so COMPLETE then lacks its metadata
    // and FAILED its exit code.
    if observation.termination.is_some() {
        next.last_termination = observation.termination.clone();
    }
    if let Some(stage) = observation.stage {
        record_stage(&mut next.labelbox.stages, stage, observation, now);
    }

    if observation.phase.is_finished() {
        next.completion_time = Some(now.clone());
        let (kind, reason) = match observation.phase {
            RunPhase::Succeeded => (COMPLETE, "JobComplete"),
            _ => (FAILED, "RunFailed"),
        };
        let message = observation
            .message
            .clone()
            .unwrap_or_else(|| "the Job completed".to_owned());
        set_condition(
            &mut next.conditions,
            kind,
            true,
            reason,
            &message,
            now,
            generation,
        );
    }
    next
}

/// Appends `stage` (and the stages it implies) to the stages to report,
/// unless an equal or later stage is recorded already.
///
/// A run that completes has prepared and trained, even if no pass saw its
/// pod running, so `COMPLETE` brings the missing `PREPARING_DATA` and
/// `TRAINING_MODEL` before it, and `TRAINING_MODEL` brings `PREPARING_DATA`.
fn record_stage(
    stages: &mut Vec<StageReport>,
    stage: PipelineStatus,
    observation: &Observation,
    now: &Time,
) {
    let latest = stages.iter().map(|report| report.status).max();
    if latest.is_some_and(|latest| latest.is_final() || latest >= stage) {
        return;
    }

    let implied: &[PipelineStatus] = match stage {
        PipelineStatus::TrainingModel => &[PipelineStatus::PreparingData],
        PipelineStatus::Complete => &[PipelineStatus::PreparingData, PipelineStatus::TrainingModel],
        _ => &[],
    };
    for &missing in implied {
        // Any earlier stage, EXPORTING_DATA included, covers PREPARING_DATA.
        let covered = match missing {
            PipelineStatus::PreparingData => latest.is_some(),
            _ => latest.is_some_and(|latest| latest >= missing),
        };
        if !covered {
            stages.push(StageReport::pending(missing, now));
        }
    }

    let mut report = StageReport::pending(stage, now);
    if stage.is_final() {
        report.metadata = observation.metadata.clone();
    }
    if stage == PipelineStatus::Failed {
        report.error_message = observation.message.clone();
    }
    stages.push(report);
}

impl StageReport {
    /// A stage recorded now and not yet sent.
    pub fn pending(status: PipelineStatus, now: &Time) -> Self {
        StageReport {
            status,
            state: StageState::Pending,
            error_message: None,
            metadata: Default::default(),
            recorded_time: now.clone(),
            acknowledged_time: None,
            attempts: 0,
            last_attempt_time: None,
            next_attempt_time: None,
            last_error: None,
            rejected_config: None,
        }
    }
}

/// Sets a condition, keeping its `lastTransitionTime` unless its status
/// changes, so that rewriting the same condition does not wake the
/// controller.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    kind: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: &Time,
    generation: Option<i64>,
) {
    let status = if status { "True" } else { "False" }.to_owned();
    let existing = conditions
        .iter_mut()
        .find(|condition| condition.type_ == kind);
    match existing {
        Some(condition) => {
            if condition.status != status {
                condition.last_transition_time = now.clone();
            }
            condition.status = status;
            condition.reason = reason.to_owned();
            condition.message = message.to_owned();
            condition.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: kind.to_owned(),
            status,
            reason: reason.to_owned(),
            message: message.to_owned(),
            last_transition_time: now.clone(),
            observed_generation: generation,
        }),
    }
}

#[cfg(test)]
mod tests;
