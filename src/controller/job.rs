//! Where a TrainingRun becomes a Job: the Job built from the run's template.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, EnvVar, EnvVarSource, SecretKeySelector};
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};

use super::progress::{INIT_STAGES_ANNOTATION, TRAINING_CONTAINER_ANNOTATION};
use crate::resources::{RUN_LABEL, TrainingRun, TrainingTemplate};

/// Finalizer on every Job trainhook creates. It keeps a finished Job, and
/// so its final state, until the run has recorded that state; without it a
/// Job with `ttlSecondsAfterFinished: 0` could vanish unseen.
pub const JOB_FINALIZER: &str = "trainhook.dev/record-final-status";

/// Reason a template cannot make a Job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The pod template has no containers.
    #[error(
        "TrainingTemplate {template} has no containers in spec.jobTemplate.spec.template.spec.containers; add the training container"
    )]
    NoContainers {
        /// Template name.
        template: String,
    },

    /// `trainingContainer` names a container the pod template lacks.
    #[error(
        "TrainingTemplate {template} names training container {container:?}, but its pod template has only {known}; fix spec.trainingContainer"
    )]
    UnknownTrainingContainer {
        /// Template name.
        template: String,
        /// The name given.
        container: String,
        /// Names of the containers that exist.
        known: String,
    },

    /// An init container stage names an init container the pod lacks.
    #[error(
        "TrainingTemplate {template} maps init container {container:?} to a stage, but its pod template has no such init container; fix spec.initContainerStages"
    )]
    UnknownInitContainer {
        /// Template name.
        template: String,
        /// The name given.
        container: String,
    },
}

/// Builds the Job for `run` from `template`: named after the run, owned by
/// it, and with the run's ids in every container's environment.
pub fn build_job(run: &TrainingRun, template: &TrainingTemplate) -> Result<Job, BuildError> {
    let template_name = template.name_any();
    let mut spec = template.spec.job_template.spec.clone();
    let pod = spec.template.spec.get_or_insert_with(Default::default);

    let training_container = training_container(template, &pod.containers)?;
    let init_names: Vec<&str> = pod
        .init_containers
        .iter()
        .flatten()
        .map(|container| container.name.as_str())
        .collect();
    if let Some(stage) = template
        .spec
        .init_container_stages
        .iter()
        .find(|stage| !init_names.contains(&stage.container.as_str()))
    {
        return Err(BuildError::UnknownInitContainer {
            template: template_name,
            container: stage.container.clone(),
        });
    }

    let env = run_environment(run, template);
    for container in pod
        .containers
        .iter_mut()
        .chain(pod.init_containers.iter_mut().flatten())
    {
        set_environment(container, &env);
    }

    let run_name = run.name_any();
    let pod_labels = spec
        .template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default);
    pod_labels.insert(RUN_LABEL.to_owned(), run_name.clone());

    let template_metadata = template
        .spec
        .job_template
        .metadata
        .clone()
        .unwrap_or_default();
    let mut labels = template_metadata.labels;
    labels.insert(RUN_LABEL.to_owned(), run_name.clone());
    let mut annotations = template_metadata.annotations;
    annotations.insert(TRAINING_CONTAINER_ANNOTATION.to_owned(), training_container);
    annotations.insert(
        INIT_STAGES_ANNOTATION.to_owned(),
        serde_json::to_string(&template.spec.init_container_stages).expect("stages serialize"),
    );

    Ok(Job {
        metadata: ObjectMeta {
            name: Some(run_name),
            namespace: run.namespace(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: run.controller_owner_ref(&()).map(|owner| vec![owner]),
            finalizers: Some(vec![JOB_FINALIZER.to_owned()]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    })
}

fn training_container(
    template: &TrainingTemplate,
    containers: &[Container],
) -> Result<String, BuildError> {
    let template_name = template.name_any();
    let Some(first) = containers.first() else {
        return Err(BuildError::NoContainers {
            template: template_name,
        });
    };

    match template
        .spec
        .training_container
        .as_deref()
        .filter(|name| !name.is_empty())
    {
        None => Ok(first.name.clone()),
        Some(name) if containers.iter().any(|container| container.name == name) => {
            Ok(name.to_owned())
        }
        Some(name) => Err(BuildError::UnknownTrainingContainer {
            template: template_name,
            container: name.to_owned(),
            known: containers
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The variables every container gets. A value the template sets under the
/// same name is replaced, so the ids are always the run's.
fn run_environment(run: &TrainingRun, template: &TrainingTemplate) -> Vec<EnvVar> {
    let plain = |name: &str, value: &str| EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        value_from: None,
    };
    let spec = &run.spec;
    let values: BTreeMap<&str, Option<&str>> = BTreeMap::from([
        ("LABELBOX_MODEL_RUN_ID", Some(spec.model_run_id.as_str())),
        ("LABELBOX_MODEL_ID", spec.model_id.as_deref()),
        ("LABELBOX_ORGANIZATION_ID", spec.organization_id.as_deref()),
        ("LABELBOX_MODEL_TYPE", Some(spec.model_type.as_str())),
    ]);

    let mut env: Vec<EnvVar> = values
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| plain(name, value)))
        .collect();
    env.push(plain("TRAINHOOK_TRAINING_RUN", &run.name_any()));
    env.push(plain(
        "TRAINHOOK_NAMESPACE",
        &run.namespace().unwrap_or_default(),
    ));

    if let Some(secret) = &template.spec.labelbox_api_key_secret {
        env.push(EnvVar {
            name: "LABELBOX_API_KEY".to_owned(),
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.name.clone(),
                    key: secret.key.clone(),
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            }),
        });
    }
    env
}

fn set_environment(container: &mut Container, env: &[EnvVar]) {
    let existing = container.env.get_or_insert_with(Vec::new);
    existing.retain(|var| !env.iter().any(|ours| ours.name == var.name));
    existing.extend(env.iter().cloned());
}

#[cfg(test)]
mod tests;
