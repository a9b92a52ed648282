//! Delivery of recorded stages to Labelbox, oldest first.
//!
//! Every stage is in the run's status before it is sent (see
//! [`super::status::advance`]); here each one is sent until Labelbox
//! acknowledges it or rejects it for good, and each attempt is written back
//! to the status, so that a restart or another replica goes on where this
//! one stopped and never sends an acknowledged stage again.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::runtime::events::EventType;
use rand::Rng;
use tracing::{info, warn};

use super::status::{REPORTED, set_condition};
use super::{Context, Error};
use crate::labelbox::{SendError, StatusUpdate};
use crate::metrics::{UpdateOutcome, metrics};
use crate::resources::{StageReport, StageState, TrainingRun, TrainingRunStatus};

/// First wait after a failed send; it doubles with every attempt.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Maximum wait between two sends, as the Labelbox SDK's own retries use.
const LONGEST_RETRY: Duration = Duration::from_secs(60);

/// State of delivery after a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Every recorded stage is acknowledged.
    UpToDate,
    /// A stage waits for its next attempt, due after this long.
    RetryIn(Duration),
    /// A stage was rejected; nothing is sent until the configuration changes.
    Blocked,
}

/// Sends every stage not yet acknowledged, in order, writing each attempt to
/// the run's status. Stops at the first stage that fails.
pub async fn deliver(
    run: &TrainingRun,
    status: &mut TrainingRunStatus,
    ctx: &Context,
) -> Result<Delivery, Error> {
    let fingerprint = ctx.labelbox.config_fingerprint().await;

    while let Some(index) = status
        .labelbox
        .stages
        .iter()
        .position(|stage| stage.state != StageState::Acknowledged)
    {
        let stage = &mut status.labelbox.stages[index];
        if stage.state == StageState::Rejected {
            if stage.rejected_config.as_deref() == Some(fingerprint.as_str()) {
                return Ok(Delivery::Blocked);
            }
            info!(status = %stage.status, "Labelbox configuration changed; sending a rejected stage again");
            stage.state = StageState::Pending;
            stage.rejected_config = None;
            stage.next_attempt_time = None;
        }

        if let Some(wait) = stage
            .next_attempt_time
            .as_ref()
            .and_then(|next| remaining(next))
        {
            return Ok(Delivery::RetryIn(wait));
        }

        let outcome = send(run, stage, ctx).await;
        let delivery = settle(stage, outcome, &fingerprint);
        let stage = stage.clone();
        if stage.state == StageState::Acknowledged {
            status.labelbox.last_acknowledged = Some(stage.status);
        }
        update_reported_condition(status, &stage);
        *status = ctx.write_status(run, status.clone()).await?;
        publish_outcome(run, &stage, ctx).await;

        if let Some(delivery) = delivery {
            return Ok(delivery);
        }
    }
    Ok(Delivery::UpToDate)
}

/// Sends one stage.
async fn send(run: &TrainingRun, stage: &mut StageReport, ctx: &Context) -> Result<(), SendError> {
    stage.attempts = stage.attempts.saturating_add(1);
    stage.last_attempt_time = Some(now());

    let update = StatusUpdate {
        model_run_id: run.spec.model_run_id.clone(),
        status: stage.status,
        error_message: stage.error_message.clone(),
        metadata: stage.metadata.clone(),
    };
    ctx.labelbox.update_status(&update).await
}

/// Records the outcome of a send on the stage, and returns the delivery
/// state when sending must stop for now.
fn settle(
    stage: &mut StageReport,
    outcome: Result<(), SendError>,
    fingerprint: &str,
) -> Option<Delivery> {
    match outcome {
        Ok(()) => {
            info!(status = %stage.status, attempts = stage.attempts, "Labelbox acknowledged a stage");
            metrics().labelbox_update(stage.status, UpdateOutcome::Acknowledged);
            stage.state = StageState::Acknowledged;
            stage.acknowledged_time = stage.last_attempt_time.clone();
            stage.next_attempt_time = None;
            stage.last_error = None;
            None
        }
        Err(SendError::Transient {
            message,
            retry_after,
        }) => {
            let wait = retry_after.unwrap_or_else(|| backoff(stage.attempts));
            warn!(status = %stage.status, attempts = stage.attempts, retry_in = ?wait, error = %message, "sending a stage to Labelbox failed; will retry");
            metrics().labelbox_update(stage.status, UpdateOutcome::Retried);
            stage.next_attempt_time = Some(after(wait));
            stage.last_error = Some(message);
            Some(Delivery::RetryIn(wait))
        }
        Err(SendError::Permanent { message }) => {
            warn!(status = %stage.status, attempts = stage.attempts, error = %message, "Labelbox rejected a stage; retrying once the endpoint or API key changes");
            metrics().labelbox_update(stage.status, UpdateOutcome::Rejected);
            stage.state = StageState::Rejected;
            stage.rejected_config = Some(fingerprint.to_owned());
            stage.next_attempt_time = None;
            stage.last_error = Some(message);
            Some(Delivery::Blocked)
        }
    }
}

