//! Checks the Labelbox stand-in against the official Python SDK, and
//! trainhook's client against both.
//!
//! The SDK test installs `labelbox` from PyPI into a virtual environment under
//! Cargo's target folder the first time it runs. It prints one line and
//! passes without checking anything when `python3` is missing or PyPI cannot
//! be reached. Any other failure to set up the environment fails the test. Every request goes
//! to the stand-in on 127.0.0.1, and the Python script blocks any other host.

#[path = "support/standin.rs"]
#[allow(dead_code)]
mod standin;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use standin::{Fault, RecordedRequest, Standin};
use trainhook::labelbox::{
    LabelboxClient, MAX_ERROR_MESSAGE_CHARS, SendError, StatusUpdate, request_body,
};
use trainhook::resources::PipelineStatus;
use trainhook::secrets::SecretSource;

/// SDK version the comparison was written against.
const SDK_VERSION: &str = "7.17.0";

const API_KEY: &str = "standin-test-key";

/// A model run id in the form Labelbox uses.
const MODEL_RUN_ID: &str = "9e3f331a-551b-0e24-6ab5-f69855df64ea";

/// Maximum time the SDK script may run. The SDK retries 5xx responses for up
/// to 120 s, which the stand-in never sends here unless it is broken.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// Output of pip that means PyPI could not be reached, as opposed to a
/// broken install.
const UNREACHABLE_MARKERS: &[&str] = &[
    "(from versions: none)",
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ProxyError",
];

