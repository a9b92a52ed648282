//! A stand-in for Labelbox's GraphQL API, for trainhook's tests and local runs.
//!
//! It serves `POST /graphql` and `POST /_gql` (the path the Python SDK uses for
//! experimental calls such as `ModelRun.update_status`) and accepts exactly two
//! operations:
//! - the status mutation `setPipelineStatusPyApi`, validated strictly against
//!   what the official SDK (`labelbox` 7.17.0 on PyPI) sends.
//! - the `modelRun(where: {id: ...})` query that `Client.get_model_run` sends,
//!   which gets a made-up model run so that the SDK can build a `ModelRun`.
//!
//! Every request is recorded, and tests read the records and queue faults
//! through a JSON control API under `/_standin/`.
//!
//! Error responses follow the SDK's error handling (`lbox/request_client.py`):
//! - a missing or wrong API key gets HTTP 200 with a GraphQL error coded
//!   `AUTHENTICATION_ERROR`, which the SDK raises as `AuthenticationError`.
//! - a query that does not parse gets HTTP 400 with `GRAPHQL_PARSE_FAILED`, an
//!   invalid operation or invalid variables get HTTP 400 with
//!   `GRAPHQL_VALIDATION_FAILED`, and a body that is not a GraphQL request gets
//!   HTTP 400 with `MALFORMED_REQUEST`. The SDK reads the JSON of any response
//!   below 500, so these raise `InvalidQueryError` or `MalformedQueryException`.
//!
//! NOTE: Labelbox does not document the HTTP status of each error, so these are
//! guesses. The error codes are Apollo Server's, and Apollo Server
//! (`@apollo/server` 5.0.0, `src/internalErrorClasses.ts`) sends parse and
//! validation errors with HTTP 400. For a bad key, the SDK's own test
//! (`tests/integration/test_client_errors.py`, `test_bad_key`) expects
//! `AuthenticationError`, which the SDK raises for the error code under any
//! status below 500.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::header::{self, HeaderMap};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use clap::Parser;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tracing::{info, warn};

use crate::graphql::{Field, Operation, OperationKind, ParseError, Value as GraphqlValue};

/// Operation name of the SDK's status mutation.
const STATUS_OPERATION: &str = "setPipelineStatusPyApi";

/// Every value of Labelbox's pipeline status enum.
const PIPELINE_STATUSES: [&str; 5] = [
    "EXPORTING_DATA",
    "PREPARING_DATA",
    "TRAINING_MODEL",
    "COMPLETE",
    "FAILED",
];

/// Longest `errorMessage` accepted, in characters.
// NOTE: this counts Unicode scalar values. If the real server counts UTF-16
// code units, as JavaScript's `length` does, it rejects some messages with
// characters outside the Basic Multilingual Plane that pass here.
const MAX_ERROR_MESSAGE_CHARS: usize = 255;

/// Largest request body kept whole in a record when it is not JSON, in bytes.
const MAX_RAW_BODY_RECORDED: usize = 4096;

#[derive(Parser, Debug)]
#[command(
    name = "labelbox-standin",
    about = "Serve a stand-in for Labelbox's GraphQL API that validates and records status updates"
)]
struct Args {
    /// Address and port to listen on. Port 0 picks a free port.
    #[arg(long, env = "LABELBOX_STANDIN_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    /// API key that requests must send as `Authorization: Bearer KEY`.
    #[arg(long, env = "LABELBOX_STANDIN_API_KEY", hide_env_values = true)]
    api_key: String,
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let args = Args::parse();
    let state = web::Data::new(AppState::new(args.api_key));

    let server = HttpServer::new({
        let state = state.clone();
        move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::JsonConfig::default().error_handler(control_json_error))
                .app_data(web::QueryConfig::default().error_handler(control_query_error))
                .service(
                    web::resource(["/graphql", "/_gql"])
                        .route(web::post().to(serve_graphql))
                        .default_service(web::to(serve_unmatched)),
                )
                .service(
                    web::resource("/_standin/requests")
                        .route(web::get().to(list_requests))
                        .route(web::delete().to(clear_requests)),
                )
                .service(
                    web::resource("/_standin/faults")
                        .route(web::get().to(list_faults))
                        .route(web::post().to(queue_fault))
                        .route(web::delete().to(clear_faults)),
                )
                .default_service(web::to(serve_unmatched))
        }
    })
    .workers(2)
    .shutdown_timeout(1)
    .bind(args.listen)
    .map_err(|error| anyhow::anyhow!("failed to listen on {}: {error}", args.listen))?;

    let address = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("the server bound no address for {}", args.listen))?;

    // Tests read this line to learn the port, so it is the only output on stdout.
    println!("listening on http://{address}");
    use std::io::Write as _;
    std::io::stdout().flush()?;
    info!(%address, "labelbox stand-in started");

    server.run().await?;
    info!("labelbox stand-in stopped");
    Ok(())
}

// ---------------------------------------------------------------------------
// Shared state: recorded requests and queued faults
// ---------------------------------------------------------------------------

/// State shared by all workers.
struct AppState {
    api_key: String,
    next_sequence: AtomicU64,
    records: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<FaultQueue>,
}

impl AppState {
    fn new(api_key: String) -> Self {
        Self {
            api_key,
            next_sequence: AtomicU64::new(1),
            records: Mutex::new(Vec::new()),
            faults: Mutex::new(FaultQueue::default()),
        }
    }

    /// Stores a record and returns its sequence number.
    fn record(&self, mut record: RecordedRequest) -> u64 {
        let sequence = self.next_sequence.fetch_add(1, Ordering::SeqCst);
        record.sequence = sequence;
        let mut records = self.records.lock().expect("records lock");
        // Two workers may take sequence numbers and reach the lock in opposite
        // orders, so insert in place.
        let position = records.partition_point(|r| r.sequence < sequence);
        records.insert(position, record);
        sequence
    }

    /// Stores the response given to a recorded request.
    fn complete(&self, sequence: u64, response: &RecordedResponse) {
        let mut records = self.records.lock().expect("records lock");
        if let Some(record) = records.iter_mut().rev().find(|r| r.sequence == sequence) {
            record.accepted = response.is_acknowledgement();
            record.responded_at = Some(format_rfc3339(SystemTime::now()));
            record.response = Some(response.clone());
        }
    }
}

/// One request as the stand-in received it and responded.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
struct RecordedRequest {
    /// Position in arrival order, starting at 1 and never reused.
    sequence: u64,
    /// When the request arrived, RFC 3339 in UTC.
    received_at: String,
    /// When the response was sent, absent while a delay fault delays it.
    responded_at: Option<String>,
    method: String,
    path: String,
    /// Headers by lowercase name, without `Authorization`.
    headers: BTreeMap<String, String>,
    authorization: AuthorizationRecord,
    /// The body parsed as JSON, or null when it is not JSON.
    body: Option<Value>,
    /// The body as text when it is not JSON, cut to 4096 bytes.
    raw_body: Option<String>,
    /// GraphQL operation name, when the query parsed.
    operation: Option<String>,
    /// The query with ignored tokens removed, as graphql-js
    /// `stripIgnoredCharacters` prints it, when the query parsed.
    normalized_query: Option<String>,
    /// The model run the request names, when it names one.
    model_run_id: Option<String>,
    /// The fault applied to this request, if any.
    fault: Option<AppliedFault>,
    /// The response sent, absent while a delay fault delays it.
    response: Option<RecordedResponse>,
    /// Whether the response had data and no errors.
    accepted: bool,
}

/// The `Authorization` header of a request, without the token itself.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
struct AuthorizationRecord {
    present: bool,
    /// Whether the header had the form `Bearer TOKEN`.
    bearer: bool,
    /// Whether the token was the stand-in's API key.
    token_accepted: bool,
}

impl AuthorizationRecord {
    fn from_headers(headers: &HeaderMap, api_key: &str) -> Self {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Self {
                present: false,
                bearer: false,
                token_accepted: false,
            };
        };
        let value = value.to_str().unwrap_or("");
        let token = value.strip_prefix("Bearer ");
        Self {
            present: true,
            bearer: token.is_some(),
            token_accepted: token.is_some_and(|t| t == api_key),
        }
    }
}

/// An HTTP response, as sent and as recorded.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
struct RecordedResponse {
    status: u16,
    /// Extra headers besides `Content-Type: application/json`.
    headers: BTreeMap<String, String>,
    body: Value,
}

impl RecordedResponse {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: BTreeMap::new(),
            body,
        }
    }

    fn data(data: Value) -> Self {
        Self::json(200, json!({ "data": data }))
    }

    fn graphql_error(status: u16, code: &str, message: &str) -> Self {
        Self::json(status, graphql_errors(code, message, None))
    }

    /// Tells whether the response acknowledges the request: HTTP 200 with data
    /// and without errors.
    fn is_acknowledgement(&self) -> bool {
        self.status == 200
            && self.body.get("errors").is_none()
            && self.body.get("data").is_some_and(|d| !d.is_null())
    }

    fn into_response(self) -> HttpResponse {
        let status = actix_web::http::StatusCode::from_u16(self.status)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
        let mut builder = HttpResponse::build(status);
        for (name, value) in &self.headers {
            builder.insert_header((name.as_str(), value.as_str()));
        }
        builder
            .content_type("application/json")
            .body(self.body.to_string())
    }
}

/// Builds a GraphQL error body the way Labelbox's API shapes it.
fn graphql_errors(code: &str, message: &str, exception_status: Option<u16>) -> Value {
    let mut extensions = json!({ "code": code });
    if let Some(status) = exception_status {
        extensions["exception"] = json!({ "status": status });
    }
    json!({ "errors": [{ "message": message, "extensions": extensions }] })
}

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