/// Wait before attempt `attempts + 1`: doubling from one second, capped at a
/// minute, with a fifth of jitter so that many runs do not retry in step.
pub fn backoff(attempts: i32) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 16) as u32;
    let base = FIRST_RETRY
        .saturating_mul(1 << doublings)
        .min(LONGEST_RETRY);
    let jitter = rand::rng().random_range(0.8..1.2);
    base.mul_f64(jitter)
}

fn update_reported_condition(status: &mut TrainingRunStatus, stage: &StageReport) {
    let all_acknowledged = status
        .labelbox
        .stages
        .iter()
        .all(|s| s.state == StageState::Acknowledged);
    let (reported, reason, message) = match stage.state {
        StageState::Acknowledged if all_acknowledged => (
            true,
            "Acknowledged",
            format!("Labelbox acknowledged {}", stage.status),
        ),
        StageState::Acknowledged | StageState::Pending => (
            false,
            "Sending",
            match &stage.last_error {
                Some(error) => format!(
                    "sending {} failed {} time(s): {error}",
                    stage.status, stage.attempts
                ),
                None => "sending the next stage to Labelbox".to_owned(),
            },
        ),
        StageState::Rejected => (
            false,
            "Rejected",
            format!(
                "Labelbox rejected {}: {}; fix the API key or endpoint and trainhook sends it again",
                stage.status,
                stage.last_error.as_deref().unwrap_or("no error given")
            ),
        ),
    };
    set_condition(
        &mut status.conditions,
        REPORTED,
        reported,
        reason,
        &message,
        &now(),
        None,
    );
}

async fn publish_outcome(run: &TrainingRun, stage: &StageReport, ctx: &Context) {
    let error = stage.last_error.as_deref().unwrap_or_default();
    // The Event recorder merges Events of one reason and action into a
    // series that keeps only the first note, so each stage gets an action
    // of its own, such as `ReportTrainingModel`.
    let action = format!("Report{}", stage.status.camel_case());
    match stage.state {
        StageState::Acknowledged => {
            let note = format!("Labelbox acknowledged {}", stage.status);
            ctx.publish(run, EventType::Normal, "StageReported", &action, note)
                .await;
        }
        // One Warning for the first failure and then every tenth, so that a
        // long outage does not flood the run's events.
        StageState::Pending if stage.attempts % 10 == 1 => {
            let note = format!(
                "sending {} to Labelbox failed (attempt {}): {error}",
                stage.status, stage.attempts
            );
            ctx.publish(run, EventType::Warning, "ReportFailed", &action, note)
                .await;
        }
        StageState::Pending => {}
        StageState::Rejected => {
            let note = format!("Labelbox rejected {}: {error}", stage.status);
            ctx.publish(run, EventType::Warning, "ReportRejected", &action, note)
                .await;
        }
    }
}

/// Returns the current time as a Kubernetes timestamp.
pub fn now() -> Time {
    Time(Timestamp::now())
}

/// Returns the time `wait` from now, rounded up to a whole second because
/// the status stores times in whole seconds; rounding down would let a
/// retry come before a `Retry-After` has passed.
fn after(wait: Duration) -> Time {
    let wait = SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX);
    let due = Timestamp::now()
        .saturating_add(wait)
        .expect("adding a signed duration saturates");
    let whole = due.as_second() + i64::from(due.subsec_nanosecond() > 0);
    Time(Timestamp::from_second(whole).unwrap_or(Timestamp::MAX))
}

/// Returns how long until `time`, or `None` when it has passed.
fn remaining(time: &Time) -> Option<Duration> {
    let left = time.0.duration_since(Timestamp::now());
    Duration::try_from(left).ok().filter(|left| !left.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_minute() {
        let cases = [(1, 1.0), (2, 2.0), (3, 4.0), (7, 60.0), (40, 60.0)];
        for (attempts, seconds) in cases {
            let wait = backoff(attempts).as_secs_f64();
            assert!(
                wait >= seconds * 0.8 && wait <= seconds * 1.2,
                "attempt {attempts}: {wait}s"
            );
        }
    }

    #[test]
    fn transient_error_schedules_retry() {
        let mut stage = StageReport::pending(crate::resources::PipelineStatus::Complete, &now());
        stage.attempts = 1;
        let error = SendError::Transient {
            message: "503".into(),
            retry_after: Some(Duration::from_secs(2)),
        };
        let delivery = settle(&mut stage, Err(error), "abc");
        assert_eq!(delivery, Some(Delivery::RetryIn(Duration::from_secs(2))));
        assert_eq!(stage.state, StageState::Pending);
        assert!(remaining(stage.next_attempt_time.as_ref().unwrap()).is_some());
    }

    #[test]
    fn permanent_error_rejects_stage() {
        let mut stage = StageReport::pending(crate::resources::PipelineStatus::Failed, &now());
        let delivery = settle(
            &mut stage,
            Err(SendError::Permanent {
                message: "bad key".into(),
            }),
            "abc",
        );
        assert_eq!(delivery, Some(Delivery::Blocked));
        assert_eq!(stage.state, StageState::Rejected);
        assert_eq!(stage.rejected_config.as_deref(), Some("abc"));
    }
}
