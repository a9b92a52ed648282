//! Webhook ingress: the HTTP endpoints Labelbox calls, plus health probes.
//!
//! Every Labelbox call is verified over its raw body before anything else in
//! it is read. `GET /models` lists the model types of the TrainingTemplates
//! that exist now; `POST /model_run` records the request as a TrainingRun
//! (see [`model_run`]).

pub mod answer;
pub mod body;
pub mod model_run;
pub mod secret_ring;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, ResponseError, web};
use http::Request;
use kube::Client;
use serde_json::json;
use tracing::{info, warn};

use crate::catalog::{Catalog, Resolution};
use crate::metrics;
use crate::signature::{self, SignatureError, SignatureHeaders};
use answer::WebhookError;
use secret_ring::SecretRing;

/// State that the webhook handlers share.
pub struct WebhookState {
    /// Client for the Kubernetes API.
    pub client: Client,
    /// The templates in the watched namespaces.
    pub catalog: Catalog,
    /// The webhook secrets valid now.
    pub secrets: SecretRing,
    /// Largest body accepted, in bytes.
    pub body_limit: usize,
    /// How long to wait for the Kubernetes API.
    pub api_timeout: Duration,
}

/// Serves the webhook (when `webhook` is given) and the health probes on
/// `listen` until the process is asked to stop.
pub async fn serve(
    listen: SocketAddr,
    client: Client,
    webhook: Option<WebhookState>,
) -> anyhow::Result<()> {
    let webhook = webhook.map(web::Data::new);
    let probe_client = web::Data::new(client);

    let server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(probe_client.clone())
            .service(endpoint("/healthz", web::get().to(healthz)))
            .service(endpoint("/readyz", web::get().to(readyz)))
            .service(endpoint("/metrics", web::get().to(serve_metrics)))
            .default_service(web::to(not_found));
        if let Some(state) = &webhook {
            app = app
                .app_data(state.clone())
                .service(endpoint("/models", web::get().to(get_models)))
                .service(endpoint("/model_run", web::post().to(post_model_run)));
        }
        app
    })
    .bind(listen)
    .map_err(|error| anyhow::anyhow!("cannot listen on {listen}: {error}"))?;

    for address in server.addrs() {
        info!(%address, "HTTP server listening");
    }
    server.run().await?;
    Ok(())
}

/// A path served with one method; any other method gets a JSON 405.
fn endpoint(path: &'static str, route: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(method_not_allowed))
}

async fn not_found(request: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "error": "not_found",
        "message": format!(
            "no endpoint {} {}; trainhook serves GET /models, POST /model_run, GET /healthz, GET /readyz and GET /metrics",
            request.method(),
            request.path()
        ),
    }))
}

async fn method_not_allowed(request: HttpRequest) -> HttpResponse {
    let allowed = if request.path() == "/model_run" {
        "POST"
    } else {
        "GET"
    };
    HttpResponse::MethodNotAllowed()
        .insert_header((actix_web::http::header::ALLOW, allowed))
        .json(json!({
            "error": "method_not_allowed",
            "message": format!(
                "{} does not take {}; send {allowed}",
                request.path(),
                request.method()
            ),
        }))
}

async fn serve_metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(metrics::CONTENT_TYPE)
        .body(metrics::metrics().encode())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready while the API server reports itself ready (which includes its
/// storage) and, when serving the webhook, a webhook secret is readable,
/// because no webhook can be verified and recorded otherwise.
async fn readyz(
    client: web::Data<Client>,
    webhook: Option<web::Data<WebhookState>>,
) -> HttpResponse {
    let readyz = Request::get("/readyz")
        .body(Vec::new())
        .expect("a constant request is valid");
    let check = tokio::time::timeout(Duration::from_secs(3), client.request_text(readyz)).await;
    match check {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => return not_ready(format!("the Kubernetes API is not ready: {error}")),
        Err(_) => return not_ready("the Kubernetes API did not answer within 3 s".to_owned()),
    }

    if let Some(state) = webhook
        && let Err(reason) = state.secrets.valid().await
    {
        return not_ready(format!("no webhook secret is readable: {reason}"));
    }
    HttpResponse::Ok().json(json!({ "status": "ready" }))
}

fn not_ready(message: String) -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(json!({
        "status": "not ready",
        "message": message,
    }))
}

async fn get_models(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<WebhookState>,
) -> Result<HttpResponse, WebhookError> {
    let answer = list_models(&request, payload, &state).await;
    record(&request, &answer);
    answer
}

async fn post_model_run(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<WebhookState>,
) -> Result<HttpResponse, WebhookError> {
    let answer = accept_model_run(&request, payload, &state).await;
    record(&request, &answer);
    answer
}

