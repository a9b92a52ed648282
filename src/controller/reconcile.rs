//! One pass over a TrainingRun: observe its Job, record what it shows, and
//! report it to Labelbox.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, ResourceExt};
use serde_json::json;
use tracing::{Instrument, debug, info, info_span, warn};

use super::job::{JOB_FINALIZER, build_job};
use super::progress::{self, Observation};
use super::report::{self, Delivery, now};
use super::status;
use super::{Context, Error, object_name};
use crate::FIELD_MANAGER;
use crate::resources::{RUN_LABEL, RunPhase, TrainingRun, TrainingRunStatus, TrainingTemplate};

/// Finalizer on every run, so that a run deleted before it ends still
/// reports FAILED to Labelbox.
pub const RUN_FINALIZER: &str = "trainhook.dev/report-deletion";

/// How often a run that waits on nothing is looked at again anyway.
const RESYNC: Duration = Duration::from_secs(300);

/// How often a run whose stage Labelbox rejected checks whether the
/// endpoint or API key changed, which is when the stage is sent again.
const REJECTED_RECHECK: Duration = Duration::from_secs(20);

/// Reconciles one run inside its finalizer.
pub async fn reconcile(run: Arc<TrainingRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = info_span!(
        "reconcile",
        namespace = %run.namespace().unwrap_or_default(),
        name = %run.name_any(),
        // Escaped, because the id comes from the webhook body and a newline
        // in it would otherwise start a forged log line.
        model_run_id = %run.spec.model_run_id.escape_debug(),
    );
    let api: Api<TrainingRun> = ctx.api(&run);

    finalizer(&api, RUN_FINALIZER, run, |event| async {
        match event {
            Finalizer::Apply(run) => apply(&run, &ctx).await,
            Finalizer::Cleanup(run) => cleanup(&run, &ctx).await,
        }
    })
    .instrument(span)
    .await
    .map_err(|error| Error::Finalizer(Box::new(error)))
}

/// Runs one pass for a live run.
async fn apply(run: &TrainingRun, ctx: &Context) -> Result<Action, Error> {
    let run = fresh(run, ctx).await?;
    let mut status = run.status_or_default();
    debug!(phase = %status.phase.map(|phase| phase.to_string()).unwrap_or_default(), "reconciling");

    // 1. Observe the Job, creating it on the first pass, and record what it
    //    shows before anything is sent.
    if !status::has_ended(&status) {
        let (observation, job) = observe(&run, &status, ctx).await?;
        status = record(&run, status, &observation, job.as_ref(), ctx).await?;
    }

    // 2. Let the Job go once its final state is recorded.
    if status::has_ended(&status) {
        release_job(&run, ctx).await?;
    }

    // 3. Send what is recorded and not yet acknowledged.
    let delivery = report::deliver(&run, &mut status, ctx).await?;

    // 4. Look again when a retry is due; otherwise the watches wake us.
    Ok(match delivery {
        Delivery::RetryIn(wait) => Action::requeue(wait),
        Delivery::Blocked => Action::requeue(REJECTED_RECHECK),
        Delivery::UpToDate => Action::requeue(RESYNC),
    })
}

/// The pass for a run being deleted: record and report FAILED if it had
/// not ended, let its Job go, and give Labelbox a bounded time to
/// acknowledge before the run is released.
async fn cleanup(run: &TrainingRun, ctx: &Context) -> Result<Action, Error> {
    let run = fresh(run, ctx).await?;
    let mut status = run.status_or_default();

    if !status::has_ended(&status) {
        let why = format!(
            "TrainingRun {} was deleted before training finished",
            object_name(&run)
        );
        status = record(&run, status, &Observation::failed(why), None, ctx).await?;
    }
    release_job(&run, ctx).await?;

    let deadline = tokio::time::Instant::now() + ctx.deletion_report_timeout;
    loop {
        match report::deliver(&run, &mut status, ctx).await? {
            Delivery::UpToDate | Delivery::Blocked => break,
            Delivery::RetryIn(wait) if tokio::time::Instant::now() + wait < deadline => {
                tokio::time::sleep(wait).await;
            }
            Delivery::RetryIn(_) => {
                let note = format!(
                    "Labelbox did not acknowledge the final status within {:?}; releasing the deleted run anyway",
                    ctx.deletion_report_timeout
                );
                warn!("{note}");
                ctx.publish(
                    &run,
                    EventType::Warning,
                    "ReportAbandoned",
                    "ReportStage",
                    note,
                )
                .await;
                break;
            }
        }
    }
    Ok(Action::await_change())
}

/// Reads the run from the API rather than the watch cache. A pass must see
/// the status the previous pass wrote, or it could send a stage that
/// Labelbox acknowledged moments ago.
async fn fresh(run: &TrainingRun, ctx: &Context) -> Result<TrainingRun, Error> {
    ctx.api::<TrainingRun>(run)
        .get(&run.name_any())
        .await
        .map_err(Error::kube("reading TrainingRun", object_name(run)))
}

