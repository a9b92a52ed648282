//! The API server stopped and started again during a run: the webhook
//! responds with 503 while it is down, and the run completes after it is back
//! with one Job and every stage reported. With etcd stopped, trainhook is
//! not ready.

mod support;

use std::time::Duration;

use serde_json::json;

use support::cluster::{self, eventually};
use support::world::{RUN_TIMEOUT, World, model_run_body, status_names};

#[tokio::test(flavor = "multi_thread")]
async fn run_survives_apiserver_restart() {
    let cluster = cluster::private();
    let annotations = json!({"localcluster.trainhook.dev/run-seconds": "10"});
    let mut world = World::on_cluster(cluster, "outage", annotations, json!({})).await;
    world
        .restart_trainhook(vec!["--api-timeout-seconds".into(), "3".into()])
        .await;

    let (code, answer) = world.post_run("outage-run").await;
    assert_eq!(code, 200, "{answer}");
    world.acknowledged("outage-run", "TRAINING_MODEL").await;

    cluster.stop_component("kube-apiserver");
    let (code, answer) = world.post_run("while-down").await;
    assert_eq!(code, 503, "{answer}");
    assert_eq!(answer["error"], "kubernetes_unavailable");
    tokio::time::sleep(Duration::from_secs(10)).await;
    cluster.start_component("kube-apiserver");

    let url = world.trainhook.url.clone();
    eventually("trainhook to be ready again", RUN_TIMEOUT, || async {
        let response = reqwest::get(format!("{url}/readyz")).await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
    // A freshly started API server may still refuse or delay requests for
    // custom resources for a moment, as Labelbox's retries would see.
    let trainhook = &world.trainhook;
    eventually("the webhook to accept a run again", RUN_TIMEOUT, || async {
        let (code, _) = trainhook
            .post_model_run(&model_run_body("after-outage"))
            .await;
        (code == 200).then_some(())
    })
    .await;

    world.acknowledged("outage-run", "COMPLETE").await;
    let statuses = world.standin.accepted_statuses("outage-run").await;
    assert_eq!(
        status_names(&statuses),
        ["PREPARING_DATA", "TRAINING_MODEL", "COMPLETE"]
    );
    let jobs = world.list_jobs().await;
    let outage_jobs = jobs
        .iter()
        .filter(|job| job.metadata.name.as_deref() == Some("outage-run"))
        .count();
    assert_eq!(outage_jobs, 1);
    assert!(
        world
            .runs()
            .await
            .get_opt("while-down")
            .await
            .unwrap()
            .is_none(),
        "a 503 created a run"
    );

    // The API server still responds without etcd, but it is not ready,
    // and neither is trainhook.
    cluster.stop_component("etcd");
    eventually("/readyz to fail without etcd", RUN_TIMEOUT, || async {
        let response = reqwest::get(format!("{url}/readyz")).await.ok()?;
        (response.status() == 503).then_some(())
    })
    .await;
    cluster.start_component("etcd");
    eventually("/readyz to pass with etcd back", RUN_TIMEOUT, || async {
        let response = reqwest::get(format!("{url}/readyz")).await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
}
