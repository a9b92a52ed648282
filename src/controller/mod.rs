//! Controller: runs each TrainingRun as a Job and reports the Job's progress
//! to Labelbox.
//!
//! - [`reconcile`]: the steps of one pass over a run.
//! - [`job`]: the Job built from the run's template.
//! - [`progress`]: what a Job and its pods mean as a Labelbox stage.
//! - [`status`]: how the run's status advances.
//! - [`report`]: delivery of recorded stages to Labelbox.
//! - [`leader`]: leader election, so that one replica of many acts.

pub mod job;
pub mod leader;
pub mod progress;
pub mod reconcile;
pub mod report;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::utils::{Backoff, ResetTimerBackoff};
use kube::runtime::{finalizer, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{error, info, warn};

use crate::FIELD_MANAGER;
use crate::labelbox::LabelboxClient;
use crate::metrics::metrics;
use crate::resources::{RUN_LABEL, TrainingRun, TrainingRunStatus};

/// Failure of one reconcile pass, naming the action and the object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("{action} {object} failed: {source}")]
    Kube {
        /// What was being done, such as "creating Job".
        action: &'static str,
        /// The object, as `namespace/name`.
        object: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Adding or removing the run's finalizer failed.
    #[error("finalizer of TrainingRun failed: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
}

impl Error {
    /// Wraps a client error with what was being done to which object.
    pub fn kube(
        action: &'static str,
        object: impl Into<String>,
    ) -> impl FnOnce(kube::Error) -> Error {
        let object = object.into();
        move |source| Error::Kube {
            action,
            object,
            source,
        }
    }
}

/// State that every reconcile pass shares.
pub struct Context {
    /// Client for the Kubernetes API.
    pub client: Client,
    /// Client for Labelbox status updates.
    pub labelbox: LabelboxClient,
    /// Publisher of Kubernetes Events on runs.
    pub recorder: Recorder,
    /// How long a deleted run waits for Labelbox to acknowledge its FAILED.
    pub deletion_report_timeout: Duration,
}

impl Context {
    /// Creates the context; `instance` names this replica in Events.
    pub fn new(
        client: Client,
        labelbox: LabelboxClient,
        deletion_report_timeout: Duration,
    ) -> Self {
        let reporter = Reporter {
            controller: "trainhook".to_owned(),
            instance: std::env::var("POD_NAME")
                .ok()
                .or_else(|| std::env::var("HOSTNAME").ok()),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        Self {
            client,
            labelbox,
            recorder,
            deletion_report_timeout,
        }
    }

    /// Returns the API of the namespace `run` lives in, for kind `K`.
    pub fn api<K>(&self, run: &TrainingRun) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &run.namespace().unwrap_or_default())
    }

    /// Writes the run's whole status by server-side apply and returns it.
    pub async fn write_status(
        &self,
        run: &TrainingRun,
        status: TrainingRunStatus,
    ) -> Result<TrainingRunStatus, Error> {
        let patch = json!({
            "apiVersion": "trainhook.dev/v1alpha1",
            "kind": "TrainingRun",
            "status": status,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.api::<TrainingRun>(run)
            .patch_status(&run.name_any(), &params, &Patch::Apply(&patch))
            .await
            .map_err(Error::kube(
                "writing status of TrainingRun",
                object_name(run),
            ))?;
        Ok(status)
    }

    /// Publishes an Event on the run; a failure is logged, never fatal.
    pub async fn publish(
        &self,
        run: &TrainingRun,
        kind: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_: kind,
            reason: reason.to_owned(),
            note: Some(note),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &run.object_ref(&())).await {
            warn!(%error, %reason, "publishing an Event failed");
        }
    }
}

/// Returns `namespace/name` of an object, for messages.
pub fn object_name<K: ResourceExt>(object: &K) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// Runs the controller over the given namespaces (`None` for all) until the
/// process is asked to stop.
///
/// kube-runtime's controller watches one namespace or all of them, so a
/// list of namespaces gets one controller each, sharing the context.
pub async fn run(
    client: Client,
    scopes: Vec<Option<String>>,
    ctx: Arc<Context>,
) -> anyhow::Result<()> {
    check_crd_installed(&client, &scopes).await?;
    metrics().set_leader(true);

    let controllers = scopes.into_iter().map(|scope| {
        let api = |client: &Client| match &scope {
            Some(namespace) => (
                Api::<TrainingRun>::namespaced(client.clone(), namespace),
                Api::<Job>::namespaced(client.clone(), namespace),
                Api::<Pod>::namespaced(client.clone(), namespace),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            ),
        };
        let (runs, jobs, pods) = api(&client);
        let ours = watcher::Config::default().labels(RUN_LABEL);
        info!(
            namespace = scope.as_deref().unwrap_or("<all>"),
            "controller starting"
        );

        Controller::new(runs, watcher::Config::default())
            .trigger_backoff(ResetTimerBackoff::new(
                WatchBackoff::default(),
                Duration::from_secs(60),
            ))
            .owns(jobs, ours.clone())
            .watches(pods, ours, run_of_pod)
            .shutdown_on_signal()
            .run(reconcile::reconcile, error_policy, ctx.clone())
            .for_each(|result| async move {
                if let Err(error) = result {
                    warn!(error = %error, "reconcile failed");
                }
            })
    });
    futures::future::join_all(controllers).await;
    info!("controller stopped");
    Ok(())
}

/// Pause of the controller's watches after an error: doubling from 250 ms
/// to 5 s.
///
/// kube-runtime pauses all of a controller's watches together after an
/// error of any one. After an API server restart each watch fails once with
/// "resource version too old" before it lists again, so the default cap of
/// 30 s held every run for about a minute and a half.
struct WatchBackoff {
    next: Duration,
}

impl WatchBackoff {
    const FIRST: Duration = Duration::from_millis(250);
    const LONGEST: Duration = Duration::from_secs(5);
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let current = self.next;
        self.next = (current * 2).min(Self::LONGEST);
        Some(current)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// Maps a pod to the run named in its label.
fn run_of_pod(pod: Pod) -> Option<ObjectRef<TrainingRun>> {
    let name = pod.labels().get(RUN_LABEL)?;
    Some(ObjectRef::new(name).within(&pod.namespace()?))
}

/// Requeues a failed pass after a pause; the error is logged by the caller.
fn error_policy(run: Arc<TrainingRun>, error: &Error, _ctx: Arc<Context>) -> Action {
    error!(run = %object_name(run.as_ref()), model_run_id = %run.spec.model_run_id.escape_debug(), %error, "reconcile failed; retrying in 5 s");
    metrics().reconcile_error();
    Action::requeue(Duration::from_secs(5))
}

/// Fails with a message that explains how to install the CRDs when the API does
/// not serve TrainingRuns.
async fn check_crd_installed(client: &Client, scopes: &[Option<String>]) -> anyhow::Result<()> {
    let api: Api<TrainingRun> = match scopes.first().cloned().flatten() {
        Some(namespace) => Api::namespaced(client.clone(), &namespace),
        None => Api::all(client.clone()),
    };
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => anyhow::bail!(
            "the TrainingRun CRD is not installed in this cluster; install it with `trainhook crds | kubectl apply --server-side -f -`"
        ),
        Err(error) => Err(anyhow::anyhow!("cannot list TrainingRuns: {error}")),
    }
}
