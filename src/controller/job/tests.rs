use serde_json::json;

use super::*;
use crate::resources::TrainingRunSpec;

fn template(spec: serde_json::Value) -> TrainingTemplate {
    let mut template: TrainingTemplate = serde_json::from_value(json!({
        "apiVersion": "trainhook.dev/v1alpha1",
        "kind": "TrainingTemplate",
        "metadata": {"name": "boxes", "namespace": "ml"},
        "spec": spec,
    }))
    .unwrap();
    template.metadata.uid = Some("template-uid".into());
    template
}

fn basic_template() -> TrainingTemplate {
    template(json!({
        "modelType": "bounding_box",
        "jobTemplate": {
            "metadata": {"labels": {"team": "vision"}},
            "spec": {"backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never",
                "initContainers": [{"name": "export", "image": "exporter"}],
                "containers": [
                    {"name": "train", "image": "trainer", "env": [{"name": "LABELBOX_MODEL_RUN_ID", "value": "stale"}]},
                    {"name": "sidecar", "image": "logger"}
                ]
            }}}
        },
        "initContainerStages": [{"container": "export", "status": "EXPORTING_DATA"}],
        "labelboxApiKeySecret": {"name": "labelbox"}
    }))
}

fn run() -> TrainingRun {
    let mut run = TrainingRun::new(
        "run-1",
        TrainingRunSpec {
            model_type: "bounding_box".into(),
            model_run_id: "Run-1".into(),
            model_id: Some("model-9".into()),
            organization_id: None,
            template: Some("boxes".into()),
        },
    );
    run.metadata.namespace = Some("ml".into());
    run.metadata.uid = Some("run-uid".into());
    run
}

fn env_of(container: &Container) -> BTreeMap<String, String> {
    container
        .env
        .iter()
        .flatten()
        .map(|var| {
            let value = var.value.clone().unwrap_or_else(|| {
                let secret = var
                    .value_from
                    .as_ref()
                    .unwrap()
                    .secret_key_ref
                    .as_ref()
                    .unwrap();
                format!("secret:{}/{}", secret.name, secret.key)
            });
            (var.name.clone(), value)
        })
        .collect()
}

#[test]
fn job_is_named_and_owned_by_run() {
    let job = build_job(&run(), &basic_template()).unwrap();
    let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(job.metadata.name.as_deref(), Some("run-1"));
    assert_eq!(job.metadata.namespace.as_deref(), Some("ml"));
    assert_eq!(owner.uid, "run-uid");
    assert_eq!(owner.kind, "TrainingRun");
    assert_eq!(owner.controller, Some(true));
    assert_eq!(
        job.metadata.finalizers.as_deref(),
        Some(&[JOB_FINALIZER.to_owned()][..])
    );
}

#[test]
fn every_container_gets_run_ids() {
    let job = build_job(&run(), &basic_template()).unwrap();
    let pod = job.spec.unwrap().template.spec.unwrap();
    let containers = pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten());
    for container in containers {
        let env = env_of(container);
        assert_eq!(env["LABELBOX_MODEL_RUN_ID"], "Run-1", "{}", container.name);
        assert_eq!(env["LABELBOX_MODEL_ID"], "model-9", "{}", container.name);
        assert_eq!(
            env["LABELBOX_MODEL_TYPE"], "bounding_box",
            "{}",
            container.name
        );
        assert_eq!(env["TRAINHOOK_TRAINING_RUN"], "run-1", "{}", container.name);
        assert_eq!(
            env["LABELBOX_API_KEY"], "secret:labelbox/api-key",
            "{}",
            container.name
        );
        assert!(
            !env.contains_key("LABELBOX_ORGANIZATION_ID"),
            "{}",
            container.name
        );
    }
}

#[test]
fn run_id_replaces_template_value() {
    let job = build_job(&run(), &basic_template()).unwrap();
    let pod = job.spec.unwrap().template.spec.unwrap();
    let names: Vec<_> = pod.containers[0]
        .env
        .iter()
        .flatten()
        .filter(|v| v.name == "LABELBOX_MODEL_RUN_ID")
        .collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn labels_mark_job_and_pods() {
    let job = build_job(&run(), &basic_template()).unwrap();
    let labels = job.metadata.labels.unwrap();
    assert_eq!(labels[RUN_LABEL], "run-1");
    assert_eq!(labels["team"], "vision");
    let pod_labels = job.spec.unwrap().template.metadata.unwrap().labels.unwrap();
    assert_eq!(pod_labels[RUN_LABEL], "run-1");
}

#[test]
fn annotations_keep_stage_config() {
    let job = build_job(&run(), &basic_template()).unwrap();
    let annotations = job.metadata.annotations.unwrap();
    assert_eq!(annotations[TRAINING_CONTAINER_ANNOTATION], "train");
    assert!(annotations[INIT_STAGES_ANNOTATION].contains("EXPORTING_DATA"));
}

#[test]
fn unknown_training_container_is_named() {
    let mut template = basic_template();
    template.spec.training_container = Some("trainer".into());
    let error = build_job(&run(), &template).unwrap_err();
    assert_eq!(
        error.to_string(),
        "TrainingTemplate boxes names training container \"trainer\", but its pod template has only train, sidecar; fix spec.trainingContainer"
    );
}

#[test]
fn unknown_init_container_is_named() {
    let mut template = basic_template();
    template.spec.init_container_stages[0].container = "download".into();
    let error = build_job(&run(), &template).unwrap_err();
    assert!(
        matches!(error, BuildError::UnknownInitContainer { ref container, .. } if container == "download"),
        "{error}"
    );
}

#[test]
fn template_without_containers_is_rejected() {
    let empty =
        template(json!({"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}));
    assert!(matches!(
        build_job(&run(), &empty),
        Err(BuildError::NoContainers { .. })
    ));
}