/// A fault to apply to the next `count` status mutations, as the control API
/// receives it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FaultSpec {
    /// Number of status mutations the fault applies to, 1 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<u32>,
    /// Apply only to mutations for this model run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model_run_id: Option<String>,
    /// HTTP status of the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http_status: Option<u16>,
    /// Value of the `Retry-After` header, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after_seconds: Option<u64>,
    /// GraphQL `extensions.code` of the response, such as `RESOURCE_NOT_FOUND`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    /// Error message of the response, by default one that names the fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// `extensions.exception.status` of the GraphQL error, which the SDK reads
    /// for `INTERNAL_SERVER_ERROR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exception_status: Option<u16>,
    /// Time to wait before responding, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
}

const MAX_FAULT_COUNT: u32 = 10_000;
const MAX_FAULT_DELAY_MS: u64 = 600_000;

impl FaultSpec {
    /// Checks that the fault is complete and consistent.
    fn validate(&self) -> Result<(), String> {
        if self.http_status.is_none() && self.error_code.is_none() && self.delay_ms.is_none() {
            return Err("a fault needs at least one of httpStatus, errorCode and delayMs".into());
        }
        if let Some(count) = self.count
            && !(1..=MAX_FAULT_COUNT).contains(&count)
        {
            return Err(format!(
                "count must be between 1 and {MAX_FAULT_COUNT}, got {count}"
            ));
        }
        if let Some(status) = self.http_status {
            if !(200..=599).contains(&status) {
                return Err(format!(
                    "httpStatus must be between 200 and 599, got {status}"
                ));
            }
            if status < 300 && self.error_code.is_none() {
                return Err(format!(
                    "httpStatus {status} is a success; add errorCode or use a 4xx or 5xx status"
                ));
            }
        }
        if let Some(code) = &self.error_code
            && code.trim().is_empty()
        {
            return Err("errorCode must not be empty".into());
        }
        if self.exception_status.is_some() && self.error_code.is_none() {
            return Err("exceptionStatus needs errorCode".into());
        }
        if let Some(delay) = self.delay_ms
            && delay > MAX_FAULT_DELAY_MS
        {
            return Err(format!(
                "delayMs must be at most {MAX_FAULT_DELAY_MS}, got {delay}"
            ));
        }
        if self.model_run_id.as_deref() == Some("") {
            return Err(
                "modelRunId must not be empty; leave it out to match every model run".into(),
            );
        }
        Ok(())
    }

    /// Builds the response the fault replaces the normal one with, or `None` for
    /// a fault that only delays.
    fn response(&self) -> Option<RecordedResponse> {
        if self.http_status.is_none() && self.error_code.is_none() {
            return None;
        }
        let status = self.http_status.unwrap_or(200);
        let body = match &self.error_code {
            Some(code) => {
                let default = format!("stand-in fault: {code}");
                graphql_errors(
                    code,
                    self.message.as_deref().unwrap_or(&default),
                    self.exception_status,
                )
            }
            None if status == 429 => {
                // Both the SDK and trainhook treat a message that starts with
                // "You have exceeded" as a rate limit.
                let default = "You have exceeded the stand-in's rate limit (a queued fault)";
                json!({ "message": self.message.as_deref().unwrap_or(default) })
            }
            None => {
                let default = format!("stand-in fault: HTTP {status}");
                json!({ "message": self.message.clone().unwrap_or(default) })
            }
        };
        let mut response = RecordedResponse::json(status, body);
        if let Some(seconds) = self.retry_after_seconds {
            response
                .headers
                .insert("retry-after".into(), seconds.to_string());
        }
        Some(response)
    }
}

/// A queued fault with its id and how many more mutations it applies to.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
struct QueuedFault {
    id: u64,
    remaining: u32,
    #[serde(flatten)]
    spec: FaultSpec,
}

/// The fault applied to one request, as recorded.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
struct AppliedFault {
    id: u64,
    #[serde(flatten)]
    spec: FaultSpec,
}

/// Faults in the order they were queued.
#[derive(Default)]
struct FaultQueue {
    next_id: u64,
    faults: Vec<QueuedFault>,
}

impl FaultQueue {
    fn push(&mut self, spec: FaultSpec) -> QueuedFault {
        self.next_id += 1;
        let fault = QueuedFault {
            id: self.next_id,
            remaining: spec.count.unwrap_or(1),
            spec,
        };
        self.faults.push(fault.clone());
        fault
    }

    /// Takes one use of the oldest fault that matches the model run.
    fn take(&mut self, model_run_id: Option<&str>) -> Option<AppliedFault> {
        let position = self
            .faults
            .iter()
            .position(|fault| match &fault.spec.model_run_id {
                None => true,
                Some(wanted) => model_run_id == Some(wanted.as_str()),
            })?;
        let fault = &mut self.faults[position];
        fault.remaining -= 1;
        let applied = AppliedFault {
            id: fault.id,
            spec: fault.spec.clone(),
        };
        if fault.remaining == 0 {
            self.faults.remove(position);
        }
        Some(applied)
    }
}

// ---------------------------------------------------------------------------
// HTTP handlers
// ---------------------------------------------------------------------------

async fn serve_graphql(
    request: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let received_at = SystemTime::now();
    let headers = request.headers();
    let authorization = AuthorizationRecord::from_headers(headers, &state.api_key);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let interpretation = interpret_request(content_type, &body, received_at);

    // Faults stand for outages and rate limits, which come before the API
    // looks at the key or the query, so they apply to any request that names
    // the status operation.
    let fault = if interpretation.operation.as_deref() == Some(STATUS_OPERATION) {
        state
            .faults
            .lock()
            .expect("faults lock")
            .take(interpretation.model_run_id.as_deref())
    } else {
        None
    };

    let record = RecordedRequest {
        sequence: 0,
        received_at: format_rfc3339(received_at),
        responded_at: None,
        method: request.method().to_string(),
        path: request.path().to_owned(),
        headers: recorded_headers(headers),
        authorization: authorization.clone(),
        body: interpretation.body.clone(),
        raw_body: raw_body_if_not_json(&interpretation, &body),
        operation: interpretation.operation.clone(),
        normalized_query: interpretation.normalized_query.clone(),
        model_run_id: interpretation.model_run_id.clone(),
        fault: fault.clone(),
        response: None,
        accepted: false,
    };
    let sequence = state.record(record);

    if let Some(delay) = fault.as_ref().and_then(|f| f.spec.delay_ms) {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }

    let response = if let Some(response) = fault.as_ref().and_then(|f| f.spec.response()) {
        response
    } else if !authorization.token_accepted {
        authentication_error(&authorization)
    } else {
        interpretation.outcome.clone()
    };

    log_response(
        sequence,
        request.path(),
        &interpretation,
        fault.as_ref(),
        &response,
    );
    state.complete(sequence, &response);
    response.into_response()
}

/// Records and rejects a request to any other path, or a method other than
/// POST on a GraphQL path.
async fn serve_unmatched(
    request: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let path = request.path().to_owned();
    let is_graphql_path = path == "/graphql" || path == "/_gql";
    let mut response = if is_graphql_path {
        RecordedResponse::json(
            405,
            json!({ "message": format!("{} {path} is not served; send POST", request.method()) }),
        )
    } else {
        RecordedResponse::json(
            404,
            json!({ "message": format!("{path} is not served by the Labelbox stand-in") }),
        )
    };
    if is_graphql_path {
        response.headers.insert("allow".into(), "POST".into());
    }

    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let raw_body = match (&parsed, body.is_empty()) {
        (None, false) => Some(truncated_text(&body)),
        _ => None,
    };
    let record = RecordedRequest {
        sequence: 0,
        received_at: format_rfc3339(SystemTime::now()),
        responded_at: None,
        method: request.method().to_string(),
        path: path.clone(),
        headers: recorded_headers(request.headers()),
        authorization: AuthorizationRecord::from_headers(request.headers(), &state.api_key),
        body: parsed,
        raw_body,
        operation: None,
        normalized_query: None,
        model_run_id: None,
        fault: None,
        response: None,
        accepted: false,
    };
    let sequence = state.record(record);
    warn!(sequence, method = %request.method(), %path, status = response.status, "request to a path the stand-in does not serve");
    state.complete(sequence, &response);
    response.into_response()
}

#[derive(Deserialize)]
struct RequestFilter {
    #[serde(rename = "modelRunId")]
    model_run_id: Option<String>,
}

async fn list_requests(
    filter: web::Query<RequestFilter>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let records = state.records.lock().expect("records lock");
    let selected: Vec<&RecordedRequest> = records
        .iter()
        .filter(|r| filter.model_run_id.is_none() || r.model_run_id == filter.model_run_id)
        .collect();
    HttpResponse::Ok().json(selected)
}

async fn clear_requests(state: web::Data<AppState>) -> HttpResponse {
    let mut records = state.records.lock().expect("records lock");
    let cleared = records.len();
    records.clear();
    info!(cleared, "recorded requests cleared");
    HttpResponse::Ok().json(json!({ "cleared": cleared }))
}

async fn list_faults(state: web::Data<AppState>) -> HttpResponse {
    let faults = state.faults.lock().expect("faults lock");
    HttpResponse::Ok().json(&faults.faults)
}

async fn queue_fault(spec: web::Json<FaultSpec>, state: web::Data<AppState>) -> HttpResponse {
    let spec = spec.into_inner();
    if let Err(message) = spec.validate() {
        return HttpResponse::BadRequest()
            .json(json!({ "error": format!("invalid fault: {message}") }));
    }
    let fault = state.faults.lock().expect("faults lock").push(spec);
    info!(id = fault.id, remaining = fault.remaining, model_run_id = ?fault.spec.model_run_id, "fault queued");
    HttpResponse::Created().json(fault)
}

async fn clear_faults(state: web::Data<AppState>) -> HttpResponse {
    let mut queue = state.faults.lock().expect("faults lock");
    let cleared = queue.faults.len();
    queue.faults.clear();
    info!(cleared, "faults cleared");
    HttpResponse::Ok().json(json!({ "cleared": cleared }))
}