/// Counts every response in the metrics, and logs every error response once
/// with its message.
fn record(request: &HttpRequest, answer: &Result<HttpResponse, WebhookError>) {
    let code = match answer {
        Ok(response) => response.status(),
        Err(error) => error.status_code(),
    };
    metrics::metrics().webhook_request(request.path(), code.as_u16());

    if let Err(error) = answer {
        let peer = request
            .peer_addr()
            .map(|peer| peer.to_string())
            .unwrap_or_default();
        let status = error.status_code().as_u16();
        warn!(path = %request.path(), %peer, status, code = error.code(), %error, "rejected a webhook call");
    }
}

/// `GET /models`: `{"<model type>": {}, ...}` for the templates that exist.
async fn list_models(
    request: &HttpRequest,
    payload: web::Payload,
    state: &WebhookState,
) -> Result<HttpResponse, WebhookError> {
    verified_body(request, payload, state).await?;

    let offers = with_timeout(
        &state,
        "listing TrainingTemplates",
        state.catalog.model_types(),
    )
    .await?;
    for (model_type, templates) in offers.iter().filter(|(_, templates)| templates.len() > 1) {
        warn!(%model_type, templates = %templates.join(", "), "model type offered by more than one TrainingTemplate; it is left out of GET /models and its runs are rejected until one is removed");
    }

    // An ambiguous model type is left out, because Labelbox would offer a
    // model whose every run is rejected.
    let models: BTreeMap<&String, serde_json::Value> = offers
        .iter()
        .filter(|(_, templates)| templates.len() == 1)
        .map(|(model_type, _)| (model_type, json!({})))
        .collect();
    Ok(HttpResponse::Ok().json(models))
}

/// `POST /model_run`: records the request as a TrainingRun.
async fn accept_model_run(
    request: &HttpRequest,
    payload: web::Payload,
    state: &WebhookState,
) -> Result<HttpResponse, WebhookError> {
    let body = verified_body(request, payload, state).await?;
    let run_request = model_run::parse(&body)?;

    let resolution = with_timeout(
        state,
        "listing TrainingTemplates",
        state.catalog.resolve(&run_request.model_type),
    )
    .await?;
    let (namespace, template) = match resolution {
        Resolution::Found {
            namespace,
            template,
        } => (namespace, template),
        Resolution::Unknown { known } => {
            return Err(WebhookError::UnknownModelType {
                model_type: run_request.model_type,
                known,
            });
        }
        Resolution::Ambiguous { templates } => {
            warn!(model_type = %run_request.model_type.escape_debug(), templates = %templates.join(", "), "refused a run: model type offered by more than one TrainingTemplate");
            return Err(WebhookError::AmbiguousModelType {
                model_type: run_request.model_type,
                templates,
            });
        }
    };

    let create = model_run::create_run(state.client.clone(), &namespace, &template, &run_request);
    let accepted = tokio::time::timeout(state.api_timeout, create)
        .await
        .map_err(|_| timed_out(state, "creating the TrainingRun"))??;

    info!(
        namespace = %accepted.namespace,
        name = %accepted.name,
        model_run_id = %accepted.model_run_id.escape_debug(),
        created = accepted.created,
        "accepted model run"
    );
    Ok(HttpResponse::Ok().json(accepted))
}

/// Reads the body and verifies its signature against every secret that is
/// valid now.
async fn verified_body(
    request: &HttpRequest,
    payload: web::Payload,
    state: &WebhookState,
) -> Result<web::Bytes, WebhookError> {
    let body = body::read_limited(request, payload, state.body_limit).await?;
    let secrets = state.secrets.valid().await.map_err(|reason| {
        warn!(%reason, "no webhook secret is readable");
        WebhookError::SecretUnavailable(reason)
    })?;

    for name in [signature::SHA1_HEADER, signature::SHA256_HEADER] {
        if request.headers().get_all(name).count() > 1 {
            return Err(SignatureError::Repeated { header: name }.into());
        }
    }

    // A header that is not visible ASCII becomes empty, so that it is
    // reported as malformed rather than missing.
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap_or_default())
    };
    let headers = SignatureHeaders {
        sha1: header(signature::SHA1_HEADER),
        sha256: header(signature::SHA256_HEADER),
    };
    signature::verify(headers, &body, &secrets)?;
    Ok(body)
}

async fn with_timeout<T>(
    state: &WebhookState,
    action: &str,
    call: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, WebhookError> {
    match tokio::time::timeout(state.api_timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(WebhookError::from_kube(action, error)),
        Err(_) => Err(timed_out(state, action)),
    }
}

fn timed_out(state: &WebhookState, action: &str) -> WebhookError {
    WebhookError::ApiUnavailable(format!("{action} timed out after {:?}", state.api_timeout))
}
