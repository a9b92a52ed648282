//! Command line: subcommands and the configuration each part takes, with an
//! environment variable behind every flag.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::controller::leader::{self, LeaseConfig};
use crate::labelbox::DEFAULT_ENDPOINT;
use crate::secrets::SecretSource;

/// Maximum overlap of an old and a new webhook secret: a week, far more
/// than switching the setting in Labelbox takes.
const MAX_OVERLAP_SECONDS: u64 = 7 * 24 * 3600;

/// Trains Labelbox models on this Kubernetes cluster.
#[derive(Debug, Parser)]
#[command(name = "trainhook", version, about, long_about = None)]
pub struct Cli {
    /// Subcommand to run.
    #[command(subcommand)]
    pub command: Command,

    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, global = true, help_heading = "Logging", env = "TRAINHOOK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter in `RUST_LOG` syntax, such as `info` or `trainhook=debug`.
    /// The default leaves out kube-runtime's span on every reconcile line.
    #[arg(
        long,
        global = true,
        help_heading = "Logging",
        env = "TRAINHOOK_LOG",
        default_value = "info,kube_runtime=warn"
    )]
    pub log: String,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the webhook ingress and the controller in one process, the usual
    /// way to deploy.
    Run {
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        webhook: WebhookArgs,
        #[command(flatten)]
        controller: ControllerArgs,
    },

    /// Run only the webhook ingress.
    Webhook {
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        webhook: WebhookArgs,
    },

    /// Run only the controller, with health probes on --listen.
    Controller {
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        controller: ControllerArgs,
        /// Address for the health and readiness probes.
        #[arg(long, env = "TRAINHOOK_LISTEN", default_value = "0.0.0.0:8080")]
        listen: SocketAddr,
    },

    /// Print the CustomResourceDefinitions as YAML.
    Crds,

    /// Read a request body on stdin and print its `X-Hub-Signature` value,
    /// to send a test webhook with curl.
    Sign {
        /// File holding the webhook secret; one trailing newline is ignored.
        /// Of a comma-separated list, as the server takes during a
        /// rotation, the first file is used.
        #[arg(
            long,
            env = "TRAINHOOK_WEBHOOK_SECRET_FILE",
            value_delimiter = ',',
            required = true
        )]
        secret_file: Vec<PathBuf>,
    },
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Which namespaces trainhook works in.
#[derive(Debug, Clone, Args)]
pub struct ScopeArgs {
    /// Namespace to watch for TrainingTemplates and TrainingRuns; repeat the
    /// flag or separate names with commas. All namespaces when not given.
    #[arg(
        long = "namespace",
        short = 'n',
        env = "TRAINHOOK_NAMESPACES",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,
}

impl ScopeArgs {
    /// Returns the watched namespaces, `None` standing for all of them.
    pub fn scopes(&self) -> Vec<Option<String>> {
        let named: Vec<Option<String>> = self
            .namespaces
            .iter()
            .map(|namespace| namespace.trim())
            .filter(|namespace| !namespace.is_empty())
            .map(|namespace| Some(namespace.to_owned()))
            .collect();
        if named.is_empty() { vec![None] } else { named }
    }
}

/// Configuration of the webhook ingress.
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Address the webhook, health and readiness endpoints listen on.
    #[arg(long, env = "TRAINHOOK_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// File holding a webhook secret, re-read on every request. Repeat the
    /// flag (or separate paths with commas) to accept two secrets during a
    /// rotation.
    #[arg(
        long = "webhook-secret-file",
        env = "TRAINHOOK_WEBHOOK_SECRET_FILE",
        value_delimiter = ','
    )]
    pub webhook_secret_files: Vec<PathBuf>,

    /// Webhook secret given as a value, for local use; prefer a file.
    #[arg(
        long = "webhook-secret",
        env = "TRAINHOOK_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub webhook_secret: Option<String>,

    /// Seconds a webhook secret stays valid after its file changes, so that
    /// Labelbox may go on signing with it while its setting is updated.
    #[arg(long, env = "TRAINHOOK_WEBHOOK_SECRET_OVERLAP", default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=MAX_OVERLAP_SECONDS))]
    pub webhook_secret_overlap_seconds: u64,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "TRAINHOOK_BODY_LIMIT", default_value_t = 1024 * 1024, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub body_limit: usize,

    /// Seconds a webhook waits for the Kubernetes API before responding with 503.
    #[arg(long, env = "TRAINHOOK_API_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub api_timeout_seconds: u64,
}

impl WebhookArgs {
    /// Returns every configured webhook secret source.
    pub fn secret_sources(&self) -> Vec<SecretSource> {
        let files = self
            .webhook_secret_files
            .iter()
            .cloned()
            .map(SecretSource::File);
        let value = self.webhook_secret.clone().map(SecretSource::Value);
        files.chain(value).collect()
    }

    /// Returns how long to wait for the Kubernetes API.
    pub fn api_timeout(&self) -> Duration {
        Duration::from_secs(self.api_timeout_seconds)
    }
}

/// Configuration of the controller.
#[derive(Debug, Clone, Args)]
pub struct ControllerArgs {
    /// Labelbox GraphQL endpoint for status updates.
    #[arg(long, env = "LABELBOX_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    pub labelbox_endpoint: String,

    /// File holding the Labelbox API key, re-read before every update.
    #[arg(long, env = "LABELBOX_API_KEY_FILE")]
    pub labelbox_api_key_file: Option<PathBuf>,

    /// Labelbox API key given as a value; prefer a file.
    #[arg(long, env = "LABELBOX_API_KEY", hide_env_values = true)]
    pub labelbox_api_key: Option<String>,

    /// Seconds one Labelbox request may take before it counts as failed.
    #[arg(long, env = "TRAINHOOK_LABELBOX_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub labelbox_timeout_seconds: u64,

    /// Seconds a deleted TrainingRun waits for Labelbox to acknowledge its
    /// FAILED status before it is let go anyway.
    #[arg(long, env = "TRAINHOOK_DELETION_REPORT_TIMEOUT", default_value_t = 120)]
    pub deletion_report_timeout_seconds: u64,

    /// Namespace of the Lease for leader election. When set, only the
    /// replica holding the Lease runs the controller; when empty, this
    /// process runs it unconditionally.
    #[arg(long, env = "TRAINHOOK_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// Name of the Lease for leader election.
    #[arg(long, env = "TRAINHOOK_LEASE_NAME", default_value = "trainhook")]
    pub lease_name: String,

    /// Seconds a leader holds the Lease without renewing it, at most a day.
    #[arg(long, env = "TRAINHOOK_LEASE_DURATION", default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..=86_400))]
    pub lease_duration_seconds: u64,
}

impl ControllerArgs {
    /// Returns the leader election settings, `None` when it is off.
    pub fn lease(&self) -> Option<LeaseConfig> {
        let namespace = self
            .lease_namespace
            .clone()
            .filter(|namespace| !namespace.is_empty())?;
        Some(LeaseConfig {
            namespace,
            name: self.lease_name.clone(),
            duration_seconds: self.lease_duration_seconds,
            identity: leader::default_identity(),
        })
    }

    /// Returns where the Labelbox API key comes from, if configured.
    pub fn api_key_source(&self) -> Option<SecretSource> {
        match (&self.labelbox_api_key_file, &self.labelbox_api_key) {
            (Some(path), _) => Some(SecretSource::File(path.clone())),
            (None, Some(value)) => Some(SecretSource::Value(value.clone())),
            (None, None) => None,
        }
    }
}