fn control_json_error(
    error: actix_web::error::JsonPayloadError,
    _: &HttpRequest,
) -> actix_web::Error {
    let response =
        HttpResponse::BadRequest().json(json!({ "error": format!("invalid fault JSON: {error}") }));
    actix_web::error::InternalError::from_response(error, response).into()
}

fn control_query_error(
    error: actix_web::error::QueryPayloadError,
    _: &HttpRequest,
) -> actix_web::Error {
    let response = HttpResponse::BadRequest()
        .json(json!({ "error": format!("invalid query string: {error}") }));
    actix_web::error::InternalError::from_response(error, response).into()
}

/// Builds the response to a missing or wrong API key.
fn authentication_error(authorization: &AuthorizationRecord) -> RecordedResponse {
    let detail = if !authorization.present {
        "the Authorization header is missing"
    } else if !authorization.bearer {
        "the Authorization header is not of the form `Bearer API_KEY`"
    } else {
        "the API key is not valid"
    };
    RecordedResponse::graphql_error(
        200,
        "AUTHENTICATION_ERROR",
        &format!("Invalid API key: {detail}"),
    )
}

fn log_response(
    sequence: u64,
    path: &str,
    interpretation: &Interpretation,
    fault: Option<&AppliedFault>,
    response: &RecordedResponse,
) {
    let error = response
        .body
        .pointer("/errors/0/message")
        .or_else(|| response.body.get("message"))
        .and_then(Value::as_str);
    let fault_id = fault.map(|f| f.id);
    let operation = interpretation.operation.as_deref().unwrap_or("-");
    let model_run_id = interpretation.model_run_id.as_deref().unwrap_or("-");
    if response.is_acknowledgement() {
        info!(
            sequence,
            path,
            operation,
            model_run_id,
            fault_id,
            status = response.status,
            "request accepted"
        );
    } else {
        warn!(
            sequence,
            path,
            operation,
            model_run_id,
            fault_id,
            status = response.status,
            error,
            "request rejected"
        );
    }
}

fn recorded_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut recorded: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        if name == header::AUTHORIZATION {
            continue;
        }
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        recorded
            .entry(name.as_str().to_owned())
            .and_modify(|existing| {
                existing.push_str(", ");
                existing.push_str(&value);
            })
            .or_insert(value);
    }
    recorded
}

fn raw_body_if_not_json(interpretation: &Interpretation, body: &[u8]) -> Option<String> {
    if interpretation.body.is_some() || body.is_empty() {
        None
    } else {
        Some(truncated_text(body))
    }
}

fn truncated_text(body: &[u8]) -> String {
    let end = body.len().min(MAX_RAW_BODY_RECORDED);
    String::from_utf8_lossy(&body[..end]).into_owned()
}

// ---------------------------------------------------------------------------
// Request validation
// ---------------------------------------------------------------------------

/// The stand-in's reading of a GraphQL request, before the key is checked.
#[derive(Debug, Clone)]
struct Interpretation {
    body: Option<Value>,
    operation: Option<String>,
    normalized_query: Option<String>,
    model_run_id: Option<String>,
    /// The response to send when the request has the right key.
    outcome: RecordedResponse,
}

/// Parses and validates a GraphQL request body.
fn interpret_request(content_type: Option<&str>, body: &[u8], now: SystemTime) -> Interpretation {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let mut interpretation = Interpretation {
        body: parsed.clone(),
        operation: None,
        normalized_query: None,
        model_run_id: None,
        outcome: RecordedResponse::json(500, Value::Null),
    };

    let media_type = content_type
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some("application/json") {
        let found = content_type.unwrap_or("no Content-Type header");
        let message = format!("Content-Type must be application/json, got {found}");
        interpretation.outcome =
            RecordedResponse::graphql_error(400, "MALFORMED_REQUEST", &message);
        return interpretation;
    }

    let envelope = match parsed
        .as_ref()
        .ok_or_else(|| invalid_json_message(body))
        .and_then(read_envelope)
    {
        Ok(envelope) => envelope,
        Err(message) => {
            interpretation.outcome =
                RecordedResponse::graphql_error(400, "MALFORMED_REQUEST", &message);
            return interpretation;
        }
    };

    let tokens = match graphql::tokenize(envelope.query) {
        Ok(tokens) => tokens,
        Err(error) => {
            interpretation.outcome =
                RecordedResponse::graphql_error(400, "GRAPHQL_PARSE_FAILED", &error.to_string());
            return interpretation;
        }
    };
    interpretation.normalized_query = Some(graphql::normalize(&tokens));

    let operation = match graphql::parse(&tokens) {
        Ok(operation) => operation,
        Err(ParseError::Syntax(message)) => {
            interpretation.outcome =
                RecordedResponse::graphql_error(400, "GRAPHQL_PARSE_FAILED", &message);
            return interpretation;
        }
        Err(ParseError::Unsupported(message)) => {
            interpretation.outcome =
                RecordedResponse::graphql_error(400, "GRAPHQL_VALIDATION_FAILED", &message);
            return interpretation;
        }
    };
    interpretation.operation = operation.name.clone();

    let result = if let Some(wanted) = envelope.operation_name
        && operation.name.as_deref() != Some(wanted)
    {
        Err(format!(
            "operationName is {wanted:?} but the document's operation is named {:?}",
            operation.name.as_deref().unwrap_or("")
        ))
    } else if operation.name.as_deref() == Some(STATUS_OPERATION) {
        interpretation.model_run_id = envelope
            .variables
            .get("modelRunId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        validate_status_mutation(&operation, &envelope.variables)
            .map(|status| json!({ "updateTrainingPipeline": { "status": status } }))
    } else if is_model_run_query(&operation) {
        interpretation.model_run_id = model_run_query_id(&operation, &envelope.variables);
        model_run_query_data(&operation, &envelope.variables, now)
    } else {
        Err(format!(
            "the Labelbox stand-in serves only the {STATUS_OPERATION} mutation and the modelRun query, got operation {:?}",
            operation.name.as_deref().unwrap_or("(anonymous)")
        ))
    };

    interpretation.outcome = match result {
        Ok(data) => RecordedResponse::data(data),
        Err(message) => RecordedResponse::graphql_error(400, "GRAPHQL_VALIDATION_FAILED", &message),
    };
    interpretation
}

/// The JSON envelope of a GraphQL request.
struct Envelope<'a> {
    query: &'a str,
    variables: Map<String, Value>,
    operation_name: Option<&'a str>,
}

fn invalid_json_message(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Err(error) => format!("the request body is not valid JSON: {error}"),
        Ok(_) => "the request body is not valid JSON".to_owned(),
    }
}

fn read_envelope(body: &Value) -> Result<Envelope<'_>, String> {
    let Some(object) = body.as_object() else {
        return Err("the request body must be a JSON object with query and variables".into());
    };
    if let Some(key) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "query" | "variables" | "operationName"))
    {
        return Err(format!(
            "unexpected key {key:?} in the request body; allowed: query, variables, operationName"
        ));
    }
    let query = match object.get("query") {
        Some(Value::String(query)) => query.as_str(),
        Some(other) => return Err(format!("query must be a string, got {}", json_type(other))),
        None => return Err("the request body has no query".into()),
    };
    let variables = match object.get("variables") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(variables)) => variables.clone(),
        Some(other) => {
            return Err(format!(
                "variables must be an object, got {}",
                json_type(other)
            ));
        }
    };
    let operation_name = match object.get("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name.as_str()),
        Some(other) => {
            return Err(format!(
                "operationName must be a string, got {}",
                json_type(other)
            ));
        }
    };
    Ok(Envelope {
        query,
        variables,
        operation_name,
    })
}

/// Validates the status mutation and returns the status it sets.
fn validate_status_mutation(
    operation: &Operation,
    variables: &Map<String, Value>,
) -> Result<String, String> {
    if operation.kind != OperationKind::Mutation {
        return Err(format!(
            "{STATUS_OPERATION} must be a mutation, got a {}",
            operation.kind.as_str()
        ));
    }
    check_variable_definitions(operation)?;
    check_status_selection(operation)?;

    if let Some(key) = variables
        .keys()
        .find(|k| !matches!(k.as_str(), "modelRunId" | "data"))
    {
        return Err(format!(
            "variable ${key} is not defined by operation {STATUS_OPERATION}"
        ));
    }
    match variables.get("modelRunId") {
        Some(Value::String(id)) if !id.is_empty() => {}
        Some(Value::String(_)) => return Err("variables.modelRunId must not be empty".into()),
        Some(other) => {
            return Err(format!(
                "variables.modelRunId must be a string, got {}",
                json_type(other)
            ));
        }
        None => return Err("variable $modelRunId of non-null type ID! was not provided".into()),
    }
    let data = match variables.get("data") {
        Some(Value::Object(data)) => data,
        Some(other) => {
            return Err(format!(
                "variables.data must be an object, got {}",
                json_type(other)
            ));
        }
        None => {
            return Err(
                "variable $data of non-null type UpdateTrainingPipelineInput! was not provided"
                    .into(),
            );
        }
    };
    validate_pipeline_input(data)
}

