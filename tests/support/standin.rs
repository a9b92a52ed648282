//! The Labelbox stand-in (`src/bin/labelbox-standin.rs`) run as a real
//! process on 127.0.0.1, with typed access to its control API.
//!
//! ```ignore
//! let standin = Standin::start("test-key").await;
//! standin.queue_fault(Fault::http_status(503).times(2).for_model_run("run-1")).await;
//! // ... point trainhook at standin.status_url() ...
//! let statuses = standin.accepted_statuses("run-1").await;
//! assert_eq!(statuses[0]["status"], "TRAINING_MODEL");
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How long the stand-in may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running stand-in, killed when dropped.
pub struct Standin {
    child: Child,
    /// Base URL, such as `http://127.0.0.1:PORT`.
    pub url: String,
    /// The API key the stand-in accepts.
    pub api_key: String,
    /// File that receives the stand-in's log.
    pub log: PathBuf,
    http: reqwest::Client,
}

impl Standin {
    /// Starts the stand-in on a free loopback port, accepting `api_key`, and
    /// waits until it listens.
    ///
    /// Panics with the stand-in's log when it does not start within 30 s.
    pub async fn start(api_key: &str) -> Standin {
        let log = tempfile::Builder::new()
            .prefix("labelbox-standin-")
            .suffix(".log")
            .tempfile()
            .expect("create the stand-in's log file")
            .into_temp_path()
            .keep()
            .expect("keep the stand-in's log file");
        let log_file = std::fs::File::create(&log).expect("open the stand-in's log file");

        let mut child = Command::new(env!("CARGO_BIN_EXE_labelbox-standin"))
            .args(["--listen", "127.0.0.1:0", "--api-key", api_key])
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("start labelbox-standin");

        // A thread reads the address line and then drains stdout, so that a
        // start that never prints cannot block the test past the timeout.
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = sender.send(lines.next());
            for _ in lines {}
        });

        let started = Instant::now();
        let first_line = loop {
            match receiver.try_recv() {
                Ok(line) => break Ok(line),
                Err(mpsc::TryRecvError::Disconnected) => break Err("stdout closed"),
                Err(mpsc::TryRecvError::Empty) if started.elapsed() > START_TIMEOUT => {
                    break Err("timed out");
                }
                Err(mpsc::TryRecvError::Empty) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
            }
        };
        let line = match first_line {
            Ok(Some(Ok(line))) => line,
            outcome => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "labelbox-standin printed no address within {START_TIMEOUT:?} ({outcome:?}); its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from labelbox-standin: {line:?}"))
            .to_owned();

        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("build an HTTP client");
        Standin {
            child,
            url,
            api_key: api_key.to_owned(),
            log,
            http,
        }
    }

    /// Returns the `/graphql` URL, the endpoint to give the Python SDK.
    /// The stand-in accepts status updates there too.
    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.url)
    }

    /// Returns the `/_gql` URL, where the SDK sends status updates and
    /// where trainhook sends them by default.
    pub fn status_url(&self) -> String {
        format!("{}/_gql", self.url)
    }

    /// Returns the stand-in's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Returns every recorded request, oldest first.
    pub async fn requests(&self) -> Vec<RecordedRequest> {
        self.get_json("/_standin/requests").await
    }

    /// Returns the recorded requests that name `model_run_id`, oldest first.
    pub async fn requests_for(&self, model_run_id: &str) -> Vec<RecordedRequest> {
        let response = self
            .http
            .get(format!("{}/_standin/requests", self.url))
            .query(&[("modelRunId", model_run_id)])
            .send()
            .await
            .expect("GET /_standin/requests");
        parse_json(response).await
    }

    /// Returns `variables.data` of every status update the stand-in
    /// acknowledged for `model_run_id`, in the order they arrived, such as
    /// `{"status": "FAILED", "errorMessage": "..."}`.
    pub async fn accepted_statuses(&self, model_run_id: &str) -> Vec<Value> {
        self.requests_for(model_run_id)
            .await
            .iter()
            .filter(|request| request.accepted && request.status().is_some())
            .filter_map(|request| request.variables()?.get("data").cloned())
            .collect()
    }

    /// Waits until at least `count` requests name `model_run_id` and have a
    /// response, and returns them.
    ///
    /// Panics with the requests seen so far when `timeout` passes first.
    pub async fn wait_for_requests(
        &self,
        model_run_id: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<RecordedRequest> {
        let start = Instant::now();
        loop {
            let requests = self.requests_for(model_run_id).await;
            let responded = requests.iter().filter(|r| r.response.is_some()).count();
            if responded >= count {
                return requests;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {count} responded requests for model run {model_run_id}; got: {requests:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Deletes every recorded request.
    pub async fn clear_requests(&self) {
        let response = self
            .http
            .delete(format!("{}/_standin/requests", self.url))
            .send()
            .await
            .expect("DELETE /_standin/requests");
        let _: Value = parse_json(response).await;
    }

    /// Queues a fault and returns it as the stand-in stored it.
    ///
    /// Panics when the stand-in rejects the fault, with its reason.
    pub async fn queue_fault(&self, fault: Fault) -> QueuedFault {
        let response = self
            .http
            .post(format!("{}/_standin/faults", self.url))
            .json(&fault)
            .send()
            .await
            .expect("POST /_standin/faults");
        parse_json(response).await
    }

    /// Returns the faults still queued.
    pub async fn faults(&self) -> Vec<QueuedFault> {
        self.get_json("/_standin/faults").await
    }

    /// Deletes every queued fault.
    pub async fn clear_faults(&self) {
        let response = self
            .http
            .delete(format!("{}/_standin/faults", self.url))
            .send()
            .await
            .expect("DELETE /_standin/faults");
        let _: Value = parse_json(response).await;
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, path: &str) -> T {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {path} failed: {error}"));
        parse_json(response).await
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses a JSON response of the control API, panicking on an HTTP error.
async fn parse_json<T: for<'de> Deserialize<'de>>(response: reqwest::Response) -> T {
    let status = response.status();
    let url = response.url().clone();
    let text = response.text().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "{url} responded with HTTP {status}: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|error| {
        panic!("{url} responded with JSON that does not parse ({error}): {text}")
    })
}

/// A fault to queue. Build one with [`Fault::http_status`],
/// [`Fault::rate_limit`], [`Fault::graphql_error`] or [`Fault::delay`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    /// Number of status mutations the fault applies to, 1 when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Apply only to mutations for this model run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// `Retry-After` header value, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// GraphQL `extensions.code`, such as `RESOURCE_NOT_FOUND`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Error message of the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `extensions.exception.status` of the GraphQL error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception_status: Option<u16>,
    /// Wait before responding, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

impl Fault {
    /// Responds with an HTTP status, such as 500 or 503, and a JSON `message`.
    pub fn http_status(status: u16) -> Fault {
        Fault {
            http_status: Some(status),
            ..Fault::default()
        }
    }

    /// Responds with HTTP 429 with `Retry-After` in whole seconds and a message
    /// that starts with "You have exceeded".
    pub fn rate_limit(retry_after: Duration) -> Fault {
        Fault {
            http_status: Some(429),
            retry_after_seconds: Some(retry_after.as_secs()),
            ..Fault::default()
        }
    }

    /// Responds with HTTP 200 and a GraphQL error of this `extensions.code`.
    pub fn graphql_error(code: &str) -> Fault {
        Fault {
            error_code: Some(code.to_owned()),
            ..Fault::default()
        }
    }

    /// Waits before sending the normal response, to make a client time out.
    pub fn delay(delay: Duration) -> Fault {
        Fault {
            delay_ms: Some(delay.as_millis() as u64),
            ..Fault::default()
        }
    }

    /// Applies the fault to the next `count` status mutations.
    pub fn times(mut self, count: u32) -> Fault {
        self.count = Some(count);
        self
    }

    /// Applies the fault only to mutations for `model_run_id`.
    pub fn for_model_run(mut self, model_run_id: &str) -> Fault {
        self.model_run_id = Some(model_run_id.to_owned());
        self
    }

    /// Also waits `delay` before responding.
    pub fn with_delay(mut self, delay: Duration) -> Fault {
        self.delay_ms = Some(delay.as_millis() as u64);
        self
    }
}

/// A fault as the stand-in queued it.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueuedFault {
    pub id: u64,
    /// Status mutations it still applies to.
    pub remaining: u32,
    #[serde(flatten)]
    pub fault: Fault,
}

/// One request the stand-in recorded.
#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    /// Position in arrival order, from 1.
    pub sequence: u64,
    /// RFC 3339 time of arrival, in UTC.
    pub received_at: String,
    /// RFC 3339 time of the response, `None` while a delay fault delays it.
    pub responded_at: Option<String>,
    pub method: String,
    pub path: String,
    /// Headers by lowercase name, without `Authorization`.
    pub headers: BTreeMap<String, String>,
    pub authorization: AuthorizationRecord,
    /// The body, when it was JSON.
    pub body: Option<Value>,
    /// The body as text (at most 4096 bytes), when it was not JSON.
    pub raw_body: Option<String>,
    /// GraphQL operation name, such as `setPipelineStatusPyApi`.
    pub operation: Option<String>,
    /// The query without ignored tokens, as graphql-js
    /// `stripIgnoredCharacters` prints it.
    pub normalized_query: Option<String>,
    pub model_run_id: Option<String>,
    /// The fault applied to this request.
    pub fault: Option<Value>,
    /// The response, `None` while a delay fault delays it.
    pub response: Option<RecordedResponse>,
    /// Whether the response acknowledged the request: HTTP 200 with data and
    /// no errors.
    pub accepted: bool,
}

impl RecordedRequest {
    /// Returns `variables.data.status` of a status mutation.
    pub fn status(&self) -> Option<&str> {
        self.body
            .as_ref()?
            .pointer("/variables/data/status")?
            .as_str()
    }

    /// Returns the `variables` the request sent.
    pub fn variables(&self) -> Option<&Value> {
        self.body.as_ref()?.get("variables")
    }

    /// Returns the first GraphQL `extensions.code` of the response.
    pub fn error_code(&self) -> Option<&str> {
        self.response
            .as_ref()?
            .body
            .pointer("/errors/0/extensions/code")?
            .as_str()
    }
}

/// What a request sent as `Authorization`, without the token.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationRecord {
    pub present: bool,
    /// Whether it had the form `Bearer TOKEN`.
    pub bearer: bool,
    /// Whether the token was the stand-in's API key.
    pub token_accepted: bool,
}

/// The response the stand-in sent.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecordedResponse {
    pub status: u16,
    /// Headers besides `Content-Type`, such as `retry-after`.
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}