#[tokio::test]
async fn sdk_and_trainhook_send_same_requests() {
    let Some(python) = sdk_python() else {
        return;
    };
    let standin = Standin::start(API_KEY).await;

    let summary = run_sdk_script(&python, &standin);
    assert_eq!(summary["sdkVersion"], json!(SDK_VERSION), "{summary:#}");
    assert_eq!(
        summary["blockedAttempts"],
        json!([]),
        "the SDK tried to reach another host: {summary:#}"
    );
    for case in summary["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .chain(summary["errorCases"].as_array().expect("errorCases"))
    {
        assert_eq!(
            case["ok"],
            json!(true),
            "SDK case {} failed: {case:#}",
            case["name"]
        );
    }

    let sdk_requests = standin.requests_for(MODEL_RUN_ID).await;
    check_sdk_requests(&sdk_requests);
    check_sdk_rejections(&standin).await;

    standin.clear_requests().await;
    let client = trainhook_client(&standin, API_KEY);
    for update in the_three_updates() {
        let result = client.update_status(&update).await;
        assert_eq!(
            result,
            Ok(()),
            "trainhook's update {} was not acknowledged",
            update.status
        );
    }
    let trainhook_requests = standin.requests_for(MODEL_RUN_ID).await;
    assert_eq!(trainhook_requests.len(), 3, "{trainhook_requests:#?}");

    let sdk_mutations: Vec<&RecordedRequest> =
        sdk_requests.iter().filter(|r| r.path == "/_gql").collect();
    for (index, (sdk, ours)) in sdk_mutations.iter().zip(&trainhook_requests).enumerate() {
        let case = format!("update {index} ({})", sdk.status().unwrap_or("?"));
        assert!(
            ours.accepted,
            "{case}: the stand-in rejected trainhook's request: {ours:#?}"
        );
        assert_eq!(ours.path, sdk.path, "{case}: path");
        assert_eq!(ours.method, sdk.method, "{case}: method");
        assert_eq!(ours.operation, sdk.operation, "{case}: operation");
        assert_eq!(
            ours.normalized_query, sdk.normalized_query,
            "{case}: query text without ignored tokens"
        );
        assert_eq!(ours.variables(), sdk.variables(), "{case}: variables");
        assert_eq!(
            body_keys(ours),
            body_keys(sdk),
            "{case}: top-level body keys"
        );
        assert_eq!(
            ours.headers.get("content-type"),
            sdk.headers.get("content-type"),
            "{case}: Content-Type"
        );
        assert_eq!(
            ours.authorization, sdk.authorization,
            "{case}: Authorization"
        );
        assert_eq!(
            ours.response, sdk.response,
            "{case}: the stand-in's response"
        );
    }

    for (ours, update) in trainhook_requests.iter().zip(the_three_updates()) {
        assert_eq!(
            ours.body.as_ref(),
            Some(&request_body(&update)),
            "request_body() differs from what was sent"
        );
        let user_agent = ours
            .headers
            .get("x-user-agent")
            .map(String::as_str)
            .unwrap_or("");
        assert!(
            user_agent.starts_with("trainhook "),
            "X-User-Agent is {user_agent:?}"
        );
    }

    print_header_differences(sdk_mutations[0], &trainhook_requests[0]);
}

/// Checks the four requests the SDK sent for the main model run.
fn check_sdk_requests(requests: &[RecordedRequest]) {
    let summary: Vec<(&str, Option<&str>, Option<&str>)> = requests
        .iter()
        .map(|r| (r.path.as_str(), r.operation.as_deref(), r.status()))
        .collect();
    assert_eq!(
        summary,
        [
            ("/graphql", Some("GetModelRunPyApi"), None),
            (
                "/_gql",
                Some("setPipelineStatusPyApi"),
                Some("TRAINING_MODEL")
            ),
            ("/_gql", Some("setPipelineStatusPyApi"), Some("COMPLETE")),
            ("/_gql", Some("setPipelineStatusPyApi"), Some("FAILED")),
        ],
        "the SDK's requests: {requests:#?}"
    );
    for request in requests {
        assert!(
            request.accepted,
            "the stand-in rejected the SDK's request: {request:#?}"
        );
        assert!(request.authorization.token_accepted, "{request:#?}");
    }

    let data: Vec<&Value> = requests[1..]
        .iter()
        .map(|r| &r.variables().expect("variables")["data"])
        .collect();
    assert_eq!(data[0], &json!({ "status": "TRAINING_MODEL" }));
    assert_eq!(
        data[1],
        &json!({ "status": "COMPLETE", "metadata": { "weights": "s3://b/w.pt" } })
    );
    assert_eq!(
        data[2],
        &json!({ "status": "FAILED", "errorMessage": "training crashed: out of memory" })
    );
}

/// Checks the stand-in's responses to the SDK's three rejected requests, which
/// the script found to raise the SDK's matching exceptions.
async fn check_sdk_rejections(standin: &Standin) {
    let wrong_key = standin.requests_for("sdk-wrong-key-run").await;
    let [wrong_key] = wrong_key.as_slice() else {
        panic!("expected one request with the wrong key: {wrong_key:#?}");
    };
    assert!(!wrong_key.authorization.token_accepted);
    assert_eq!(wrong_key.error_code(), Some("AUTHENTICATION_ERROR"));
    assert_eq!(wrong_key.response.as_ref().map(|r| r.status), Some(200));

    let unknown_status = standin.requests_for("sdk-unknown-status-run").await;
    let [unknown_status] = unknown_status.as_slice() else {
        panic!("expected one request with an unknown status: {unknown_status:#?}");
    };
    assert_eq!(
        unknown_status.error_code(),
        Some("GRAPHQL_VALIDATION_FAILED")
    );
    assert_eq!(
        unknown_status.response.as_ref().map(|r| r.status),
        Some(400)
    );

    // The SDK sends an error message of any length unchanged.
    let long_message = standin.requests_for("sdk-long-message-run").await;
    let mutation = long_message
        .last()
        .expect("a request with a long error message");
    let sent = mutation
        .variables()
        .and_then(|v| v.pointer("/data/errorMessage"))
        .and_then(Value::as_str);
    assert_eq!(sent.map(|m| m.chars().count()), Some(256));
    assert_eq!(mutation.error_code(), Some("GRAPHQL_VALIDATION_FAILED"));
}

#[tokio::test]
async fn trainhook_client_reads_standin_rejections() {
    let standin = Standin::start(API_KEY).await;

    let wrong_key = trainhook_client(&standin, "wrong-key");
    let result = wrong_key
        .update_status(&update("run-wrong-key", PipelineStatus::Complete))
        .await;
    assert!(
        matches!(&result, Err(SendError::Permanent { message }) if message.contains("AUTHENTICATION_ERROR")),
        "{result:?}"
    );

    // trainhook cuts the message to the limit that the stand-in enforces.
    let client = trainhook_client(&standin, API_KEY);
    let mut failed = update("run-long-message", PipelineStatus::Failed);
    failed.error_message = Some("é".repeat(300));
    assert_eq!(client.update_status(&failed).await, Ok(()));
    let requests = standin.requests_for("run-long-message").await;
    let sent = requests[0]
        .variables()
        .and_then(|v| v.pointer("/data/errorMessage"))
        .and_then(Value::as_str);
    assert_eq!(
        sent.map(|m| m.chars().count()),
        Some(MAX_ERROR_MESSAGE_CHARS)
    );
}

#[tokio::test]
async fn standin_faults_reach_trainhook_client() {
    let standin = Standin::start(API_KEY).await;
    let client = trainhook_client(&standin, API_KEY);
    let run = "run-faults";

    standin
        .queue_fault(Fault::http_status(503).times(2).for_model_run(run))
        .await;
    standin
        .queue_fault(Fault::http_status(500).for_model_run("another-run"))
        .await;
    for attempt in 0..2 {
        let result = client
            .update_status(&update(run, PipelineStatus::TrainingModel))
            .await;
        assert!(
            matches!(result, Err(SendError::Transient { .. })),
            "attempt {attempt}: {result:?}"
        );
    }
    assert_eq!(
        client
            .update_status(&update(run, PipelineStatus::TrainingModel))
            .await,
        Ok(())
    );
    let pending = standin.faults().await;
    assert_eq!(
        pending.len(),
        1,
        "only the other run's fault is left: {pending:?}"
    );
    assert_eq!(
        pending[0].fault.model_run_id.as_deref(),
        Some("another-run")
    );
    standin.clear_faults().await;
    assert!(standin.faults().await.is_empty());

    standin
        .queue_fault(Fault::rate_limit(Duration::from_secs(2)))
        .await;
    let result = client
        .update_status(&update(run, PipelineStatus::Complete))
        .await;
    assert!(
        matches!(result, Err(SendError::Transient { retry_after: Some(wait), .. }) if wait == Duration::from_secs(2)),
        "{result:?}"
    );

    standin
        .queue_fault(Fault::graphql_error("RESOURCE_NOT_FOUND"))
        .await;
    let result = client
        .update_status(&update(run, PipelineStatus::Complete))
        .await;
    assert!(
        matches!(&result, Err(SendError::Permanent { message }) if message.contains("RESOURCE_NOT_FOUND")),
        "{result:?}"
    );

    standin
        .queue_fault(Fault::graphql_error("INTERNAL_SERVER_ERROR"))
        .await;
    let result = client
        .update_status(&update(run, PipelineStatus::Complete))
        .await;
    assert!(
        matches!(result, Err(SendError::Transient { .. })),
        "{result:?}"
    );

    // A delay longer than the client's timeout makes the client give up,
    // while the stand-in still records the request.
    let impatient = LabelboxClient::new(
        standin.status_url(),
        SecretSource::Value(API_KEY.to_owned()),
        Duration::from_millis(300),
    )
    .expect("build trainhook's client");
    standin
        .queue_fault(Fault::delay(Duration::from_millis(1500)))
        .await;
    let result = impatient
        .update_status(&update(run, PipelineStatus::Complete))
        .await;
    assert!(
        matches!(result, Err(SendError::Transient { .. })),
        "{result:?}"
    );

    let requests = standin
        .wait_for_requests(run, 7, Duration::from_secs(10))
        .await;
    let statuses: Vec<u16> = requests
        .iter()
        .map(|r| r.response.as_ref().expect("a response").status)
        .collect();
    assert_eq!(
        statuses,
        [503, 503, 200, 429, 200, 200, 200],
        "{requests:#?}"
    );
    let faulted: Vec<bool> = requests.iter().map(|r| r.fault.is_some()).collect();
    assert_eq!(
        faulted,
        [true, true, false, true, true, true, true],
        "only the third request had no fault"
    );
    assert_eq!(
        requests[3]
            .response
            .as_ref()
            .unwrap()
            .headers
            .get("retry-after")
            .map(String::as_str),
        Some("2")
    );
    assert_eq!(requests[4].error_code(), Some("RESOURCE_NOT_FOUND"));
    assert!(
        requests[6].accepted,
        "a delayed request still gets the normal response"
    );

    standin.clear_requests().await;
    assert!(standin.requests().await.is_empty());
}

/// Returns the three updates that both the SDK script and trainhook send.
fn the_three_updates() -> Vec<StatusUpdate> {
    let training = update(MODEL_RUN_ID, PipelineStatus::TrainingModel);

    let mut complete = update(MODEL_RUN_ID, PipelineStatus::Complete);
    complete
        .metadata
        .insert("weights".to_owned(), "s3://b/w.pt".to_owned());

    let mut failed = update(MODEL_RUN_ID, PipelineStatus::Failed);
    failed.error_message = Some("training crashed: out of memory".to_owned());

    vec![training, complete, failed]
}

fn update(model_run_id: &str, status: PipelineStatus) -> StatusUpdate {
    StatusUpdate {
        model_run_id: model_run_id.to_owned(),
        status,
        error_message: None,
        metadata: BTreeMap::new(),
    }
}

fn trainhook_client(standin: &Standin, api_key: &str) -> LabelboxClient {
    let proxied = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
    assert!(
        !proxied
            || std::env::var("NO_PROXY")
                .or_else(|_| std::env::var("no_proxy"))
                .is_ok_and(|v| v.contains("127.0.0.1")),
        "a proxy is configured, and trainhook's client would send the stand-in's requests through it; set NO_PROXY=127.0.0.1"
    );
    LabelboxClient::new(
        standin.status_url(),
        SecretSource::Value(api_key.to_owned()),
        Duration::from_secs(10),
    )
    .expect("build trainhook's client")
}

fn body_keys(request: &RecordedRequest) -> BTreeSet<String> {
    request
        .body
        .as_ref()
        .and_then(Value::as_object)
        .map(|body| body.keys().cloned().collect())
        .unwrap_or_default()
}

/// Prints the headers that differ between the two clients. They differ by
/// design, because each client names itself, and no header but
/// `Authorization` and `Content-Type` is known to matter to Labelbox.
fn print_header_differences(sdk: &RecordedRequest, ours: &RecordedRequest) {
    let names: BTreeSet<&String> = sdk.headers.keys().chain(ours.headers.keys()).collect();
    for name in names {
        let (sdk_value, our_value) = (sdk.headers.get(name), ours.headers.get(name));
        if sdk_value != our_value {
            println!("header {name}: SDK sends {sdk_value:?}, trainhook sends {our_value:?}");
        }
    }
}

/// Returns the Python of the SDK's virtual environment, creating it when
/// missing, or `None` after printing why the SDK test is skipped.
fn sdk_python() -> Option<PathBuf> {
    match Command::new("python3").arg("--version").output() {
        Ok(output) if output.status.success() => {}
        _ => {
            println!("skipped: python3 is not installed, so the Labelbox SDK cannot be run");
            return None;
        }
    }

    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("labelbox-sdk-venv");
    let python = venv.join("bin").join("python");
    // Written after a complete install, so that an interrupted one is redone.
    let marker = venv.join(format!("labelbox-{SDK_VERSION}.installed"));
    if marker.exists() {
        return Some(python);
    }

    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .unwrap_or_else(|error| panic!("failed to remove {}: {error}", venv.display()));
    }
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .expect("run python3 -m venv");
    assert!(
        created.status.success(),
        "python3 -m venv {} failed; install the venv module (Debian: python3-venv):\n{}",
        venv.display(),
        String::from_utf8_lossy(&created.stderr)
    );

    let started = Instant::now();
    let installed = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "--retries",
            "2",
            "--timeout",
            "30",
        ])
        .arg(format!("labelbox=={SDK_VERSION}"))
        .output()
        .expect("run pip install");
    if !installed.status.success() {
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&installed.stdout),
            String::from_utf8_lossy(&installed.stderr)
        );
        if UNREACHABLE_MARKERS
            .iter()
            .any(|marker| output.contains(marker))
        {
            let _ = std::fs::remove_dir_all(&venv);
            println!(
                "skipped: PyPI is unreachable, so labelbox=={SDK_VERSION} cannot be installed"
            );
            return None;
        }
        panic!(
            "pip install labelbox=={SDK_VERSION} into {} failed:\n{output}",
            venv.display()
        );
    }
    std::fs::write(&marker, "")
        .unwrap_or_else(|error| panic!("failed to write {}: {error}", marker.display()));
    eprintln!(
        "installed labelbox=={SDK_VERSION} into {} in {:?}",
        venv.display(),
        started.elapsed()
    );
    Some(python)
}