/// Writes what an observation changes in the status, and publishes an Event
/// when the run ends.
async fn record(
    run: &TrainingRun,
    status: TrainingRunStatus,
    observation: &Observation,
    job: Option<&Job>,
    ctx: &Context,
) -> Result<TrainingRunStatus, Error> {
    let mut next = status::advance(&status, observation, &now(), run.metadata.generation);
    if let Some(job) = job {
        next.job_name = job.metadata.name.clone();
        next.start_time = job.metadata.creation_timestamp.clone();
        next.template = job.annotations().get(TEMPLATE_ANNOTATION).cloned();
    }
    if next == status {
        return Ok(status);
    }

    let next = ctx.write_status(run, next).await?;
    if next.phase != status.phase {
        let phase = next
            .phase
            .map(|phase| phase.to_string())
            .unwrap_or_default();
        info!(%phase, message = next.message.as_deref().unwrap_or(""), "run changed phase");
    }
    if next.phase == Some(RunPhase::Failed) && status.phase != Some(RunPhase::Failed) {
        let note = next.message.clone().unwrap_or_default();
        ctx.publish(run, EventType::Warning, "RunFailed", "Observe", note)
            .await;
    }
    if next.phase == Some(RunPhase::Succeeded) && status.phase != Some(RunPhase::Succeeded) {
        let note = "the training Job completed".to_owned();
        ctx.publish(run, EventType::Normal, "RunSucceeded", "Observe", note)
            .await;
        warn_of_unreadable_metadata(run, observation, ctx).await;
    }
    Ok(next)
}

/// Publishes a Warning Event when the termination message was meant as
/// metadata for COMPLETE but cannot be read, so that the loss is visible.
async fn warn_of_unreadable_metadata(run: &TrainingRun, observation: &Observation, ctx: &Context) {
    let Some(termination) = observation.termination.as_ref() else {
        return;
    };
    let Some(reason) = progress::unreadable_metadata(termination) else {
        return;
    };

    let note = format!(
        "COMPLETE carries no metadata: the termination message of container {} in pod {} starts with {{ but {reason}",
        termination.container, termination.pod
    );
    warn!(%note, "unreadable training metadata");
    ctx.publish(
        run,
        EventType::Warning,
        "MetadataUnreadable",
        "Observe",
        note,
    )
    .await;
}

/// Job annotation naming the template the Job was built from.
const TEMPLATE_ANNOTATION: &str = "trainhook.dev/template";

/// Observes the run's Job and pods, creating the Job when the run has none
/// yet. Returns the observation and the Job, if there is one.
async fn observe(
    run: &TrainingRun,
    status: &TrainingRunStatus,
    ctx: &Context,
) -> Result<(Observation, Option<Job>), Error> {
    let jobs: Api<Job> = ctx.api(run);
    let name = run.name_any();
    let existing = jobs
        .get_opt(&name)
        .await
        .map_err(Error::kube("reading Job", object_name(run)))?;

    let job = match existing {
        Some(job) => job,
        None if status.job_name.is_some() => {
            let why =
                format!("Job {name} is missing: it was deleted before trainhook saw it finish");
            return Ok((Observation::failed(why), None));
        }
        None => match create_job(run, ctx).await? {
            Ok(job) => job,
            Err(why) => return Ok((Observation::failed(why), None)),
        },
    };

    if let Some(observation) = check_ownership(run, &job) {
        return Ok((observation, None));
    }

    let pods = owned_pods(run, &job, ctx).await?;
    let observation = progress::observe(&job, &pods, status.last_termination.as_ref());
    Ok((observation, Some(job)))
}

/// Returns an observation when the Job of the run's name belongs to someone
/// else: waiting while it belongs to an earlier run of the same name that
/// is being deleted, failed otherwise.
fn check_ownership(run: &TrainingRun, job: &Job) -> Option<Observation> {
    let run_uid = run.uid().unwrap_or_default();
    let owner = job
        .owner_references()
        .iter()
        .find(|owner| owner.controller == Some(true));
    match owner {
        Some(owner) if owner.uid == run_uid => None,
        Some(owner) if owner.kind == "TrainingRun" => Some(Observation::waiting(format!(
            "waiting for Job {} of an earlier TrainingRun of the same name to be deleted",
            job.name_any()
        ))),
        _ => Some(Observation::failed(format!(
            "a Job named {} exists that this TrainingRun does not own; delete that Job and create the TrainingRun again",
            job.name_any()
        ))),
    }
}

/// Lists the pods of the run's Job, leaving out pods of an earlier Job of
/// the same name.
async fn owned_pods(run: &TrainingRun, job: &Job, ctx: &Context) -> Result<Vec<Pod>, Error> {
    let pods: Api<Pod> = ctx.api(run);
    let selector = format!("{RUN_LABEL}={}", run.name_any());
    let listed = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::kube("listing pods of", object_name(run)))?;

    let job_uid = job.uid().unwrap_or_default();
    Ok(listed
        .items
        .into_iter()
        .filter(|pod| {
            pod.owner_references()
                .iter()
                .any(|owner| owner.uid == job_uid)
        })
        .collect())
}