/// Validates `UpdateTrainingPipelineInput` and returns its status.
fn validate_pipeline_input(data: &Map<String, Value>) -> Result<String, String> {
    if let Some(key) = data
        .keys()
        .find(|k| !matches!(k.as_str(), "status" | "errorMessage" | "metadata"))
    {
        return Err(format!(
            "variables.data has the unknown field {key:?}; UpdateTrainingPipelineInput has status, errorMessage and metadata"
        ));
    }

    let status = match data.get("status") {
        Some(Value::String(status)) if PIPELINE_STATUSES.contains(&status.as_str()) => {
            status.clone()
        }
        Some(Value::String(status)) => {
            return Err(format!(
                "variables.data.status {status:?} is not one of {}",
                PIPELINE_STATUSES.join(", ")
            ));
        }
        Some(other) => {
            return Err(format!(
                "variables.data.status must be a string, got {}",
                json_type(other)
            ));
        }
        None => return Err("variables.data.status is required".into()),
    };

    match data.get("errorMessage") {
        None => {}
        Some(Value::String(message)) => {
            let length = message.chars().count();
            if length > MAX_ERROR_MESSAGE_CHARS {
                return Err(format!(
                    "variables.data.errorMessage has {length} characters; the maximum is {MAX_ERROR_MESSAGE_CHARS}"
                ));
            }
        }
        Some(other) => {
            return Err(format!(
                "variables.data.errorMessage must be a string, got {}",
                json_type(other)
            ));
        }
    }

    match data.get("metadata") {
        None => {}
        Some(Value::Object(metadata)) => {
            if let Some((key, value)) = metadata.iter().find(|(_, v)| !v.is_string()) {
                return Err(format!(
                    "variables.data.metadata.{key} must be a string, got {}",
                    json_type(value)
                ));
            }
        }
        Some(other) => {
            return Err(format!(
                "variables.data.metadata must be an object, got {}",
                json_type(other)
            ));
        }
    }

    Ok(status)
}

fn check_variable_definitions(operation: &Operation) -> Result<(), String> {
    let expected = [
        ("modelRunId", "ID!"),
        ("data", "UpdateTrainingPipelineInput!"),
    ];
    let found: Vec<(&str, &str)> = operation
        .variables
        .iter()
        .map(|v| (v.name.as_str(), v.type_name.as_str()))
        .collect();
    let mut found_sorted = found.clone();
    found_sorted.sort();
    let mut expected_sorted = expected.to_vec();
    expected_sorted.sort();

    if found_sorted != expected_sorted {
        let printed: Vec<String> = found
            .iter()
            .map(|(name, type_name)| format!("${name}: {type_name}"))
            .collect();
        return Err(format!(
            "{STATUS_OPERATION} must declare ($modelRunId: ID!, $data: UpdateTrainingPipelineInput!), got ({})",
            printed.join(", ")
        ));
    }
    if let Some(variable) = operation.variables.iter().find(|v| v.has_default) {
        return Err(format!(
            "variable ${} must not have a default value",
            variable.name
        ));
    }
    Ok(())
}

fn check_status_selection(operation: &Operation) -> Result<(), String> {
    let expected_shape =
        "updateTrainingPipeline(modelRun: {id: $modelRunId}, data: $data) { status }";
    let [field] = operation.selections.as_slice() else {
        return Err(format!(
            "{STATUS_OPERATION} must select exactly one field, {expected_shape}; got {} fields",
            operation.selections.len()
        ));
    };
    if field.name != "updateTrainingPipeline" || field.alias.is_some() {
        return Err(format!(
            "{STATUS_OPERATION} must select {expected_shape}; got field {}",
            field.display_name()
        ));
    }

    let mut arguments: Vec<(&str, &GraphqlValue)> = field
        .arguments
        .iter()
        .map(|(n, v)| (n.as_str(), v))
        .collect();
    arguments.sort_by_key(|(name, _)| *name);
    let model_run_ok = |value: &GraphqlValue| {
        matches!(value, GraphqlValue::Object(fields)
            if matches!(fields.as_slice(), [(name, GraphqlValue::Variable(variable))]
                if name == "id" && variable == "modelRunId"))
    };
    let arguments_ok = matches!(arguments.as_slice(),
        [("data", GraphqlValue::Variable(data)), ("modelRun", model_run)]
            if data == "data" && model_run_ok(model_run));
    if !arguments_ok {
        return Err(format!(
            "updateTrainingPipeline must take exactly the arguments (modelRun: {{id: $modelRunId}}, data: $data), as in {expected_shape}"
        ));
    }

    let selection_ok = matches!(field.selections.as_slice(),
        [status] if status.name == "status" && status.alias.is_none()
            && status.arguments.is_empty() && status.selections.is_empty());
    if !selection_ok {
        let names: Vec<String> = field.selections.iter().map(Field::display_name).collect();
        return Err(format!(
            "updateTrainingPipeline must select exactly {{ status }}, got {{ {} }}",
            names.join(" ")
        ));
    }
    Ok(())
}

/// Fields of `ModelRun` that the stand-in returns, which are the ones
/// `Client.get_model_run` asks for in SDK 7.17.0.
const MODEL_RUN_FIELDS: [&str; 8] = [
    "id",
    "name",
    "createdAt",
    "updatedAt",
    "createdBy",
    "modelId",
    "modelAppId",
    "trainingMetadata",
];

fn is_model_run_query(operation: &Operation) -> bool {
    operation.kind == OperationKind::Query
        && matches!(operation.selections.as_slice(), [field] if field.name == "modelRun")
}

