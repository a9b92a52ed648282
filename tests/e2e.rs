//! End-to-end tests: a signed webhook becomes a TrainingRun, a Job and
//! Labelbox statuses, on the local control plane with trainhook, the
//! Labelbox stand-in and kubectl all running as real processes.

mod support;

use std::time::Duration;

use futures::future::join_all;
use kube::Api;
use serde_json::{Value, json};

use support::cluster::{self, eventually};
use support::trainhook::{Options, Trainhook};
use support::world::{API_KEY, RUN_TIMEOUT, World, model_run_body, status_names, template_yaml};
use trainhook::resources::{RunPhase, StageState};

#[tokio::test(flavor = "multi_thread")]
async fn successful_pod_completes_run() {
    let annotations = json!({
        "localcluster.trainhook.dev/run-seconds": "3",
        "localcluster.trainhook.dev/termination-message": r#"{"weights": "s3://models/boxes.pt", "epochs": 3}"#
    });
    let world = World::new("success", annotations).await;
    let model_run_id = "9e3f331a-551b-0e24-6ab5-f69855df64ea";

    let (code, answer) = world.post_run(model_run_id).await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["created"], true);
    assert_eq!(answer["namespace"], world.namespace.as_str());
    assert_eq!(answer["name"], model_run_id);

    let run = world.finished_run(model_run_id).await;
    let status = run.status.unwrap();
    assert_eq!(
        status.phase,
        Some(RunPhase::Succeeded),
        "{:?}",
        status.message
    );
    assert_eq!(status.job_name.as_deref(), Some(model_run_id));

    let job = world.jobs().await.get(model_run_id).await.unwrap();
    let conditions = job.status.unwrap().conditions.unwrap_or_default();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True"),
        "{conditions:?}"
    );

    let statuses = world.statuses(model_run_id, 3).await;
    assert_eq!(
        status_names(&statuses),
        ["PREPARING_DATA", "TRAINING_MODEL", "COMPLETE"]
    );
    assert_eq!(
        statuses[2]["metadata"],
        json!({"weights": "s3://models/boxes.pt", "epochs": "3"})
    );

    world.acknowledged(model_run_id, "COMPLETE").await;
    let report = world
        .runs()
        .await
        .get(model_run_id)
        .await
        .unwrap()
        .status
        .unwrap()
        .labelbox;
    let states: Vec<_> = report.stages.iter().map(|stage| stage.state).collect();
    assert_eq!(states, [StageState::Acknowledged; 3], "{report:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_pod_fails_run() {
    let annotations = json!({
        "localcluster.trainhook.dev/outcome": "fail",
        "localcluster.trainhook.dev/exit-code": "3",
        "localcluster.trainhook.dev/termination-message": "CUDA error: out of memory"
    });
    let world = World::new("failure", annotations).await;
    let model_run_id = "Failing_Run.1";

    let (code, answer) = world.post_run(model_run_id).await;
    assert_eq!(code, 200, "{answer}");
    let name = answer["name"].as_str().unwrap().to_owned();
    assert_ne!(
        name, model_run_id,
        "an id with upper case and _ needs a derived name"
    );

    let run = world.finished_run(&name).await;
    let status = run.status.unwrap();
    assert_eq!(status.phase, Some(RunPhase::Failed));
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("exited with code 3: CUDA error: out of memory"),
        "{message}"
    );

    let statuses = eventually("FAILED to reach the stand-in", RUN_TIMEOUT, || async {
        let statuses = world.standin.accepted_statuses(model_run_id).await;
        status_names(&statuses)
            .contains(&"FAILED".to_owned())
            .then_some(statuses)
    })
    .await;
    let failed = statuses.last().unwrap();
    assert_eq!(failed["status"], "FAILED");
    let error_message = failed["errorMessage"].as_str().unwrap();
    assert!(
        error_message.contains("CUDA error: out of memory"),
        "{error_message}"
    );
    assert!(error_message.chars().count() <= 255);

    let described =
        world
            .cluster
            .kubectl_ok(&["describe", "trainingrun", &name, "-n", &world.namespace]);
    assert!(described.contains("RunFailed"), "{described}");
    assert!(
        described.contains("CUDA error: out of memory"),
        "{described}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_delivery_makes_one_run() {
    let world = World::new(
        "repeat",
        json!({"localcluster.trainhook.dev/run-seconds": "1"}),
    )
    .await;
    let body = model_run_body("repeated-run");

    let (first, answer) = world.trainhook.post_model_run(&body).await;
    assert_eq!(first, 200, "{answer}");
    assert_eq!(answer["created"], true);
    let (second, answer) = world.trainhook.post_model_run(&body).await;
    assert_eq!(second, 200, "{answer}");
    assert_eq!(answer["created"], false);

    let concurrent_body = model_run_body("concurrent-run");
    let deliveries = (0..10).map(|_| world.trainhook.post_model_run(&concurrent_body));
    let concurrent = join_all(deliveries).await;
    let created = concurrent
        .iter()
        .filter(|(_, answer)| answer["created"] == true)
        .count();
    assert!(
        concurrent.iter().all(|(code, _)| *code == 200),
        "{concurrent:?}"
    );
    assert_eq!(created, 1, "{concurrent:?}");

    world.finished_run("repeated-run").await;
    world.finished_run("concurrent-run").await;
    let runs = world.list_runs().await;
    let jobs = world.list_jobs().await;
    assert_eq!(runs.len(), 2);
    assert_eq!(jobs.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_template_fails_run() {
    let world = World::new("missing", json!({})).await;
    let run = json!({
        "apiVersion": "trainhook.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": "by-hand", "namespace": world.namespace},
        "spec": {"modelType": "segmentation", "modelRunId": "by-hand"}
    });
    world.cluster.apply(&run.to_string());

    let run = world.finished_run("by-hand").await;
    let status = run.status.unwrap();
    assert_eq!(status.phase, Some(RunPhase::Failed));
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("no TrainingTemplate in namespace"),
        "{message}"
    );

    let statuses = world.statuses("by-hand", 1).await;
    assert_eq!(status_names(&statuses), ["FAILED"]);
    assert!(
        statuses[0]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("segmentation")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_after_complete_sends_nothing() {
    let mut world = World::new(
        "restart",
        json!({"localcluster.trainhook.dev/run-seconds": "1"}),
    )
    .await;
    let (code, answer) = world.post_run("restart-run").await;
    assert_eq!(code, 200, "{answer}");
    world.statuses("restart-run", 3).await;
    world.acknowledged("restart-run", "COMPLETE").await;
    let before = world.standin.accepted_statuses("restart-run").await.len();

    world.trainhook.kill();
    world.trainhook = Trainhook::start(Options {
        kubeconfig: &world.cluster.kubeconfig,
        namespace: &world.namespace,
        labelbox_endpoint: &world.standin.status_url(),
        labelbox_api_key: API_KEY,
        subcommand: "run",
        extra_args: Vec::new(),
    })
    .await;

    // The restarted controller reconciles every run once at start; wait
    // until its log shows this run was looked at, then compare.
    eventually(
        "the restarted trainhook to reconcile the run",
        RUN_TIMEOUT,
        || async { world.trainhook.log().contains("restart-run").then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = world.standin.accepted_statuses("restart-run").await.len();
    assert_eq!(
        before, after,
        "a restarted trainhook sent acknowledged statuses again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn printer_columns_show_progress() {
    let world = World::new(
        "columns",
        json!({"localcluster.trainhook.dev/run-seconds": "1"}),
    )
    .await;
    world.post_run("columns-run").await;
    world.statuses("columns-run", 3).await;
    world.acknowledged("columns-run", "COMPLETE").await;

    let table = world
        .cluster
        .kubectl_ok(&["get", "tr", "-n", &world.namespace]);
    let header = table.lines().next().unwrap();
    for column in [
        "NAME",
        "MODEL TYPE",
        "MODEL RUN",
        "PHASE",
        "LABELBOX",
        "AGE",
    ] {
        assert!(header.contains(column), "{table}");
    }
    let row = table.lines().nth(1).unwrap();
    for value in ["columns-run", "bounding_box", "Succeeded", "COMPLETE"] {
        assert!(row.contains(value), "{table}");
    }
}

/// Sends `body` to `path` with the given signature header, if any.
async fn send(
    url: &str,
    method: &str,
    path: &str,
    body: Vec<u8>,
    signature: Option<String>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = match method {
        "GET" => client.get(format!("{url}{path}")),
        _ => client.post(format!("{url}{path}")),
    };
    if let Some(signature) = signature {
        request = request.header("X-Hub-Signature", signature);
    }
    let response = request.body(body).send().await.unwrap();
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_rejected_and_creates_nothing() {
    let world = World::new("bad-input", json!({})).await;
    let url = world.trainhook.url.clone();
    let signed = |body: &[u8]| Some(world.trainhook.sign(body));

    let (code, models) = send(&url, "GET", "/models", Vec::new(), signed(b"")).await;
    assert_eq!(code, 200, "{models}");
    assert_eq!(models, json!({"bounding_box": {}}));

    let valid = model_run_body("never-created").into_bytes();
    let huge = format!(
        r#"{{"modelType":"bounding_box","modelRunId":"x","pad":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    )
    .into_bytes();
    let cases: Vec<(&str, &str, Vec<u8>, Option<String>, u16, &str)> = vec![
        (
            "unsigned models",
            "/models",
            Vec::new(),
            None,
            401,
            "missing signature",
        ),
        (
            "unsigned run",
            "/model_run",
            valid.clone(),
            None,
            401,
            "missing signature",
        ),
        (
            "wrong secret",
            "/model_run",
            valid.clone(),
            Some(trainhook::signature::sign_sha1(b"wrong", &valid)),
            401,
            "invalid signature",
        ),
        (
            "malformed signature",
            "/model_run",
            valid.clone(),
            Some("sha1=xyz".into()),
            401,
            "malformed X-Hub-Signature",
        ),
        (
            "not JSON",
            "/model_run",
            b"modelType=x".to_vec(),
            signed(b"modelType=x"),
            400,
            "not valid JSON",
        ),
        (
            "array",
            "/model_run",
            b"[]".to_vec(),
            signed(b"[]"),
            400,
            "not an object",
        ),
        (
            "no run id",
            "/model_run",
            br#"{"modelType":"bounding_box"}"#.to_vec(),
            signed(br#"{"modelType":"bounding_box"}"#),
            400,
            "required field modelRunId is missing",
        ),
        (
            "empty type",
            "/model_run",
            br#"{"modelType":"","modelRunId":"r"}"#.to_vec(),
            signed(br#"{"modelType":"","modelRunId":"r"}"#),
            400,
            "field modelType is empty",
        ),
        (
            "unknown type",
            "/model_run",
            br#"{"modelType":"ner","modelRunId":"r"}"#.to_vec(),
            signed(br#"{"modelType":"ner","modelRunId":"r"}"#),
            422,
            "this cluster offers bounding_box",
        ),
        (
            "too large",
            "/model_run",
            huge.clone(),
            signed(&huge),
            413,
            "larger than the limit of 1048576 bytes",
        ),
    ];

    for (case, path, body, signature, expected_code, expected_message) in cases {
        let method = if path == "/models" { "GET" } else { "POST" };
        let (code, answer) = send(&url, method, path, body, signature).await;
        assert_eq!(code, expected_code, "{case}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected_message), "{case}: {answer}");
        assert!(answer["error"].is_string(), "{case}: {answer}");
    }

    let runs = world.list_runs().await;
    assert!(runs.is_empty(), "bad input created {runs:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_api_answers_503() {
    let cluster = cluster::shared();
    let kubeconfig = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    let closed_port = support::trainhook::free_port();
    let server = kubeconfig
        .lines()
        .find_map(|line| line.trim().strip_prefix("server: "))
        .expect("kubeconfig names a server")
        .to_owned();
    let dead = kubeconfig.replace(&server, &format!("https://127.0.0.1:{closed_port}"));
    let dead_path = tempfile::NamedTempFile::new()
        .unwrap()
        .into_temp_path()
        .keep()
        .unwrap();
    std::fs::write(&dead_path, dead).unwrap();

    let webhook = Trainhook::start(Options {
        kubeconfig: &dead_path,
        namespace: "default",
        labelbox_endpoint: "http://127.0.0.1:9/unused",
        labelbox_api_key: API_KEY,
        subcommand: "webhook",
        extra_args: vec!["--api-timeout-seconds".into(), "3".into()],
    })
    .await;

    let (code, answer) = webhook.post_model_run(&model_run_body("while-down")).await;
    assert_eq!(code, 503, "{answer}");
    assert_eq!(answer["error"], "kubernetes_unavailable");

    let (code, answer) = send(&webhook.url, "GET", "/readyz", Vec::new(), None).await;
    assert_eq!(code, 503, "{answer}");
}

/// Starts a second trainhook on the world's namespace; both elect a leader
/// over a Lease in that namespace.
async fn replica(world: &World) -> Trainhook {
    Trainhook::start(Options {
        kubeconfig: &world.cluster.kubeconfig,
        namespace: &world.namespace,
        labelbox_endpoint: &world.standin.status_url(),
        labelbox_api_key: API_KEY,
        subcommand: "run",
        extra_args: lease_args(&world.namespace),
    })
    .await
}

fn lease_args(namespace: &str) -> Vec<String> {
    [
        "--lease-namespace",
        namespace,
        "--lease-duration-seconds",
        "6",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Returns the holder of the namespace's `trainhook` Lease.
async fn lease_holder(world: &World) -> Option<String> {
    use k8s_openapi::api::coordination::v1::Lease;
    let leases: Api<Lease> = Api::namespaced(world.cluster.client().await, &world.namespace);
    leases
        .get_opt("trainhook")
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_report_each_stage_once() {
    let mut world = World::new(
        "replicas",
        json!({"localcluster.trainhook.dev/run-seconds": "2"}),
    )
    .await;
    world.trainhook.kill();
    let first = replica(&world).await;
    let second = replica(&world).await;

    let (code, answer) = first
        .post_model_run(&model_run_body("replicated-run"))
        .await;
    assert_eq!(code, 200, "{answer}");
    let (code, answer) = second
        .post_model_run(&model_run_body("replicated-run"))
        .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        answer["created"], false,
        "the second replica found the first one's run"
    );

    world.acknowledged("replicated-run", "COMPLETE").await;
    let statuses = world.standin.accepted_statuses("replicated-run").await;
    assert_eq!(
        status_names(&statuses),
        ["PREPARING_DATA", "TRAINING_MODEL", "COMPLETE"]
    );
    let jobs = world.list_jobs().await;
    assert_eq!(jobs.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_leader_is_replaced_mid_run() {
    let mut world = World::new(
        "leader",
        json!({"localcluster.trainhook.dev/run-seconds": "15"}),
    )
    .await;
    world.trainhook.kill();
    let mut replicas = vec![replica(&world).await, replica(&world).await];

    let (code, answer) = replicas[0]
        .post_model_run(&model_run_body("leader-run"))
        .await;
    assert_eq!(code, 200, "{answer}");
    world.acknowledged("leader-run", "TRAINING_MODEL").await;

    let holder = lease_holder(&world)
        .await
        .expect("a replica holds the Lease");
    let leader = replicas
        .iter()
        .position(|replica| holder.ends_with(&format!("-{}", replica.pid())))
        .unwrap_or_else(|| panic!("no replica has identity {holder}"));
    replicas[leader].kill();

    world.acknowledged("leader-run", "COMPLETE").await;
    let statuses = world.standin.accepted_statuses("leader-run").await;
    assert_eq!(
        status_names(&statuses),
        ["PREPARING_DATA", "TRAINING_MODEL", "COMPLETE"]
    );
    let new_holder = lease_holder(&world).await.unwrap();
    assert_ne!(new_holder, holder);
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_shows_events_of_each_step() {
    let world = World::new(
        "events",
        json!({"localcluster.trainhook.dev/run-seconds": "1"}),
    )
    .await;
    world.post_run("events-run").await;
    world.acknowledged("events-run", "COMPLETE").await;

    let described = world.cluster.kubectl_ok(&[
        "describe",
        "trainingrun",
        "events-run",
        "-n",
        &world.namespace,
    ]);
    for expected in [
        "JobCreated",
        "StageReported",
        "Labelbox acknowledged PREPARING_DATA",
        "Labelbox acknowledged TRAINING_MODEL",
        "Labelbox acknowledged COMPLETE",
        "RunSucceeded",
    ] {
        assert!(
            described.contains(expected),
            "{expected} missing in:\n{described}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_describes_every_field() {
    let cluster = cluster::shared();
    let cases = [
        (
            "trainingrun.spec",
            [
                "modelType",
                "modelRunId",
                "modelId",
                "organizationId",
                "template",
            ]
            .as_slice(),
        ),
        (
            "trainingtemplate.spec",
            [
                "modelType",
                "jobTemplate",
                "trainingContainer",
                "initContainerStages",
                "labelboxApiKeySecret",
            ]
            .as_slice(),
        ),
    ];
    for (path, fields) in cases {
        let explained = cluster.kubectl_ok(&["explain", path]);
        for field in fields {
            let line = explained
                .lines()
                .position(|line| line.trim_start().starts_with(&format!("{field}\t")))
                .unwrap_or_else(|| panic!("{path} lacks {field}:\n{explained}"));
            let description = explained.lines().nth(line + 1).unwrap_or_default();
            assert!(
                !description.trim().is_empty(),
                "{path}.{field} has no description:\n{explained}"
            );
        }
    }

    // The resource and its spec each get a description of their own.
    for (kind, expected) in [
        (
            "trainingrun",
            "A request from Labelbox to train one model run",
        ),
        ("trainingrun.spec", "Desired state of a TrainingRun"),
        (
            "trainingtemplate",
            "A model that Labelbox can ask this cluster",
        ),
        (
            "trainingtemplate.spec",
            "Desired state of a TrainingTemplate",
        ),
    ] {
        let explained = cluster.kubectl_ok(&["explain", kind]);
        assert!(explained.contains(expected), "{explained}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_secret_applies_with_overlap() {
    let mut world = World::new("rotation", json!({})).await;
    world
        .restart_trainhook(vec!["--webhook-secret-overlap-seconds".into(), "4".into()])
        .await;
    let url = world.trainhook.url.clone();
    let old = world.trainhook.secret.clone();
    let signed_by = |secret: &[u8]| Some(trainhook::signature::sign_sha1(secret, b""));

    let (code, _) = send(&url, "GET", "/models", Vec::new(), signed_by(&old)).await;
    assert_eq!(code, 200);

    std::fs::write(&world.trainhook.secret_file, "rotated-secret").unwrap();
    let (code, answer) = send(
        &url,
        "GET",
        "/models",
        Vec::new(),
        signed_by(b"rotated-secret"),
    )
    .await;
    assert_eq!(
        code, 200,
        "the new secret applies without a restart: {answer}"
    );
    let (code, answer) = send(&url, "GET", "/models", Vec::new(), signed_by(&old)).await;
    assert_eq!(
        code, 200,
        "the old secret stays valid during the overlap: {answer}"
    );

    tokio::time::sleep(Duration::from_secs(5)).await;
    let (code, answer) = send(&url, "GET", "/models", Vec::new(), signed_by(&old)).await;
    assert_eq!(
        code, 401,
        "the old secret expires after the overlap: {answer}"
    );
    let (code, _) = send(
        &url,
        "GET",
        "/models",
        Vec::new(),
        signed_by(b"rotated-secret"),
    )
    .await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_and_updates() {
    let world = World::new(
        "metrics",
        json!({"localcluster.trainhook.dev/run-seconds": "1"}),
    )
    .await;
    let model_run_id = "counted-run";
    let unsigned = send(
        &world.trainhook.url,
        "POST",
        "/model_run",
        model_run_body(model_run_id).into_bytes(),
        None,
    )
    .await;
    assert_eq!(unsigned.0, 401);
    let (code, answer) = world.post_run(model_run_id).await;
    assert_eq!(code, 200, "{answer}");
    world.acknowledged(model_run_id, "COMPLETE").await;

    let response = reqwest::get(format!("{}/metrics", world.trainhook.url))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();

    for line in [
        r#"trainhook_webhook_requests_total{path="/model_run",code="401"} 1"#,
        r#"trainhook_webhook_requests_total{path="/model_run",code="200"} 1"#,
        r#"trainhook_labelbox_updates_total{status="PREPARING_DATA",outcome="acknowledged"} 1"#,
        r#"trainhook_labelbox_updates_total{status="TRAINING_MODEL",outcome="acknowledged"} 1"#,
        r#"trainhook_labelbox_updates_total{status="COMPLETE",outcome="acknowledged"} 1"#,
        "trainhook_leader 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cut_off_metadata_gets_warning_event() {
    let annotations = json!({
        "localcluster.trainhook.dev/run-seconds": "1",
        "localcluster.trainhook.dev/termination-message": r#"{"weights": "s3://models/bo"#
    });
    let world = World::new("cut-off", annotations).await;
    let model_run_id = "cut-off-metadata";
    world.post_run(model_run_id).await;
    world.acknowledged(model_run_id, "COMPLETE").await;

    let statuses = world.statuses(model_run_id, 3).await;
    assert_eq!(statuses[2]["status"], "COMPLETE");
    assert!(statuses[2]["metadata"].is_null(), "{}", statuses[2]);
    let described = world.cluster.kubectl_ok(&[
        "describe",
        "trainingrun",
        model_run_id,
        "-n",
        &world.namespace,
    ]);
    assert!(described.contains("MetadataUnreadable"), "{described}");
    assert!(described.contains("not valid JSON"), "{described}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ambiguous_model_type_is_hidden() {
    let world = World::new("ambiguous", json!({})).await;
    let second = template_yaml(&world.namespace, "second-box", "bounding_box", &json!({}));
    world.cluster.apply(&second);
    let url = world.trainhook.url.clone();
    let signed = world.trainhook.sign(b"");

    let models = eventually("GET /models to drop the type", RUN_TIMEOUT, || async {
        let (code, models) = send(&url, "GET", "/models", Vec::new(), Some(signed.clone())).await;
        (code == 200 && models == json!({})).then_some(models)
    })
    .await;
    assert_eq!(models, json!({}));

    let (code, answer) = world.post_run("ambiguous-run").await;
    assert_eq!(code, 409, "{answer}");
    assert_eq!(answer["error"], "ambiguous_model_type", "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("bounding-box"), "{message}");
    assert!(message.contains("second-box"), "{message}");
    assert!(
        world
            .runs()
            .await
            .get_opt("ambiguous-run")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn model_run_id_cannot_change() {
    let world = World::new(
        "immutable",
        json!({"localcluster.trainhook.dev/run-seconds": "1"}),
    )
    .await;
    let (code, answer) = world.post_run("fixed-id").await;
    assert_eq!(code, 200, "{answer}");

    let patch = r#"{"spec":{"modelRunId":"another-id"}}"#;
    let output = world.cluster.kubectl(&[
        "patch",
        "trainingrun",
        "fixed-id",
        "-n",
        &world.namespace,
        "--type",
        "merge",
        "-p",
        patch,
    ]);

    assert!(!output.status.success(), "the patch was accepted");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("spec.modelRunId cannot change"), "{stderr}");
    world.acknowledged("fixed-id", "COMPLETE").await;
    let statuses = world.standin.accepted_statuses("another-id").await;
    assert!(statuses.is_empty(), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn phase_set_by_hand_is_corrected() {
    let world = World::new(
        "hand-phase",
        json!({"localcluster.trainhook.dev/run-seconds": "8"}),
    )
    .await;
    let model_run_id = "hand-set-phase";
    world.post_run(model_run_id).await;
    world.acknowledged(model_run_id, "TRAINING_MODEL").await;

    world.cluster.kubectl_ok(&[
        "patch",
        "trainingrun",
        model_run_id,
        "-n",
        &world.namespace,
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"phase":"Succeeded"}}"#,
    ]);

    world.acknowledged(model_run_id, "COMPLETE").await;
    let statuses = world.statuses(model_run_id, 3).await;
    assert_eq!(
        status_names(&statuses),
        ["PREPARING_DATA", "TRAINING_MODEL", "COMPLETE"]
    );
}
