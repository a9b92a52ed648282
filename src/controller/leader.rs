//! Leader election over a `coordination.k8s.io` Lease, so that of several
//! replicas exactly one runs the controller while all serve webhooks.

use std::future::Future;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::FIELD_MANAGER;
use crate::metrics::metrics;

/// Where the Lease lives and how long it holds.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Namespace of the Lease, usually trainhook's own.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// Seconds a leader holds the Lease without renewing it; a new leader
    /// takes over within about this time after the old one dies.
    pub duration_seconds: u64,
    /// Name of this replica in the Lease.
    pub identity: String,
}

/// Seconds before expiry at which the leader renews the Lease.
const RENEW_MARGIN_SECONDS: u64 = 5;

/// Runs `lead()` whenever this replica holds the Lease, and stops it as soon
/// as the Lease is lost. Returns when `lead()` returns on its own, such as
/// on a shutdown signal, or with an error when the election fails.
pub async fn run_while_leading<F, Fut>(
    client: Client,
    config: LeaseConfig,
    lead: F,
) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let manager = LeaseManagerBuilder::new(client, &config.name)
        .with_namespace(&config.namespace)
        .with_identity(&config.identity)
        .with_duration(config.duration_seconds)
        .with_grace(
            RENEW_MARGIN_SECONDS
                .min(config.duration_seconds.saturating_sub(1))
                .max(1),
        )
        .with_field_manager(FIELD_MANAGER)
        .build()
        .await
        .map_err(|error| {
            anyhow::anyhow!(
                "cannot set up Lease {}/{}: {error}",
                config.namespace,
                config.name
            )
        })?;
    let (mut leading, _task) = manager.watch().await;
    info!(lease = %format!("{}/{}", config.namespace, config.name), identity = %config.identity, "waiting to become the leader");

    loop {
        wait_for(&mut leading, true).await?;
        info!(identity = %config.identity, "became the leader; starting the controller");

        tokio::select! {
            result = lead() => return result,
            lost = wait_for(&mut leading, false) => {
                lost?;
                warn!(identity = %config.identity, "lost the Lease; stopping the controller");
                metrics().set_leader(false);
            }
        }
    }
}

/// Waits until the leadership state equals `wanted`.
async fn wait_for(leading: &mut watch::Receiver<bool>, wanted: bool) -> anyhow::Result<()> {
    while *leading.borrow_and_update() != wanted {
        leading.changed().await.map_err(|_| {
            anyhow::anyhow!("the leader election task stopped; see the errors logged before")
        })?;
    }
    Ok(())
}

/// Returns this replica's identity: the pod name when running in a pod,
/// else the host name and process id, so that two processes on one machine
/// never share an identity.
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME") {
        if !pod.is_empty() {
            return pod;
        }
    }
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "trainhook".to_owned());
    format!("{host}-{}", std::process::id())
}
