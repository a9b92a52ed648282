//! One test's world: a namespace with a TrainingTemplate, the Labelbox
//! stand-in, and trainhook watching that namespace.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::ListParams;
use serde_json::{Value, json};

use super::cluster::{self, Cluster, eventually};
use super::standin::Standin;
use super::trainhook::{Options, Trainhook};
use trainhook::resources::TrainingRun;

pub const API_KEY: &str = "test-api-key";
pub const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// One test's world: a namespace with a template, a stand-in and trainhook.
pub struct World {
    pub cluster: &'static Cluster,
    pub namespace: String,
    pub standin: Standin,
    pub trainhook: Trainhook,
}

impl World {
    /// Creates a namespace holding a `bounding_box` template whose pod
    /// carries `pod_annotations`, and starts trainhook on it.
    pub async fn new(prefix: &str, pod_annotations: Value) -> World {
        World::with_job_spec(prefix, pod_annotations, json!({})).await
    }

    /// Like [`World::new`], with `job_spec` merged into the template's Job
    /// spec, such as `{"ttlSecondsAfterFinished": 0}`.
    pub async fn with_job_spec(prefix: &str, pod_annotations: Value, job_spec: Value) -> World {
        World::on_cluster(cluster::shared(), prefix, pod_annotations, job_spec).await
    }

    /// Like [`World::with_job_spec`], on the given cluster.
    pub async fn on_cluster(
        cluster: &'static Cluster,
        prefix: &str,
        pod_annotations: Value,
        job_spec: Value,
    ) -> World {
        let namespace = cluster.namespace(prefix);
        let mut template: Value = serde_json::from_str(&template_yaml(
            &namespace,
            "bounding-box",
            "bounding_box",
            &pod_annotations,
        ))
        .unwrap();
        merge(&mut template["spec"]["jobTemplate"]["spec"], job_spec);
        cluster.apply(&template.to_string());

        let standin = Standin::start(API_KEY).await;
        let trainhook = Trainhook::start(Options {
            kubeconfig: &cluster.kubeconfig,
            namespace: &namespace,
            labelbox_endpoint: &standin.status_url(),
            labelbox_api_key: API_KEY,
            subcommand: "run",
            extra_args: Vec::new(),
        })
        .await;
        World {
            cluster,
            namespace,
            standin,
            trainhook,
        }
    }

    /// Kills trainhook and starts it again with `extra_args`.
    pub async fn restart_trainhook(&mut self, extra_args: Vec<String>) {
        self.trainhook.kill();
        self.trainhook = Trainhook::start(Options {
            kubeconfig: &self.cluster.kubeconfig,
            namespace: &self.namespace,
            labelbox_endpoint: &self.standin.status_url(),
            labelbox_api_key: API_KEY,
            subcommand: "run",
            extra_args,
        })
        .await;
    }

    pub async fn runs(&self) -> Api<TrainingRun> {
        Api::namespaced(self.cluster.client().await, &self.namespace)
    }

    pub async fn jobs(&self) -> Api<Job> {
        Api::namespaced(self.cluster.client().await, &self.namespace)
    }

    /// Lists the TrainingRuns in the namespace.
    pub async fn list_runs(&self) -> Vec<TrainingRun> {
        let runs = self.runs().await.list(&ListParams::default()).await;
        runs.unwrap().items
    }

    /// Lists the Jobs in the namespace.
    pub async fn list_jobs(&self) -> Vec<Job> {
        let jobs = self.jobs().await.list(&ListParams::default()).await;
        jobs.unwrap().items
    }

    /// Sends a signed `POST /model_run` with [`model_run_body`] for
    /// `model_run_id`, returning the status and JSON body.
    pub async fn post_run(&self, model_run_id: &str) -> (u16, Value) {
        self.trainhook
            .post_model_run(&model_run_body(model_run_id))
            .await
    }

    /// Waits until the run reaches a finished phase and returns it.
    pub async fn finished_run(&self, name: &str) -> TrainingRun {
        let runs = self.runs().await;
        eventually(
            &format!("TrainingRun {name} to finish"),
            RUN_TIMEOUT,
            || async {
                let run = runs.get_opt(name).await.ok().flatten()?;
                let phase = run.status.as_ref()?.phase?;
                phase.is_finished().then_some(run)
            },
        )
        .await
    }

    /// Waits until the run's status records that Labelbox acknowledged `status`.
    pub async fn acknowledged(&self, name: &str, status: &str) {
        let runs = self.runs().await;
        eventually(
            &format!("{status} to be acknowledged on {name}"),
            RUN_TIMEOUT,
            || async {
                let run = runs.get(name).await.ok()?;
                (run.status?.labelbox.last_acknowledged?.as_str() == status).then_some(())
            },
        )
        .await
    }

    /// Waits until Labelbox acknowledged `count` statuses for the model run.
    pub async fn statuses(&self, model_run_id: &str, count: usize) -> Vec<Value> {
        eventually(
            &format!("{count} statuses for {model_run_id}"),
            RUN_TIMEOUT,
            || async {
                let statuses = self.standin.accepted_statuses(model_run_id).await;
                (statuses.len() >= count).then_some(statuses)
            },
        )
        .await
    }
}

pub fn template_yaml(
    namespace: &str,
    name: &str,
    model_type: &str,
    pod_annotations: &Value,
) -> String {
    let template = json!({
        "apiVersion": "trainhook.dev/v1alpha1",
        "kind": "TrainingTemplate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "modelType": model_type,
            "jobTemplate": {"spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"annotations": pod_annotations},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "train", "image": "example.invalid/trainer:1"}]
                    }
                }
            }}
        }
    });
    serde_json::to_string(&template).unwrap()
}

pub fn model_run_body(model_run_id: &str) -> String {
    json!({
        "modelType": "bounding_box",
        "modelRunId": model_run_id,
        "modelId": "9e3f51f8-5e62-0cab-360e-c0443dcc3008",
        "organizationId": "cjhfn5y6s0pk507024nz1ocys"
    })
    .to_string()
}

pub fn status_names(statuses: &[Value]) -> Vec<String> {
    statuses
        .iter()
        .map(|s| s["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Merges `extra` into `target`, object keys recursively.
pub fn merge(target: &mut Value, extra: Value) {
    match (target, extra) {
        (Value::Object(target), Value::Object(extra)) => {
            for (key, value) in extra {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, extra) => *target = extra,
    }
}
