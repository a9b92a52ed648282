//! Faults that must not lose a status: Labelbox failing for a while, rate
//! limits, permanent errors, Jobs and runs deleted mid-run, templates
//! changed mid-run, and trainhook killed again and again.

mod support;

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::DeleteParams;
use serde_json::json;

use support::cluster::eventually;
use support::standin::Fault;
use support::world::{RUN_TIMEOUT, World, status_names};
use trainhook::resources::{RunPhase, StageState};

const STAGES: [&str; 3] = ["PREPARING_DATA", "TRAINING_MODEL", "COMPLETE"];

#[tokio::test(flavor = "multi_thread")]
async fn labelbox_outage_delays_but_keeps_order() {
    let world = World::new(
        "outage",
        json!({"localcluster.trainhook.dev/run-seconds": "2"}),
    )
    .await;
    world
        .standin
        .queue_fault(Fault::http_status(500).times(10_000))
        .await;

    let (code, answer) = world.post_run("outage-run").await;
    assert_eq!(code, 200, "{answer}");
    world.finished_run("outage-run").await;

    // Labelbox responds with 500 for a minute while the run finishes.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        world
            .standin
            .accepted_statuses("outage-run")
            .await
            .is_empty()
    );
    let run = world.runs().await.get("outage-run").await.unwrap();
    let report = run.status.unwrap().labelbox;
    assert_eq!(
        report.stages.len(),
        3,
        "every stage is recorded while Labelbox is down"
    );
    assert!(report.stages[0].attempts > 1, "{report:?}");
    assert!(
        report.stages[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("500"),
        "{report:?}"
    );

    world.standin.clear_faults().await;
    world.acknowledged("outage-run", "COMPLETE").await;
    let statuses = world.standin.accepted_statuses("outage-run").await;
    assert_eq!(status_names(&statuses), STAGES);
}

#[tokio::test(flavor = "multi_thread")]
async fn labelbox_timeouts_are_retried() {
    let world = World::new(
        "timeouts",
        json!({"localcluster.trainhook.dev/run-seconds": "1"}),
    )
    .await;
    let mut world = world;
    world
        .restart_trainhook(vec!["--labelbox-timeout-seconds".into(), "1".into()])
        .await;
    world
        .standin
        .queue_fault(Fault::delay(Duration::from_secs(3)).times(3))
        .await;

    world.post_run("timeout-run").await;
    world.acknowledged("timeout-run", "COMPLETE").await;
    let statuses = world.standin.accepted_statuses("timeout-run").await;
    let names = status_names(&statuses);
    let first_of_each: Vec<&str> = STAGES
        .iter()
        .copied()
        .filter(|stage| names.iter().any(|name| name == stage))
        .collect();
    assert_eq!(first_of_each, STAGES, "{names:?}");
    let ordered = names
        .windows(2)
        .all(|pair| stage_index(&pair[0]) <= stage_index(&pair[1]));
    assert!(
        ordered,
        "a later stage was followed by an earlier one: {names:?}"
    );
}

