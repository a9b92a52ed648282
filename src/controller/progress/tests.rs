use serde_json::json;

use super::*;

fn job(extra: Value) -> Job {
    let mut job = json!({
        "metadata": {
            "name": "run-1",
            "annotations": {
                TRAINING_CONTAINER_ANNOTATION: "train",
                INIT_STAGES_ANNOTATION: r#"[{"container":"export","status":"EXPORTING_DATA"}]"#
            }
        },
        "spec": {"template": {"spec": {"containers": [{"name": "train"}]}}}
    });
    merge(&mut job, extra);
    serde_json::from_value(job).unwrap()
}

fn merge(target: &mut Value, extra: Value) {
    match (target, extra) {
        (Value::Object(target), Value::Object(extra)) => {
            for (key, value) in extra {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, extra) => *target = extra,
    }
}

fn pod(status: Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": "run-1-abcde"}, "status": status})).unwrap()
}

fn terminated(exit_code: i32, message: &str) -> Value {
    json!({"containerStatuses": [{
        "name": "train", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": exit_code, "message": message, "reason": "Error",
                                  "finishedAt": "2026-12-04T10:00:00Z"}}
    }]})
}

fn failed_condition() -> Value {
    json!({"status": {"conditions": [{"type": "Failed", "status": "True",
        "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}})
}

#[test]
fn pending_pod_waits_for_export() {
    let observation = observe(&job(json!({})), &[], None);
    assert_eq!(observation.stage, Some(PipelineStatus::ExportingData));
    assert_eq!(observation.phase, RunPhase::Preparing);
}

#[test]
fn unmapped_template_starts_preparing() {
    let plain = job(json!({"metadata": {"annotations": {INIT_STAGES_ANNOTATION: "[]"}}}));
    assert_eq!(
        observe(&plain, &[], None).stage,
        Some(PipelineStatus::PreparingData)
    );
}

#[test]
fn running_export_container_is_exporting() {
    let status = json!({"initContainerStatuses": [{
        "name": "export", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"running": {}}
    }]});
    let observation = observe(&job(json!({})), &[pod(status)], None);
    assert_eq!(observation.stage, Some(PipelineStatus::ExportingData));
}

#[test]
fn finished_export_then_prepares() {
    let status = json!({"initContainerStatuses": [{
        "name": "export", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 0}}
    }]});
    let observation = observe(&job(json!({})), &[pod(status)], None);
    assert_eq!(observation.stage, Some(PipelineStatus::PreparingData));
}

#[test]
fn running_training_container_is_training() {
    let status = json!({"containerStatuses": [{
        "name": "train", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
        "state": {"running": {}}
    }]});
    let observation = observe(&job(json!({})), &[pod(status)], None);
    assert_eq!(observation.stage, Some(PipelineStatus::TrainingModel));
    assert_eq!(observation.phase, RunPhase::Training);
}

#[test]
fn waiting_training_container_is_preparing() {
    let status = json!({"containerStatuses": [{
        "name": "train", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": "ContainerCreating"}}
    }]});
    let plain = job(json!({"metadata": {"annotations": {INIT_STAGES_ANNOTATION: "[]"}}}));
    assert_eq!(
        observe(&plain, &[pod(status)], None).stage,
        Some(PipelineStatus::PreparingData)
    );
}

#[test]
fn complete_job_carries_json_metadata() {
    let complete = job(json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}));
    let pods = [pod(terminated(
        0,
        r#"{"weights": "s3://b/w.pt", "epochs": 3}"#,
    ))];
    let observation = observe(&complete, &pods, None);
    assert_eq!(observation.stage, Some(PipelineStatus::Complete));
    assert_eq!(observation.phase, RunPhase::Succeeded);
    assert_eq!(
        observation.metadata.get("weights").map(String::as_str),
        Some("s3://b/w.pt")
    );
    assert_eq!(
        observation.metadata.get("epochs").map(String::as_str),
        Some("3")
    );
}

#[test]
fn failed_job_message_leads_with_container() {
    let pods = [pod(terminated(3, "CUDA out of memory"))];
    let observation = observe(&job(failed_condition()), &pods, None);
    let message = observation.message.unwrap();
    assert_eq!(observation.stage, Some(PipelineStatus::Failed));
    assert!(
        message.starts_with(
            "container train in pod run-1-abcde exited with code 3: CUDA out of memory"
        ),
        "{message}"
    );
    assert!(message.contains("BackoffLimitExceeded"), "{message}");
}

#[test]
fn failure_message_fits_labelbox_limit() {
    let pods = [pod(terminated(1, &"x".repeat(1000)))];
    let message = observe(&job(failed_condition()), &pods, None)
        .message
        .unwrap();
    assert_eq!(message.chars().count(), MAX_ERROR_MESSAGE_CHARS);
}

#[test]
fn earlier_termination_used_without_pods() {
    let earlier = ContainerTermination {
        pod: "gone".into(),
        container: "train".into(),
        exit_code: 2,
        reason: None,
        message: Some("disk full".into()),
    };
    let message = observe(&job(failed_condition()), &[], Some(&earlier))
        .message
        .unwrap();
    assert!(
        message.contains("exited with code 2: disk full"),
        "{message}"
    );
}

#[test]
fn deleted_job_fails_run() {
    let deleted = job(json!({"metadata": {"deletionTimestamp": "2026-12-04T10:00:00Z"}}));
    let observation = observe(&deleted, &[], None);
    assert_eq!(observation.stage, Some(PipelineStatus::Failed));
    assert_eq!(
        observation.message.as_deref(),
        Some("Job run-1 was deleted before it finished")
    );
}

#[test]
fn suspended_job_is_queued() {
    let suspended = job(json!({"spec": {"suspend": true}}));
    let observation = observe(&suspended, &[], None);
    assert_eq!(observation.phase, RunPhase::Queued);
    assert_eq!(observation.stage, None);
}

fn termination_with(exit_code: i32, message: &str) -> ContainerTermination {
    ContainerTermination {
        pod: "run-1-abcde".into(),
        container: "train".into(),
        exit_code,
        reason: None,
        message: Some(message.into()),
    }
}

#[test]
fn cut_off_json_metadata_is_reported() {
    let cut_off = termination_with(0, r#"{"weights": "s3://models/bo"#);
    let reason = unreadable_metadata(&cut_off).unwrap();
    assert!(reason.contains("not valid JSON"), "{reason}");

    let trailing = termination_with(0, "{} trailing");
    assert!(unreadable_metadata(&trailing).is_some());

    for readable in [r#"{"weights": "s3://models/boxes.pt"}"#, "done", " "] {
        assert_eq!(unreadable_metadata(&termination_with(0, readable)), None);
    }
}

#[test]
fn failure_keeps_cut_off_json_message() {
    let earlier = termination_with(1, r#"{"error": "CUDA out of mem"#);
    let message = observe(&job(failed_condition()), &[], Some(&earlier))
        .message
        .unwrap();
    assert!(
        message.contains(r#"{"error": "CUDA out of mem"#),
        "{message}"
    );

    let object = termination_with(1, r#"{"error": "CUDA"}"#);
    let message = observe(&job(failed_condition()), &[], Some(&object))
        .message
        .unwrap();
    assert!(!message.contains("CUDA"), "{message}");
}
