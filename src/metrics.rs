//! Prometheus metrics of the process, served at `GET /metrics` in the
//! OpenMetrics text format.
//!
//! The metrics live in one process-wide registry, like the default registry
//! of other Prometheus clients, so that the webhook, the controller and the
//! leader election record into it without passing it around.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::resources::PipelineStatus;

/// `Content-Type` of what [`Metrics::encode`] returns.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of a webhook request: the path and the HTTP status of the response.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    path: String,
    code: u16,
}

/// Labels of one status update sent to Labelbox.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpdateLabels {
    status: String,
    outcome: String,
}

/// Result of one status update sent to Labelbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Labelbox acknowledged the status.
    Acknowledged,
    /// The send failed with a transient error, so it will be retried.
    Retried,
    /// Labelbox rejected the status for good with this configuration.
    Rejected,
}

impl UpdateOutcome {
    fn as_str(self) -> &'static str {
        match self {
            UpdateOutcome::Acknowledged => "acknowledged",
            UpdateOutcome::Retried => "retried",
            UpdateOutcome::Rejected => "rejected",
        }
    }
}

/// The metrics trainhook records.
pub struct Metrics {
    registry: Registry,
    webhook_requests: Family<WebhookLabels, Counter>,
    labelbox_updates: Family<UpdateLabels, Counter>,
    reconcile_errors: Counter,
    leader: Gauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Returns the process-wide metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("trainhook");
        let webhook_requests = Family::default();
        registry.register(
            "webhook_requests",
            "Labelbox webhook requests by path and HTTP status of the response",
            webhook_requests.clone(),
        );
        let labelbox_updates = Family::default();
        registry.register(
            "labelbox_updates",
            "Status updates sent to Labelbox by status and outcome (acknowledged, retried, rejected)",
            labelbox_updates.clone(),
        );
        let reconcile_errors = Counter::default();
        registry.register(
            "reconcile_errors",
            "Reconcile passes of a TrainingRun that failed and were requeued",
            reconcile_errors.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this process runs the controller, 0 otherwise",
            leader.clone(),
        );

        Metrics {
            registry,
            webhook_requests,
            labelbox_updates,
            reconcile_errors,
            leader,
        }
    }

    /// Counts a webhook request whose response had the HTTP status `code`.
    pub fn webhook_request(&self, path: &str, code: u16) {
        let labels = WebhookLabels {
            path: path.to_owned(),
            code,
        };
        self.webhook_requests.get_or_create(&labels).inc();
    }

    /// Counts one status update sent to Labelbox.
    pub fn labelbox_update(&self, status: PipelineStatus, outcome: UpdateOutcome) {
        let labels = UpdateLabels {
            status: status.to_string(),
            outcome: outcome.as_str().to_owned(),
        };
        self.labelbox_updates.get_or_create(&labels).inc();
    }

    /// Counts a failed reconcile pass.
    pub fn reconcile_error(&self) {
        self.reconcile_errors.inc();
    }

    /// Records whether this process runs the controller now.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Returns every metric in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_recorded_values() {
        let metrics = Metrics::new();
        metrics.webhook_request("/model_run", 401);
        metrics.webhook_request("/model_run", 401);
        metrics.labelbox_update(PipelineStatus::Complete, UpdateOutcome::Acknowledged);
        metrics.set_leader(true);

        let text = metrics.encode();

        assert!(
            text.contains(r#"trainhook_webhook_requests_total{path="/model_run",code="401"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"trainhook_labelbox_updates_total{status="COMPLETE",outcome="acknowledged"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("trainhook_reconcile_errors_total 0"),
            "{text}"
        );
        assert!(text.contains("trainhook_leader 1"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
