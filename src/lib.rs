//! trainhook trains Labelbox models on a Kubernetes cluster.
//!
//! The pieces, each in its own module:
//! - [`webhook`]: the ingress that verifies Labelbox's signed calls and turns
//!   a `POST /model_run` into a `TrainingRun`.
//! - [`controller`]: runs each `TrainingRun` as a Job built from its
//!   `TrainingTemplate` and turns the Job's progress into Labelbox statuses.
//! - [`labelbox`]: the client for Labelbox's status mutation.
//! - [`resources`]: the custom resources and the rule that names a run.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod cli;
pub mod controller;
pub mod labelbox;
pub mod metrics;
pub mod resources;
pub mod secrets;
pub mod signature;
pub mod telemetry;
pub mod webhook;

/// Field manager for everything trainhook writes with server-side apply.
pub const FIELD_MANAGER: &str = "trainhook";