/// Returns the model run id of a `modelRun(where: {id: ...})` query, given
/// as a variable or a literal.
fn model_run_query_id(operation: &Operation, variables: &Map<String, Value>) -> Option<String> {
    let field = operation.selections.first()?;
    let (_, where_value) = field.arguments.iter().find(|(name, _)| name == "where")?;
    let GraphqlValue::Object(where_fields) = where_value else {
        return None;
    };
    let (_, id_value) = where_fields.iter().find(|(name, _)| name == "id")?;
    match id_value {
        GraphqlValue::String(id) => Some(id.clone()),
        GraphqlValue::Variable(name) => variables
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

/// Builds the data for `modelRun(where: {id: ...})`: a made-up model run
/// with the requested id.
fn model_run_query_data(
    operation: &Operation,
    variables: &Map<String, Value>,
    now: SystemTime,
) -> Result<Value, String> {
    let field = &operation.selections[0];
    let usage = "modelRun(where: {id: $id}) { ... }";
    let [(argument, _)] = field.arguments.as_slice() else {
        return Err(format!(
            "modelRun takes exactly one argument, where; use {usage}"
        ));
    };
    if argument != "where" {
        return Err(format!(
            "modelRun has no argument {argument:?}; use {usage}"
        ));
    }
    let Some(id) = model_run_query_id(operation, variables) else {
        return Err(format!(
            "modelRun needs where: {{id: ...}} with a string id or a defined ID variable; use {usage}"
        ));
    };
    if id.is_empty() {
        return Err("the model run id must not be empty".into());
    }
    if field.selections.is_empty() {
        return Err("modelRun must select at least one field".into());
    }

    let timestamp = format_rfc3339(now);
    let mut model_run = Map::new();
    for selection in &field.selections {
        let value = match selection.name.as_str() {
            "id" => json!(id),
            "name" => json!(format!("stand-in model run {id}")),
            "createdAt" | "updatedAt" => json!(timestamp),
            "createdBy" => json!("standin-user"),
            "modelId" => json!("standin-model"),
            "modelAppId" | "trainingMetadata" => Value::Null,
            other => {
                return Err(format!(
                    "Cannot query field {other:?} on type \"ModelRun\"; the stand-in serves {}",
                    MODEL_RUN_FIELDS.join(", ")
                ));
            }
        };
        let key = selection
            .alias
            .clone()
            .unwrap_or_else(|| selection.name.clone());
        model_run.insert(key, value);
    }
    let key = field.alias.clone().unwrap_or_else(|| field.name.clone());
    Ok(json!({ key: model_run }))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Formats a time as RFC 3339 in UTC with milliseconds, such as
/// `2024-05-01T12:00:00.000Z`, which the SDK's `DateTime` fields parse.
fn format_rfc3339(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let millis = since_epoch.subsec_millis();
    let days = (seconds / 86_400) as i64;
    let second_of_day = seconds % 86_400;

    // Converts days since 1970-01-01 to a civil date, after Howard Hinnant's
    // `civil_from_days` (https://howardhinnant.github.io/date_algorithms.html).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);

    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

// ---------------------------------------------------------------------------
// GraphQL lexer and parser
// ---------------------------------------------------------------------------

/// The part of GraphQL (October 2021 spec) that the two served operations use:
/// one operation with variable definitions, fields, aliases, arguments and
/// values. Fragments and directives parse as unsupported.
mod graphql {
    use std::fmt;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum TokenKind {
        Punctuator,
        Name,
        Int,
        Float,
        String,
        BlockString,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Token {
        pub kind: TokenKind,
        /// The token's source text.
        pub text: String,
        /// Byte offset in the source, for error messages.
        pub offset: usize,
    }

    impl Token {
        fn is_punctuator(&self, text: &str) -> bool {
            self.kind == TokenKind::Punctuator && self.text == text
        }

        fn is_name(&self, text: &str) -> bool {
            self.kind == TokenKind::Name && self.text == text
        }
    }

    /// A syntax error at a line and column of the query, both from 1.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SyntaxError {
        pub message: String,
        pub line: usize,
        pub column: usize,
    }

    impl fmt::Display for SyntaxError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "Syntax Error: {} (line {}, column {})",
                self.message, self.line, self.column
            )
        }
    }

    fn syntax_error(source: &str, offset: usize, message: String) -> SyntaxError {
        let before = &source[..offset.min(source.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        SyntaxError {
            message,
            line,
            column,
        }
    }

    /// Splits a GraphQL document into tokens, dropping whitespace, commas and
    /// comments, which GraphQL ignores.
    pub fn tokenize(source: &str) -> Result<Vec<Token>, SyntaxError> {
        let bytes = source.as_bytes();
        let mut tokens = Vec::new();
        let mut position = 0;

        while position < bytes.len() {
            let start = position;
            let byte = bytes[position];
            match byte {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => position += 1,
                b'#' => {
                    while position < bytes.len()
                        && bytes[position] != b'\n'
                        && bytes[position] != b'\r'
                    {
                        position += 1;
                    }
                }
                b'!' | b'$' | b'&' | b'(' | b')' | b':' | b'=' | b'@' | b'[' | b']' | b'{'
                | b'|' | b'}' => {
                    position += 1;
                    tokens.push(token(TokenKind::Punctuator, source, start, position));
                }
                b'.' => {
                    if !source[position..].starts_with("...") {
                        return Err(syntax_error(
                            source,
                            start,
                            "Unexpected \".\"; did you mean \"...\"?".into(),
                        ));
                    }
                    position += 3;
                    tokens.push(token(TokenKind::Punctuator, source, start, position));
                }
                b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                    while position < bytes.len()
                        && (bytes[position] == b'_' || bytes[position].is_ascii_alphanumeric())
                    {
                        position += 1;
                    }
                    tokens.push(token(TokenKind::Name, source, start, position));
                }
                b'-' | b'0'..=b'9' => {
                    let (end, kind) = scan_number(source, start)?;
                    position = end;
                    tokens.push(token(kind, source, start, position));
                }
                b'"' if source[position..].starts_with("\"\"\"") => {
                    position = scan_block_string(source, start)?;
                    tokens.push(token(TokenKind::BlockString, source, start, position));
                }
                b'"' => {
                    position = scan_string(source, start)?;
                    tokens.push(token(TokenKind::String, source, start, position));
                }
                _ if source[position..].starts_with('\u{feff}') => {
                    position += '\u{feff}'.len_utf8()
                }
                _ => {
                    let character = source[position..].chars().next().unwrap_or('?');
                    return Err(syntax_error(
                        source,
                        start,
                        format!("Unexpected character {character:?}"),
                    ));
                }
            }
        }
        Ok(tokens)
    }

    fn token(kind: TokenKind, source: &str, start: usize, end: usize) -> Token {
        Token {
            kind,
            text: source[start..end].to_owned(),
            offset: start,
        }
    }

    fn scan_digits(bytes: &[u8], mut position: usize) -> usize {
        while position < bytes.len() && bytes[position].is_ascii_digit() {
            position += 1;
        }
        position
    }

    fn scan_number(source: &str, start: usize) -> Result<(usize, TokenKind), SyntaxError> {
        let bytes = source.as_bytes();
        let mut position = start;
        if bytes[position] == b'-' {
            position += 1;
        }
        let integer_end = scan_digits(bytes, position);
        if integer_end == position {
            return Err(syntax_error(
                source,
                position,
                "Invalid number, expected a digit".into(),
            ));
        }
        if bytes[position] == b'0' && integer_end - position > 1 {
            return Err(syntax_error(
                source,
                position,
                "Invalid number, unexpected digit after 0".into(),
            ));
        }
        position = integer_end;

        let mut kind = TokenKind::Int;
        if position < bytes.len() && bytes[position] == b'.' {
            let fraction_end = scan_digits(bytes, position + 1);
            if fraction_end == position + 1 {
                return Err(syntax_error(
                    source,
                    position,
                    "Invalid number, expected a digit after \".\"".into(),
                ));
            }
            position = fraction_end;
            kind = TokenKind::Float;
        }
        if position < bytes.len() && (bytes[position] == b'e' || bytes[position] == b'E') {
            position += 1;
            if position < bytes.len() && (bytes[position] == b'+' || bytes[position] == b'-') {
                position += 1;
            }
            let exponent_end = scan_digits(bytes, position);
            if exponent_end == position {
                return Err(syntax_error(
                    source,
                    position,
                    "Invalid number, expected a digit in the exponent".into(),
                ));
            }
            position = exponent_end;
            kind = TokenKind::Float;
        }
        if position < bytes.len()
            && (bytes[position] == b'_'
                || bytes[position].is_ascii_alphabetic()
                || bytes[position] == b'.')
        {
            return Err(syntax_error(
                source,
                position,
                "Invalid number, a name or \".\" follows it directly".into(),
            ));
        }
        Ok((position, kind))
    }

    /// Returns the end of a `"..."` string, after the closing quote.
    fn scan_string(source: &str, start: usize) -> Result<usize, SyntaxError> {
        let mut characters = source[start + 1..].char_indices();
        while let Some((index, character)) = characters.next() {
            match character {
                '"' => return Ok(start + 1 + index + 1),
                '\n' | '\r' => {
                    return Err(syntax_error(source, start, "Unterminated string".into()));
                }
                '\\' => match characters.next() {
                    Some((_, '"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't')) => {}
                    Some((_, 'u')) => {
                        for _ in 0..4 {
                            match characters.next() {
                                Some((_, digit)) if digit.is_ascii_hexdigit() => {}
                                _ => {
                                    return Err(syntax_error(
                                        source,
                                        start + 1 + index,
                                        "Invalid Unicode escape sequence".into(),
                                    ));
                                }
                            }
                        }
                    }
                    _ => {
                        return Err(syntax_error(
                            source,
                            start + 1 + index,
                            "Invalid character escape sequence".into(),
                        ));
                    }
                },
                _ => {}
            }
        }
        Err(syntax_error(source, start, "Unterminated string".into()))
    }

    /// Returns the end of a `"""..."""` block string, after the closing quotes.
    fn scan_block_string(source: &str, start: usize) -> Result<usize, SyntaxError> {
        let mut position = start + 3;
        while position < source.len() {
            let rest = &source[position..];
            if rest.starts_with("\\\"\"\"") {
                position += 4;
            } else if rest.starts_with("\"\"\"") {
                return Ok(position + 3);
            } else {
                position += rest.chars().next().map_or(1, char::len_utf8);
            }
        }
        Err(syntax_error(
            source,
            start,
            "Unterminated block string".into(),
        ))
    }

    /// Prints tokens with a space only between two names or numbers, which is
    /// what graphql-js `stripIgnoredCharacters` does. Two queries that differ
    /// only in whitespace, commas and comments print the same.
    pub fn normalize(tokens: &[Token]) -> String {
        let mut text = String::new();
        let mut previous_was_word = false;
        for token in tokens {
            let is_word = matches!(
                token.kind,
                TokenKind::Name | TokenKind::Int | TokenKind::Float
            );
            if previous_was_word && is_word {
                text.push(' ');
            }
            text.push_str(&token.text);
            previous_was_word = is_word;
        }
        text
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum OperationKind {
        Query,
        Mutation,
        Subscription,
    }

    impl OperationKind {
        pub fn as_str(self) -> &'static str {
            match self {
                OperationKind::Query => "query",
                OperationKind::Mutation => "mutation",
                OperationKind::Subscription => "subscription",
            }
        }
    }

    #[derive(Debug, Clone, PartialEq)]
    pub struct Operation {
        pub kind: OperationKind,
        pub name: Option<String>,
        pub variables: Vec<VariableDefinition>,
        pub selections: Vec<Field>,
    }

    #[derive(Debug, Clone, PartialEq)]
    pub struct VariableDefinition {
        pub name: String,
        /// The type as written, without spaces, such as `ID!` or `[ID!]`.
        pub type_name: String,
        pub has_default: bool,
    }

    #[derive(Debug, Clone, PartialEq)]
    pub struct Field {
        pub alias: Option<String>,
        pub name: String,
        pub arguments: Vec<(String, Value)>,
        pub selections: Vec<Field>,
    }

    impl Field {
        /// Returns `alias: name`, or the name alone.
        pub fn display_name(&self) -> String {
            match &self.alias {
                Some(alias) => format!("{alias}: {}", self.name),
                None => self.name.clone(),
            }
        }
    }

    /// A GraphQL input value. Strings hold their source text between the
    /// quotes, with escapes left as written.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Variable(String),
        Int(String),
        Float(String),
        String(String),
        Boolean(bool),
        Null,
        Enum(String),
        List(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum ParseError {
        /// The document is not valid GraphQL.
        Syntax(String),
        /// The document is valid GraphQL that the stand-in does not serve.
        Unsupported(String),
    }

    /// Parses a document that contains exactly one operation.
    pub fn parse(tokens: &[Token]) -> Result<Operation, ParseError> {
        let mut parser = Parser {
            tokens,
            position: 0,
        };
        if tokens.is_empty() {
            return Err(ParseError::Syntax(
                "Syntax Error: the document is empty".into(),
            ));
        }
        let operation = parser.operation()?;
        if let Some(token) = parser.peek() {
            let message = if token.is_name("fragment") {
                "the stand-in does not support fragments".to_owned()
            } else if token.is_name("query")
                || token.is_name("mutation")
                || token.is_punctuator("{")
            {
                "the stand-in accepts one operation per document".to_owned()
            } else {
                return Err(parser.unexpected());
            };
            return Err(ParseError::Unsupported(message));
        }
        Ok(operation)
    }

    struct Parser<'a> {
        tokens: &'a [Token],
        position: usize,
    }

    impl Parser<'_> {
        fn peek(&self) -> Option<&Token> {
            self.tokens.get(self.position)
        }

        fn next(&mut self) -> Option<&Token> {
            let token = self.tokens.get(self.position);
            self.position += 1;
            token
        }

        fn unexpected(&self) -> ParseError {
            match self.peek() {
                Some(token) => ParseError::Syntax(format!(
                    "Syntax Error: Unexpected \"{}\" at offset {}",
                    token.text, token.offset
                )),
                None => ParseError::Syntax("Syntax Error: Unexpected end of the document".into()),
            }
        }

        fn at_punctuator(&self, text: &str) -> bool {
            self.peek().is_some_and(|t| t.is_punctuator(text))
        }

        fn expect_punctuator(&mut self, text: &str) -> Result<(), ParseError> {
            if self.at_punctuator(text) {
                self.position += 1;
                Ok(())
            } else {
                Err(self.expected(&format!("\"{text}\"")))
            }
        }

        fn expect_name(&mut self) -> Result<String, ParseError> {
            match self.peek() {
                Some(token) if token.kind == TokenKind::Name => {
                    let name = token.text.clone();
                    self.position += 1;
                    Ok(name)
                }
                _ => Err(self.expected("a name")),
            }
        }

        fn expected(&self, expectation: &str) -> ParseError {
            match self.peek() {
                Some(token) => ParseError::Syntax(format!(
                    "Syntax Error: Expected {expectation}, found \"{}\" at offset {}",
                    token.text, token.offset
                )),
                None => ParseError::Syntax(format!(
                    "Syntax Error: Expected {expectation}, found the end of the document"
                )),
            }
        }

        fn reject_directives(&self) -> Result<(), ParseError> {
            if self.at_punctuator("@") {
                return Err(ParseError::Unsupported(
                    "the stand-in does not support directives".into(),
                ));
            }
            Ok(())
        }

        fn operation(&mut self) -> Result<Operation, ParseError> {
            if self.at_punctuator("{") {
                let selections = self.selection_set()?;
                return Ok(Operation {
                    kind: OperationKind::Query,
                    name: None,
                    variables: Vec::new(),
                    selections,
                });
            }
            let kind = match self.peek() {
                Some(token) if token.is_name("query") => OperationKind::Query,
                Some(token) if token.is_name("mutation") => OperationKind::Mutation,
                Some(token) if token.is_name("subscription") => OperationKind::Subscription,
                Some(token) if token.is_name("fragment") => {
                    return Err(ParseError::Unsupported(
                        "the stand-in does not support fragments".into(),
                    ));
                }
                _ => return Err(self.unexpected()),
            };
            self.position += 1;

            let name = match self.peek() {
                Some(token) if token.kind == TokenKind::Name => Some(self.expect_name()?),
                _ => None,
            };
            let variables = if self.at_punctuator("(") {
                self.variable_definitions()?
            } else {
                Vec::new()
            };
            self.reject_directives()?;
            let selections = self.selection_set()?;
            Ok(Operation {
                kind,
                name,
                variables,
                selections,
            })
        }

        fn variable_definitions(&mut self) -> Result<Vec<VariableDefinition>, ParseError> {
            self.expect_punctuator("(")?;
            let mut definitions = Vec::new();
            loop {
                self.expect_punctuator("$")?;
                let name = self.expect_name()?;
                self.expect_punctuator(":")?;
                let type_name = self.type_reference()?;
                let has_default = self.at_punctuator("=");
                if has_default {
                    self.position += 1;
                    self.value()?;
                }
                self.reject_directives()?;
                definitions.push(VariableDefinition {
                    name,
                    type_name,
                    has_default,
                });
                if self.at_punctuator(")") {
                    self.position += 1;
                    return Ok(definitions);
                }
            }
        }

        fn type_reference(&mut self) -> Result<String, ParseError> {
            let mut text = if self.at_punctuator("[") {
                self.position += 1;
                let inner = self.type_reference()?;
                self.expect_punctuator("]")?;
                format!("[{inner}]")
            } else {
                self.expect_name()?
            };
            if self.at_punctuator("!") {
                self.position += 1;
                text.push('!');
            }
            Ok(text)
        }

        fn selection_set(&mut self) -> Result<Vec<Field>, ParseError> {
            self.expect_punctuator("{")?;
            let mut fields = Vec::new();
            loop {
                if self.at_punctuator("...") {
                    return Err(ParseError::Unsupported(
                        "the stand-in does not support fragments".into(),
                    ));
                }
                fields.push(self.field()?);
                if self.at_punctuator("}") {
                    self.position += 1;
                    return Ok(fields);
                }
            }
        }

        fn field(&mut self) -> Result<Field, ParseError> {
            let first = self.expect_name()?;
            let (alias, name) = if self.at_punctuator(":") {
                self.position += 1;
                (Some(first), self.expect_name()?)
            } else {
                (None, first)
            };
            let arguments = if self.at_punctuator("(") {
                self.arguments()?
            } else {
                Vec::new()
            };
            self.reject_directives()?;
            let selections = if self.at_punctuator("{") {
                self.selection_set()?
            } else {
                Vec::new()
            };
            Ok(Field {
                alias,
                name,
                arguments,
                selections,
            })
        }

        fn arguments(&mut self) -> Result<Vec<(String, Value)>, ParseError> {
            self.expect_punctuator("(")?;
            let mut arguments = Vec::new();
            loop {
                let name = self.expect_name()?;
                self.expect_punctuator(":")?;
                arguments.push((name, self.value()?));
                if self.at_punctuator(")") {
                    self.position += 1;
                    return Ok(arguments);
                }
            }
        }

        fn value(&mut self) -> Result<Value, ParseError> {
            let Some(token) = self.peek().cloned() else {
                return Err(self.expected("a value"));
            };
            match token.kind {
                TokenKind::Punctuator if token.text == "$" => {
                    self.position += 1;
                    Ok(Value::Variable(self.expect_name()?))
                }
                TokenKind::Punctuator if token.text == "[" => {
                    self.position += 1;
                    let mut items = Vec::new();
                    while !self.at_punctuator("]") {
                        items.push(self.value()?);
                    }
                    self.position += 1;
                    Ok(Value::List(items))
                }
                TokenKind::Punctuator if token.text == "{" => {
                    self.position += 1;
                    let mut fields = Vec::new();
                    while !self.at_punctuator("}") {
                        let name = self.expect_name()?;
                        self.expect_punctuator(":")?;
                        fields.push((name, self.value()?));
                    }
                    self.position += 1;
                    Ok(Value::Object(fields))
                }
                TokenKind::Punctuator => Err(self.unexpected()),
                TokenKind::Int => {
                    self.next();
                    Ok(Value::Int(token.text))
                }
                TokenKind::Float => {
                    self.next();
                    Ok(Value::Float(token.text))
                }
                TokenKind::String => {
                    self.next();
                    Ok(Value::String(
                        token.text[1..token.text.len() - 1].to_owned(),
                    ))
                }
                TokenKind::BlockString => {
                    self.next();
                    Ok(Value::String(
                        token.text[3..token.text.len() - 3].to_owned(),
                    ))
                }
                TokenKind::Name => {
                    self.next();
                    Ok(match token.text.as_str() {
                        "true" => Value::Boolean(true),
                        "false" => Value::Boolean(false),
                        "null" => Value::Null,
                        _ => Value::Enum(token.text),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mutation text of `ModelRun.update_status` in SDK 7.17.0, copied
    /// with its whitespace.
    const SDK_MUTATION: &str =
        "mutation setPipelineStatusPyApi($modelRunId: ID!, $data: UpdateTrainingPipelineInput!){
                updateTrainingPipeline(modelRun: {id : $modelRunId}, data: $data){status}
            }
        ";

    /// The query `Client.get_model_run` sends in SDK 7.17.0.
    const SDK_MODEL_RUN_QUERY: &str = "query GetModelRunPyApi($param_0: ID!){modelRun(where: {id: $param_0}){createdAt createdBy modelAppId modelId name trainingMetadata id updatedAt}}";

    fn interpret(body: Value) -> Interpretation {
        interpret_request(
            Some("application/json"),
            body.to_string().as_bytes(),
            UNIX_EPOCH,
        )
    }

    fn mutation(data: Value) -> Value {
        json!({ "query": SDK_MUTATION, "variables": { "modelRunId": "run-1", "data": data } })
    }

    fn error_code(response: &RecordedResponse) -> Option<&str> {
        response
            .body
            .pointer("/errors/0/extensions/code")
            .and_then(Value::as_str)
    }

    fn error_message(response: &RecordedResponse) -> &str {
        response
            .body
            .pointer("/errors/0/message")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    fn assert_rejected(interpretation: &Interpretation, code: &str, message_part: &str) {
        let response = &interpretation.outcome;
        assert_eq!(response.status, 400, "{response:?}");
        assert_eq!(error_code(response), Some(code), "{response:?}");
        assert!(
            error_message(response).contains(message_part),
            "message {:?} lacks {message_part:?}",
            error_message(response)
        );
    }

    #[test]
    fn sdk_mutation_is_accepted() {
        let interpretation = interpret(mutation(json!({ "status": "TRAINING_MODEL" })));
        assert_eq!(
            interpretation.outcome,
            RecordedResponse::data(
                json!({ "updateTrainingPipeline": { "status": "TRAINING_MODEL" } })
            )
        );
        assert_eq!(interpretation.operation.as_deref(), Some(STATUS_OPERATION));
        assert_eq!(interpretation.model_run_id.as_deref(), Some("run-1"));
    }

    #[test]
    fn every_status_is_accepted() {
        for status in PIPELINE_STATUSES {
            let interpretation = interpret(mutation(json!({ "status": status })));
            assert!(
                interpretation.outcome.is_acknowledgement(),
                "{status}: {:?}",
                interpretation.outcome
            );
        }
    }

    #[test]
    fn metadata_and_error_message_are_accepted() {
        let data = json!({ "status": "FAILED", "errorMessage": "é".repeat(255), "metadata": { "weights": "s3://b/w.pt" } });
        let interpretation = interpret(mutation(data));
        assert!(
            interpretation.outcome.is_acknowledgement(),
            "{:?}",
            interpretation.outcome
        );
    }

    #[test]
    fn trainhook_query_text_is_accepted() {
        let query = "mutation setPipelineStatusPyApi($modelRunId: ID!, $data: UpdateTrainingPipelineInput!) {\n  updateTrainingPipeline(modelRun: {id: $modelRunId}, data: $data) { status }\n}";
        let body = json!({ "query": query, "variables": { "modelRunId": "run-1", "data": { "status": "COMPLETE" } } });
        let interpretation = interpret(body);
        assert!(
            interpretation.outcome.is_acknowledgement(),
            "{:?}",
            interpretation.outcome
        );
        assert_eq!(
            interpretation.normalized_query,
            interpret(mutation(json!({ "status": "COMPLETE" }))).normalized_query
        );
    }

    #[test]
    fn normalized_query_strips_ignored_tokens() {
        let interpretation = interpret(mutation(json!({ "status": "COMPLETE" })));
        assert_eq!(
            interpretation.normalized_query.as_deref(),
            Some(
                "mutation setPipelineStatusPyApi($modelRunId:ID!$data:UpdateTrainingPipelineInput!){updateTrainingPipeline(modelRun:{id:$modelRunId}data:$data){status}}"
            )
        );
    }

    #[test]
    fn reordered_arguments_and_variables_are_accepted() {
        let query = "mutation setPipelineStatusPyApi($data: UpdateTrainingPipelineInput!, $modelRunId: ID!) { updateTrainingPipeline(data: $data, modelRun: {id: $modelRunId}) { status } }";
        let body = json!({ "query": query, "variables": { "modelRunId": "run-1", "data": { "status": "COMPLETE" } } });
        assert!(interpret(body).outcome.is_acknowledgement());
    }

    #[test]
    fn unknown_status_is_rejected() {
        let interpretation = interpret(mutation(json!({ "status": "DONE" })));
        assert_rejected(
            &interpretation,
            "GRAPHQL_VALIDATION_FAILED",
            "\"DONE\" is not one of",
        );
    }

    #[test]
    fn missing_status_is_rejected() {
        let interpretation = interpret(mutation(json!({ "errorMessage": "boom" })));
        assert_rejected(
            &interpretation,
            "GRAPHQL_VALIDATION_FAILED",
            "status is required",
        );
    }

    #[test]
    fn long_error_message_is_rejected() {
        let interpretation = interpret(mutation(
            json!({ "status": "FAILED", "errorMessage": "x".repeat(256) }),
        ));
        assert_rejected(
            &interpretation,
            "GRAPHQL_VALIDATION_FAILED",
            "256 characters",
        );
    }

    #[test]
    fn non_string_error_message_is_rejected() {
        let interpretation = interpret(mutation(
            json!({ "status": "FAILED", "errorMessage": null }),
        ));
        assert_rejected(
            &interpretation,
            "GRAPHQL_VALIDATION_FAILED",
            "errorMessage must be a string",
        );
    }

    #[test]
    fn non_string_metadata_value_is_rejected() {
        let interpretation = interpret(mutation(
            json!({ "status": "COMPLETE", "metadata": { "epochs": 3 } }),
        ));
        assert_rejected(
            &interpretation,
            "GRAPHQL_VALIDATION_FAILED",
            "metadata.epochs must be a string",
        );
    }

    #[test]
    fn metadata_as_string_is_rejected() {
        let interpretation = interpret(mutation(
            json!({ "status": "COMPLETE", "metadata": "{\"a\": \"b\"}" }),
        ));
        assert_rejected(
            &interpretation,
            "GRAPHQL_VALIDATION_FAILED",
            "metadata must be an object",
        );
    }

    #[test]
    fn unknown_data_key_is_rejected() {
        let interpretation = interpret(mutation(
            json!({ "status": "COMPLETE", "error_message": "x" }),
        ));
        assert_rejected(
            &interpretation,
            "GRAPHQL_VALIDATION_FAILED",
            "unknown field \"error_message\"",
        );
    }

    #[test]
    fn empty_model_run_id_is_rejected() {
        let body = json!({ "query": SDK_MUTATION, "variables": { "modelRunId": "", "data": { "status": "COMPLETE" } } });
        assert_rejected(
            &interpret(body),
            "GRAPHQL_VALIDATION_FAILED",
            "modelRunId must not be empty",
        );
    }

    #[test]
    fn numeric_model_run_id_is_rejected() {
        let body = json!({ "query": SDK_MUTATION, "variables": { "modelRunId": 7, "data": { "status": "COMPLETE" } } });
        assert_rejected(
            &interpret(body),
            "GRAPHQL_VALIDATION_FAILED",
            "modelRunId must be a string",
        );
    }

    #[test]
    fn missing_data_variable_is_rejected() {
        let body = json!({ "query": SDK_MUTATION, "variables": { "modelRunId": "run-1" } });
        assert_rejected(&interpret(body), "GRAPHQL_VALIDATION_FAILED", "$data");
    }

    #[test]
    fn extra_variable_is_rejected() {
        let body = json!({ "query": SDK_MUTATION, "variables": { "modelRunId": "run-1", "data": { "status": "COMPLETE" }, "extra": 1 } });
        assert_rejected(
            &interpret(body),
            "GRAPHQL_VALIDATION_FAILED",
            "$extra is not defined",
        );
    }

    #[test]
    fn wrong_variable_type_is_rejected() {
        let query = SDK_MUTATION.replace("$modelRunId: ID!", "$modelRunId: String!");
        let body = json!({ "query": query, "variables": { "modelRunId": "run-1", "data": { "status": "COMPLETE" } } });
        assert_rejected(
            &interpret(body),
            "GRAPHQL_VALIDATION_FAILED",
            "got ($modelRunId: String!",
        );
    }

    #[test]
    fn nullable_variable_type_is_rejected() {
        let query = SDK_MUTATION.replace(
            "UpdateTrainingPipelineInput!",
            "UpdateTrainingPipelineInput",
        );
        let body = json!({ "query": query, "variables": { "modelRunId": "run-1", "data": { "status": "COMPLETE" } } });
        assert_rejected(
            &interpret(body),
            "GRAPHQL_VALIDATION_FAILED",
            "must declare",
        );
    }

    #[test]
    fn query_kind_is_rejected() {
        let query = SDK_MUTATION.replace("mutation", "query");
        let body = json!({ "query": query, "variables": { "modelRunId": "run-1", "data": { "status": "COMPLETE" } } });
        assert_rejected(
            &interpret(body),
            "GRAPHQL_VALIDATION_FAILED",
            "must be a mutation",
        );
    }

    #[test]
    fn other_operation_name_is_rejected() {
        let query = SDK_MUTATION.replace("setPipelineStatusPyApi", "setStatus");
        let body = json!({ "query": query, "variables": { "modelRunId": "run-1", "data": { "status": "COMPLETE" } } });
        assert_rejected(&interpret(body), "GRAPHQL_VALIDATION_FAILED", "serves only");
    }

    #[test]
    fn other_field_is_rejected() {
        let query = SDK_MUTATION.replace("updateTrainingPipeline", "updateModelRun");
        let body = json!({ "query": query, "variables": { "modelRunId": "run-1", "data": { "status": "COMPLETE" } } });
        assert_rejected(
            &interpret(body),
            "GRAPHQL_VALIDATION_FAILED",
            "got field updateModelRun",
        );
    }

    #[test]
    fn alias_is_rejected() {
        let query =
            SDK_MUTATION.replace("updateTrainingPipeline(", "result: updateTrainingPipeline(");
        let body = json!({ "query": query, "variables": { "modelRunId": "run-1", "data": { "status": "COMPLETE" } } });
        assert_rejected(
            &interpret(body),
            "GRAPHQL_VALIDATION_FAILED",
            "got field result: updateTrainingPipeline",
        );
    }

    #[test]
    fn literal_model_run_argument_is_rejected() {
        let query = SDK_MUTATION.replace("{id : $modelRunId}", "{id: \"run-1\"}");
        let body = json!({ "query": query, "variables": { "modelRunId": "run-1", "data": { "status": "COMPLETE" } } });
        assert_rejected(
            &interpret(body),
            "GRAPHQL_VALIDATION_FAILED",
            "exactly the arguments",
        );
    }

    #[test]
    fn extra_selected_field_is_rejected() {
        let query = SDK_MUTATION.replace("{status}", "{status id}");
        let body = json!({ "query": query, "variables": { "modelRunId": "run-1", "data": { "status": "COMPLETE" } } });
        assert_rejected(
            &interpret(body),
            "GRAPHQL_VALIDATION_FAILED",
            "got { status id }",
        );
    }

    #[test]
    fn default_value_is_rejected() {
        let query = SDK_MUTATION.replace("$modelRunId: ID!", "$modelRunId: ID! = \"run-1\"");
        let body = json!({ "query": query, "variables": { "modelRunId": "run-1", "data": { "status": "COMPLETE" } } });
        assert_rejected(
            &interpret(body),
            "GRAPHQL_VALIDATION_FAILED",
            "default value",
        );
    }

    #[test]
    fn operation_name_mismatch_is_rejected() {
        let mut body = mutation(json!({ "status": "COMPLETE" }));
        body["operationName"] = json!("other");
        assert_rejected(
            &interpret(body),
            "GRAPHQL_VALIDATION_FAILED",
            "operationName is \"other\"",
        );
    }

    #[test]
    fn syntax_error_is_parse_failure() {
        let body =
            json!({ "query": "mutation setPipelineStatusPyApi($modelRunId: ID!", "variables": {} });
        assert_rejected(&interpret(body), "GRAPHQL_PARSE_FAILED", "Syntax Error:");
    }

    #[test]
    fn fragment_is_unsupported() {
        let body =
            json!({ "query": "query Q { ...F } fragment F on Query { x }", "variables": {} });
        assert_rejected(&interpret(body), "GRAPHQL_VALIDATION_FAILED", "fragments");
    }

    #[test]
    fn body_that_is_not_json_is_malformed() {
        let interpretation =
            interpret_request(Some("application/json"), b"status=COMPLETE", UNIX_EPOCH);
        assert!(interpretation.body.is_none());
        assert_rejected(&interpretation, "MALFORMED_REQUEST", "not valid JSON");
    }

    #[test]
    fn missing_query_is_malformed() {
        assert_rejected(
            &interpret(json!({ "variables": {} })),
            "MALFORMED_REQUEST",
            "no query",
        );
    }

    #[test]
    fn unknown_body_key_is_malformed() {
        let mut body = mutation(json!({ "status": "COMPLETE" }));
        body["extensions"] = json!({});
        assert_rejected(
            &interpret(body),
            "MALFORMED_REQUEST",
            "unexpected key \"extensions\"",
        );
    }

    #[test]
    fn wrong_content_type_is_malformed() {
        let body = mutation(json!({ "status": "COMPLETE" })).to_string();
        let interpretation = interpret_request(Some("text/plain"), body.as_bytes(), UNIX_EPOCH);
        assert_rejected(
            &interpretation,
            "MALFORMED_REQUEST",
            "Content-Type must be application/json",
        );
    }

    #[test]
    fn content_type_with_charset_is_accepted() {
        let body = mutation(json!({ "status": "COMPLETE" })).to_string();
        let interpretation = interpret_request(
            Some("application/json; charset=utf-8"),
            body.as_bytes(),
            UNIX_EPOCH,
        );
        assert!(
            interpretation.outcome.is_acknowledgement(),
            "{:?}",
            interpretation.outcome
        );
    }

    #[test]
    fn sdk_model_run_query_gets_data() {
        let body = json!({ "query": SDK_MODEL_RUN_QUERY, "variables": { "param_0": "run-1" } });
        let interpretation = interpret(body);
        assert_eq!(interpretation.model_run_id.as_deref(), Some("run-1"));
        let model_run = interpretation
            .outcome
            .body
            .pointer("/data/modelRun")
            .expect("data.modelRun");
        for field in MODEL_RUN_FIELDS {
            assert!(
                model_run.get(field).is_some(),
                "modelRun lacks {field}: {model_run}"
            );
        }
        assert_eq!(model_run["id"], json!("run-1"));
        assert_eq!(model_run["createdAt"], json!("1970-01-01T00:00:00.000Z"));
    }

    #[test]
    fn unknown_model_run_field_is_rejected() {
        let body = json!({ "query": "query { modelRun(where: {id: \"run-1\"}) { id secret } }", "variables": {} });
        assert_rejected(
            &interpret(body),
            "GRAPHQL_VALIDATION_FAILED",
            "Cannot query field \"secret\"",
        );
    }

    #[test]
    fn authorization_is_checked() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            AuthorizationRecord::from_headers(&headers, "key"),
            AuthorizationRecord {
                present: false,
                bearer: false,
                token_accepted: false
            }
        );

        headers.insert(header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert_eq!(
            AuthorizationRecord::from_headers(&headers, "key"),
            AuthorizationRecord {
                present: true,
                bearer: true,
                token_accepted: false
            }
        );

        headers.insert(header::AUTHORIZATION, "key".parse().unwrap());
        assert_eq!(
            AuthorizationRecord::from_headers(&headers, "key"),
            AuthorizationRecord {
                present: true,
                bearer: false,
                token_accepted: false
            }
        );

        headers.insert(header::AUTHORIZATION, "Bearer key".parse().unwrap());
        assert_eq!(
            AuthorizationRecord::from_headers(&headers, "key"),
            AuthorizationRecord {
                present: true,
                bearer: true,
                token_accepted: true
            }
        );
    }

    #[test]
    fn authentication_error_has_sdk_code() {
        let response = authentication_error(&AuthorizationRecord {
            present: true,
            bearer: true,
            token_accepted: false,
        });
        assert_eq!(response.status, 200);
        assert_eq!(error_code(&response), Some("AUTHENTICATION_ERROR"));
    }

    #[test]
    fn recorded_headers_leave_out_authorization() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer key".parse().unwrap());
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let recorded = recorded_headers(&headers);
        assert_eq!(
            recorded.get("content-type").map(String::as_str),
            Some("application/json")
        );
        assert!(!recorded.contains_key("authorization"));
    }

    #[test]
    fn fault_applies_to_matching_model_run_only() {
        let mut queue = FaultQueue::default();
        queue.push(FaultSpec {
            count: Some(2),
            model_run_id: Some("run-a".into()),
            http_status: Some(503),
            ..FaultSpec::default()
        });

        assert_eq!(queue.take(Some("run-b")), None);
        assert_eq!(queue.take(None), None);
        assert_eq!(queue.take(Some("run-a")).map(|f| f.id), Some(1));
        assert_eq!(queue.faults[0].remaining, 1);
        assert_eq!(queue.take(Some("run-a")).map(|f| f.id), Some(1));
        assert!(queue.faults.is_empty());
        assert_eq!(queue.take(Some("run-a")), None);
    }

    #[test]
    fn faults_apply_in_queue_order() {
        let mut queue = FaultQueue::default();
        queue.push(FaultSpec {
            http_status: Some(500),
            ..FaultSpec::default()
        });
        queue.push(FaultSpec {
            http_status: Some(503),
            ..FaultSpec::default()
        });
        assert_eq!(
            queue.take(Some("run-1")).and_then(|f| f.spec.http_status),
            Some(500)
        );
        assert_eq!(
            queue.take(Some("run-1")).and_then(|f| f.spec.http_status),
            Some(503)
        );
        assert_eq!(queue.take(Some("run-1")), None);
    }

    #[test]
    fn rate_limit_fault_response() {
        let spec = FaultSpec {
            http_status: Some(429),
            retry_after_seconds: Some(3),
            ..FaultSpec::default()
        };
        let response = spec.response().expect("an response");
        assert_eq!(response.status, 429);
        assert_eq!(
            response.headers.get("retry-after").map(String::as_str),
            Some("3")
        );
        let message = response.body["message"].as_str().unwrap();
        assert!(message.starts_with("You have exceeded"), "{message}");
    }

    #[test]
    fn graphql_error_fault_response() {
        let spec = FaultSpec {
            error_code: Some("INTERNAL_SERVER_ERROR".into()),
            exception_status: Some(503),
            ..FaultSpec::default()
        };
        let response = spec.response().expect("an response");
        assert_eq!(response.status, 200);
        assert_eq!(error_code(&response), Some("INTERNAL_SERVER_ERROR"));
        assert_eq!(
            response
                .body
                .pointer("/errors/0/extensions/exception/status"),
            Some(&json!(503))
        );
    }

    #[test]
    fn delay_only_fault_keeps_response() {
        let spec = FaultSpec {
            delay_ms: Some(10),
            ..FaultSpec::default()
        };
        assert_eq!(spec.validate(), Ok(()));
        assert_eq!(spec.response(), None);
    }

    #[test]
    fn invalid_faults_are_rejected() {
        let cases = [
            (FaultSpec::default(), "at least one of"),
            (
                FaultSpec {
                    http_status: Some(200),
                    ..FaultSpec::default()
                },
                "is a success",
            ),
            (
                FaultSpec {
                    http_status: Some(600),
                    ..FaultSpec::default()
                },
                "between 200 and 599",
            ),
            (
                FaultSpec {
                    http_status: Some(503),
                    count: Some(0),
                    ..FaultSpec::default()
                },
                "count must be",
            ),
            (
                FaultSpec {
                    http_status: Some(503),
                    exception_status: Some(500),
                    ..FaultSpec::default()
                },
                "needs errorCode",
            ),
            (
                FaultSpec {
                    http_status: Some(503),
                    model_run_id: Some(String::new()),
                    ..FaultSpec::default()
                },
                "modelRunId",
            ),
            (
                FaultSpec {
                    delay_ms: Some(MAX_FAULT_DELAY_MS + 1),
                    ..FaultSpec::default()
                },
                "delayMs",
            ),
        ];
        for (spec, message_part) in cases {
            let error = spec.validate().expect_err("an invalid fault");
            assert!(
                error.contains(message_part),
                "{error:?} lacks {message_part:?}"
            );
        }
    }

    #[test]
    fn fault_json_rejects_unknown_keys() {
        let result: Result<FaultSpec, _> =
            serde_json::from_value(json!({ "httpStatus": 503, "times": 2 }));
        assert!(result.is_err());
    }

    #[test]
    fn lexer_ignores_commas_and_comments() {
        let tokens = graphql::tokenize("query Q { # a comment\n a, b }").unwrap();
        assert_eq!(graphql::normalize(&tokens), "query Q{a b}");
    }

    #[test]
    fn lexer_reads_strings_and_numbers() {
        let tokens = graphql::tokenize(
            r#"f(a: "x \"y\" \u00e9", b: -1.5e3, c: 0, d: """block "quoted" text""")"#,
        )
        .unwrap();
        let kinds: Vec<graphql::TokenKind> = tokens.iter().map(|t| t.kind).collect();
        use graphql::TokenKind::*;
        assert_eq!(
            kinds,
            [
                Name,
                Punctuator,
                Name,
                Punctuator,
                String,
                Name,
                Punctuator,
                Float,
                Name,
                Punctuator,
                Int,
                Name,
                Punctuator,
                BlockString,
                Punctuator
            ]
        );
    }

    #[test]
    fn lexer_reports_line_and_column() {
        let error = graphql::tokenize("query {\n  a %\n}").unwrap_err();
        assert_eq!((error.line, error.column), (2, 5));
        assert!(error.to_string().starts_with("Syntax Error:"), "{error}");
    }

    #[test]
    fn lexer_rejects_unterminated_string() {
        let error = graphql::tokenize("query { a(b: \"open) }").unwrap_err();
        assert!(error.message.contains("Unterminated string"), "{error}");
    }

    #[test]
    fn lexer_rejects_bad_numbers() {
        for source in [
            "{ a(b: 01) }",
            "{ a(b: 1.) }",
            "{ a(b: 1x) }",
            "{ a(b: -) }",
        ] {
            assert!(
                graphql::tokenize(source).is_err(),
                "{source} should not tokenize"
            );
        }
    }

    #[test]
    fn rfc3339_formats_known_times() {
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T23:59:59.123Z, a leap day.
        let leap_day = UNIX_EPOCH + Duration::from_millis(1_709_251_199_123);
        assert_eq!(format_rfc3339(leap_day), "2024-02-29T23:59:59.123Z");
        let year_2000 = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(format_rfc3339(year_2000), "2000-02-29T00:00:00.000Z");
    }
}