/// Runs the SDK script against the stand-in and returns its JSON summary.
fn run_sdk_script(python: &Path, standin: &Standin) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/labelbox_sdk/send_statuses.py");
    let output_dir = tempfile::tempdir().expect("create a temporary folder");
    let stdout_path = output_dir.path().join("stdout");
    let stderr_path = output_dir.path().join("stderr");

    let mut command = Command::new(python);
    command
        .arg(&script)
        .args(["--endpoint", &standin.graphql_url()])
        .args(["--api-key", API_KEY])
        .args(["--model-run-id", MODEL_RUN_ID])
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("create the script's stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("create the script's stderr file"));
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "LABELBOX_API_KEY",
    ] {
        command.env_remove(name);
    }
    let mut child = command.spawn().expect("start the SDK script");

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the SDK script") {
            break status;
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the SDK script ran longer than {SCRIPT_TIMEOUT:?}; its stderr:\n{}\nthe stand-in's log:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default(),
                standin.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };

    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(
        status.success(),
        "the SDK script failed ({status}); stdout:\n{stdout}\nstderr:\n{stderr}\nthe stand-in's log:\n{}",
        standin.log_text()
    );
    serde_json::from_str(&stdout).unwrap_or_else(|error| {
        panic!("the SDK script printed no JSON summary ({error}):\n{stdout}\n{stderr}")
    })
}