fn stage_index(name: &str) -> usize {
    STAGES
        .iter()
        .position(|stage| *stage == name)
        .unwrap_or(usize::MAX)
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_waits_for_retry_after() {
    let world = World::new(
        "ratelimit",
        json!({"localcluster.trainhook.dev/run-seconds": "1"}),
    )
    .await;
    world
        .standin
        .queue_fault(Fault::rate_limit(Duration::from_secs(2)).times(1))
        .await;

    world.post_run("limited-run").await;
    world.acknowledged("limited-run", "COMPLETE").await;

    let requests = world.standin.requests_for("limited-run").await;
    let limited = &requests[0];
    let retry = &requests[1];
    assert_eq!(limited.response.as_ref().unwrap().status, 429);
    let parse = |time: &str| time.parse::<Timestamp>().unwrap();
    let answered = parse(limited.responded_at.as_deref().unwrap());
    let waited = parse(&retry.received_at).duration_since(answered);
    assert!(
        waited >= SignedDuration::from_millis(1900),
        "retried after {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_stage_resent_after_key_change() {
    let mut world = World::new(
        "rejected",
        json!({"localcluster.trainhook.dev/run-seconds": "1"}),
    )
    .await;
    let key_dir = tempfile::tempdir().unwrap();
    let key_file = key_dir.path().join("api-key");
    std::fs::write(&key_file, "wrong-key").unwrap();
    world
        .restart_trainhook(vec![
            "--labelbox-api-key-file".into(),
            key_file.to_str().unwrap().into(),
        ])
        .await;

    world.post_run("rejected-run").await;
    let runs = world.runs().await;
    let condition = eventually(
        "the Reported condition to say Rejected",
        RUN_TIMEOUT,
        || async {
            let run = runs.get("rejected-run").await.ok()?;
            let conditions = run.status?.conditions;
            conditions
                .into_iter()
                .find(|c| c.type_ == "Reported" && c.reason == "Rejected")
        },
    )
    .await;
    assert!(
        condition.message.contains("AUTHENTICATION_ERROR"),
        "{}",
        condition.message
    );
    let events = world
        .cluster
        .kubectl_ok(&["get", "events", "-n", &world.namespace]);
    assert!(events.contains("ReportRejected"), "{events}");

    std::fs::write(&key_file, support::world::API_KEY).unwrap();
    world.acknowledged("rejected-run", "COMPLETE").await;
    let statuses = world.standin.accepted_statuses("rejected-run").await;
    assert_eq!(status_names(&statuses), STAGES);
}

#[tokio::test(flavor = "multi_thread")]
async fn ttl_zero_job_still_reports_complete() {
    let annotations = json!({
        "localcluster.trainhook.dev/run-seconds": "1",
        "localcluster.trainhook.dev/termination-message": r#"{"weights": "s3://b/w.pt"}"#
    });
    let world =
        World::with_job_spec("ttl", annotations, json!({"ttlSecondsAfterFinished": 0})).await;

    world.post_run("ttl-run").await;
    world.acknowledged("ttl-run", "COMPLETE").await;
    let statuses = world.standin.accepted_statuses("ttl-run").await;
    assert_eq!(status_names(&statuses), STAGES);
    assert_eq!(statuses[2]["metadata"], json!({"weights": "s3://b/w.pt"}));

    let jobs: Api<Job> = world.jobs().await;
    eventually(
        "the finished Job to be deleted by its TTL",
        RUN_TIMEOUT,
        || async { jobs.get_opt("ttl-run").await.ok()?.is_none().then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn job_deleted_mid_run_fails_run() {
    let world = World::new(
        "jobdeleted",
        json!({"localcluster.trainhook.dev/run-seconds": "60"}),
    )
    .await;
    world.post_run("orphan-run").await;
    world.acknowledged("orphan-run", "TRAINING_MODEL").await;

    world.cluster.kubectl_ok(&[
        "delete",
        "job",
        "orphan-run",
        "-n",
        &world.namespace,
        "--wait=false",
    ]);
    let run = world.finished_run("orphan-run").await;
    let status = run.status.unwrap();
    assert_eq!(status.phase, Some(RunPhase::Failed));
    assert!(
        status
            .message
            .as_deref()
            .unwrap_or("")
            .contains("deleted before it finished"),
        "{:?}",
        status.message
    );

    world.acknowledged("orphan-run", "FAILED").await;
    let jobs = world.jobs().await;
    eventually("the deleted Job to be gone", RUN_TIMEOUT, || async {
        jobs.get_opt("orphan-run")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        jobs.get_opt("orphan-run").await.unwrap().is_none(),
        "a second training was started"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_deleted_mid_run_reports_failed() {
    let world = World::new(
        "rundeleted",
        json!({"localcluster.trainhook.dev/run-seconds": "60"}),
    )
    .await;
    world.post_run("deleted-run").await;
    world.acknowledged("deleted-run", "TRAINING_MODEL").await;

    world
        .runs()
        .await
        .delete("deleted-run", &DeleteParams::default())
        .await
        .unwrap();
    let runs = world.runs().await;
    eventually("the deleted run to disappear", RUN_TIMEOUT, || async {
        runs.get_opt("deleted-run")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;

    let statuses = world.standin.accepted_statuses("deleted-run").await;
    assert_eq!(
        status_names(&statuses),
        ["PREPARING_DATA", "TRAINING_MODEL", "FAILED"]
    );
    let message = statuses[2]["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("was deleted before training finished"),
        "{message}"
    );
    let jobs = world.jobs().await;
    eventually(
        "the run's Job to be garbage-collected",
        RUN_TIMEOUT,
        || async {
            jobs.get_opt("deleted-run")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn template_change_leaves_running_job() {
    let world = World::new(
        "template",
        json!({"localcluster.trainhook.dev/run-seconds": "6"}),
    )
    .await;
    world.post_run("steady-run").await;
    world.acknowledged("steady-run", "TRAINING_MODEL").await;
    let before = world.jobs().await.get("steady-run").await.unwrap();

    world.cluster.kubectl_ok(&[
        "delete",
        "trainingtemplate",
        "bounding-box",
        "-n",
        &world.namespace,
    ]);
    let run = world.finished_run("steady-run").await;
    assert_eq!(run.status.unwrap().phase, Some(RunPhase::Succeeded));
    let after = world.jobs().await.get("steady-run").await.unwrap();
    assert_eq!(before.metadata.uid, after.metadata.uid);
    assert_eq!(before.spec, after.spec);
    world.acknowledged("steady-run", "COMPLETE").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_kills_lose_no_status() {
    let mut world = World::new(
        "kills",
        json!({"localcluster.trainhook.dev/run-seconds": "1"}),
    )
    .await;
    let ids: Vec<String> = (0..5).map(|i| format!("killed-run-{i}")).collect();
    for id in &ids {
        let (code, answer) = world.post_run(id).await;
        assert_eq!(code, 200, "{answer}");
    }

    for kill in 0..20 {
        let pause = Duration::from_millis(200 + (rand::random::<u64>() % 1200));
        tokio::time::sleep(pause).await;
        world.restart_trainhook(Vec::new()).await;
        eprintln!("kill {kill} after {pause:?}");
    }

    for id in &ids {
        world.acknowledged(id, "COMPLETE").await;
        let statuses = world.standin.accepted_statuses(id).await;
        let names = status_names(&statuses);
        let unique: Vec<&String> = names.iter().fold(Vec::new(), |mut seen, name| {
            if seen.last() != Some(&name) {
                seen.push(name);
            }
            seen
        });
        assert_eq!(unique, STAGES, "{id}: {names:?}");
        let run = world.runs().await.get(id).await.unwrap();
        assert!(
            run.status
                .unwrap()
                .labelbox
                .stages
                .iter()
                .all(|s| s.state == StageState::Acknowledged)
        );
    }
    let jobs = world.list_jobs().await;
    assert_eq!(jobs.len(), ids.len());
}
