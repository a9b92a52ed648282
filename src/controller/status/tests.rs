use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;

use super::*;

fn at(seconds: i64) -> Time {
    Time(Timestamp::from_second(1_800_000_000 + seconds).unwrap())
}

fn observed(phase: RunPhase, stage: Option<PipelineStatus>) -> Observation {
    Observation {
        phase,
        stage,
        message: None,
        metadata: BTreeMap::new(),
        termination: None,
    }
}

fn stages(status: &TrainingRunStatus) -> Vec<PipelineStatus> {
    status
        .labelbox
        .stages
        .iter()
        .map(|report| report.status)
        .collect()
}

#[test]
fn first_observation_records_preparing() {
    let status = advance(
        &TrainingRunStatus::default(),
        &observed(RunPhase::Preparing, Some(PipelineStatus::PreparingData)),
        &at(0),
        Some(1),
    );
    assert_eq!(stages(&status), [PipelineStatus::PreparingData]);
    assert_eq!(status.phase, Some(RunPhase::Preparing));
    assert_eq!(status.labelbox.stages[0].state, StageState::Pending);
}

#[test]
fn same_stage_is_recorded_once() {
    let preparing = observed(RunPhase::Preparing, Some(PipelineStatus::PreparingData));
    let once = advance(&TrainingRunStatus::default(), &preparing, &at(0), None);
    let twice = advance(&once, &preparing, &at(5), None);
    assert_eq!(once, twice);
}

#[test]
fn earlier_stage_never_follows_later() {
    let training = observed(RunPhase::Training, Some(PipelineStatus::TrainingModel));
    let status = advance(&TrainingRunStatus::default(), &training, &at(0), None);
    let status = advance(
        &status,
        &observed(RunPhase::Preparing, Some(PipelineStatus::ExportingData)),
        &at(1),
        None,
    );
    assert_eq!(
        stages(&status),
        [PipelineStatus::PreparingData, PipelineStatus::TrainingModel]
    );
}

#[test]
fn complete_brings_missing_stages_in_order() {
    let complete = observed(RunPhase::Succeeded, Some(PipelineStatus::Complete));
    let status = advance(&TrainingRunStatus::default(), &complete, &at(0), None);
    assert_eq!(
        stages(&status),
        [
            PipelineStatus::PreparingData,
            PipelineStatus::TrainingModel,
            PipelineStatus::Complete
        ]
    );
}

#[test]
fn complete_after_export_skips_preparing() {
    let export = observed(RunPhase::Preparing, Some(PipelineStatus::ExportingData));
    let status = advance(&TrainingRunStatus::default(), &export, &at(0), None);
    let status = advance(
        &status,
        &observed(RunPhase::Succeeded, Some(PipelineStatus::Complete)),
        &at(1),
        None,
    );
    assert_eq!(
        stages(&status),
        [
            PipelineStatus::ExportingData,
            PipelineStatus::TrainingModel,
            PipelineStatus::Complete
        ]
    );
}

#[test]
fn failed_keeps_message_and_metadata() {
    let mut failed = observed(RunPhase::Failed, Some(PipelineStatus::Failed));
    failed.message = Some("container exited with code 3".into());
    failed.metadata.insert("log".into(), "s3://b/log".into());
    let status = advance(&TrainingRunStatus::default(), &failed, &at(0), None);
    let last = status.labelbox.stages.last().unwrap();
    assert_eq!(stages(&status), [PipelineStatus::Failed]);
    assert_eq!(
        last.error_message.as_deref(),
        Some("container exited with code 3")
    );
    assert_eq!(
        last.metadata.get("log").map(String::as_str),
        Some("s3://b/log")
    );
    assert_eq!(status.conditions[0].type_, FAILED);
}

#[test]
fn finished_status_is_not_changed() {
    let complete = observed(RunPhase::Succeeded, Some(PipelineStatus::Complete));
    let done = advance(&TrainingRunStatus::default(), &complete, &at(0), None);
    let later = advance(
        &done,
        &observed(RunPhase::Failed, Some(PipelineStatus::Failed)),
        &at(9),
        None,
    );
    assert_eq!(done, later);
    assert_eq!(done.completion_time, Some(at(0)));
}

#[test]
fn condition_time_kept_when_status_unchanged() {
    let mut conditions = Vec::new();
    set_condition(
        &mut conditions,
        REPORTED,
        false,
        "Pending",
        "sending",
        &at(0),
        None,
    );
    set_condition(
        &mut conditions,
        REPORTED,
        false,
        "Pending",
        "sending again",
        &at(5),
        None,
    );
    assert_eq!(conditions[0].last_transition_time, at(0));
    set_condition(
        &mut conditions,
        REPORTED,
        true,
        "Acknowledged",
        "done",
        &at(9),
        None,
    );
    assert_eq!(conditions[0].last_transition_time, at(9));
}

#[test]
fn phase_set_by_hand_is_observed_again() {
    let training = observed(RunPhase::Training, Some(PipelineStatus::TrainingModel));
    let mut edited = advance(&TrainingRunStatus::default(), &training, &at(0), None);
    edited.phase = Some(RunPhase::Succeeded);
    assert!(!has_ended(&edited));

    let complete = observed(RunPhase::Succeeded, Some(PipelineStatus::Complete));
    let next = advance(&edited, &complete, &at(5), None);

    assert!(has_ended(&next));
    assert_eq!(
        stages(&next),
        [
            PipelineStatus::PreparingData,
            PipelineStatus::TrainingModel,
            PipelineStatus::Complete
        ]
    );
    assert_eq!(next.completion_time, Some(at(5)));
}