/// Creates the run's Job from its template. Returns `Err(why)` when the run
/// cannot have a Job, a permanent failure of the run.
async fn create_job(run: &TrainingRun, ctx: &Context) -> Result<Result<Job, String>, Error> {
    let template = match find_template(run, ctx).await? {
        Ok(template) => template,
        Err(why) => return Ok(Err(why)),
    };
    let mut job = match build_job(run, &template) {
        Ok(job) => job,
        Err(error) => return Ok(Err(error.to_string())),
    };
    job.annotations_mut()
        .insert(TEMPLATE_ANNOTATION.to_owned(), template.name_any());

    let jobs: Api<Job> = ctx.api(run);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    match jobs.create(&params, &job).await {
        Ok(created) => {
            let note = format!(
                "created Job {} from TrainingTemplate {}",
                created.name_any(),
                template.name_any()
            );
            info!(job = %created.name_any(), template = %template.name_any(), "created Job");
            ctx.publish(run, EventType::Normal, "JobCreated", "CreateJob", note)
                .await;
            Ok(Ok(created))
        }
        Err(kube::Error::Api(status)) if status.code == 409 => jobs
            .get(&run.name_any())
            .await
            .map(Ok)
            .map_err(Error::kube("reading Job", object_name(run))),
        Err(kube::Error::Api(status)) if matches!(status.code, 400 | 422) => Ok(Err(format!(
            "the Job built from TrainingTemplate {} is invalid: {}; fix the template and create the TrainingRun again",
            template.name_any(),
            status.message
        ))),
        Err(error) => Err(Error::kube("creating Job", object_name(run))(error)),
    }
}

/// Finds the run's template: the one named in the spec, or else the only
/// one in the run's namespace that offers its model type. Returns
/// `Err(why)` when there is none, or more than one.
async fn find_template(
    run: &TrainingRun,
    ctx: &Context,
) -> Result<Result<TrainingTemplate, String>, Error> {
    let api: Api<TrainingTemplate> = ctx.api(run);
    let namespace = run.namespace().unwrap_or_default();
    let model_type = &run.spec.model_type;

    if let Some(name) = run.spec.template.as_deref().filter(|name| !name.is_empty()) {
        let template = api.get_opt(name).await.map_err(Error::kube(
            "reading TrainingTemplate",
            format!("{namespace}/{name}"),
        ))?;
        return Ok(match template {
            None => Err(format!(
                "TrainingTemplate {namespace}/{name} named by spec.template does not exist; create it, then create the TrainingRun again"
            )),
            Some(template) if template.model_type() != *model_type => Err(format!(
                "TrainingTemplate {namespace}/{name} offers model type {:?}, not {model_type:?}; fix spec.template or spec.modelType",
                template.model_type()
            )),
            Some(template) => Ok(template),
        });
    }

    let listed = api.list(&ListParams::default()).await.map_err(Error::kube(
        "listing TrainingTemplates in",
        namespace.clone(),
    ))?;
    let mut offering: Vec<TrainingTemplate> = listed
        .items
        .into_iter()
        .filter(|template| template.model_type() == *model_type)
        .collect();
    Ok(match offering.len() {
        0 => Err(format!(
            "no TrainingTemplate in namespace {namespace} offers model type {model_type:?}; create one with spec.modelType {model_type:?}, then create the TrainingRun again"
        )),
        1 => Ok(offering.remove(0)),
        _ => Err(format!(
            "more than one TrainingTemplate in namespace {namespace} offers model type {model_type:?} ({}); keep one and create the TrainingRun again",
            offering
                .iter()
                .map(ResourceExt::name_any)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    })
}

/// Removes trainhook's finalizer from the run's Job, if it has one.
async fn release_job(run: &TrainingRun, ctx: &Context) -> Result<(), Error> {
    let jobs: Api<Job> = ctx.api(run);
    let name = run.name_any();
    let job = jobs
        .get_opt(&name)
        .await
        .map_err(Error::kube("reading Job", object_name(run)))?;
    let Some(job) = job else { return Ok(()) };
    if !job
        .finalizers()
        .iter()
        .any(|finalizer| finalizer == JOB_FINALIZER)
    {
        return Ok(());
    }

    // A strategic merge patch removes just this entry, whatever other
    // finalizers (foregroundDeletion, for one) are added meanwhile.
    let patch = json!({ "metadata": { "$deleteFromPrimitiveList/finalizers": [JOB_FINALIZER] } });
    jobs.patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .map_err(Error::kube(
            "removing the finalizer of Job",
            object_name(run),
        ))?;
    Ok(())
}
