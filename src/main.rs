//! The `trainhook` command; see `trainhook --help`.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use kube::Client;
use tracing::info;

use trainhook::catalog::Catalog;
use trainhook::cli::{Cli, Command, ControllerArgs, ScopeArgs, WebhookArgs};
use trainhook::controller::{self, Context, leader};
use trainhook::labelbox::LabelboxClient;
use trainhook::secrets::SecretSource;
use trainhook::webhook::secret_ring::SecretRing;
use trainhook::webhook::{self, WebhookState};
use trainhook::{resources, signature, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds => {
            print!("{}", resources::crds_yaml());
            Ok(())
        }
        Command::Sign { secret_file } => sign(SecretSource::File(secret_file[0].clone())).await,
        command => {
            telemetry::init(cli.log_format, &cli.log)?;
            serve(command).await
        }
    }
}

/// Prints the `X-Hub-Signature` value for the body on stdin.
async fn sign(secret: SecretSource) -> anyhow::Result<()> {
    let secret = secret.read().await?;
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .context("failed to read the body from stdin")?;
    println!("{}", signature::sign_sha1(&secret, &body));
    Ok(())
}

/// Runs the long-lived parts that `command` selects.
async fn serve(command: Command) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("cannot configure a Kubernetes client; set KUBECONFIG or run inside a cluster")?;
    info!(version = env!("CARGO_PKG_VERSION"), "trainhook starting");

    match command {
        Command::Run {
            scope,
            webhook,
            controller,
        } => {
            let state = webhook_state(&client, &scope, &webhook)?;
            let context = controller_context(&client, &controller)?;
            tokio::select! {
                result = webhook::serve(webhook.listen, client.clone(), Some(state)) => result,
                result = run_controller(&client, &scope, &controller, context) => result,
            }
        }
        Command::Webhook { scope, webhook } => {
            let state = webhook_state(&client, &scope, &webhook)?;
            webhook::serve(webhook.listen, client, Some(state)).await
        }
        Command::Controller {
            scope,
            controller,
            listen,
        } => {
            let context = controller_context(&client, &controller)?;
            tokio::select! {
                result = webhook::serve(listen, client.clone(), None) => result,
                result = run_controller(&client, &scope, &controller, context) => result,
            }
        }
        Command::Crds | Command::Sign { .. } => unreachable!("handled before a client is made"),
    }
}

/// Runs the controller, under leader election when a Lease is configured.
async fn run_controller(
    client: &Client,
    scope: &ScopeArgs,
    args: &ControllerArgs,
    context: Arc<Context>,
) -> anyhow::Result<()> {
    let run = || controller::run(client.clone(), scope.scopes(), context.clone());
    match args.lease() {
        Some(lease) => leader::run_while_leading(client.clone(), lease, run).await,
        None => run().await,
    }
}

fn webhook_state(
    client: &Client,
    scope: &ScopeArgs,
    args: &WebhookArgs,
) -> anyhow::Result<WebhookState> {
    let secrets = args.secret_sources();
    anyhow::ensure!(
        !secrets.is_empty(),
        "no webhook secret is configured; pass --webhook-secret-file FILE (or set TRAINHOOK_WEBHOOK_SECRET_FILE) with the secret set in Labelbox"
    );
    Ok(WebhookState {
        client: client.clone(),
        catalog: Catalog::new(client.clone(), scope.scopes()),
        secrets: SecretRing::new(
            secrets,
            Duration::from_secs(args.webhook_secret_overlap_seconds),
        ),
        body_limit: args.body_limit,
        api_timeout: args.api_timeout(),
    })
}

fn controller_context(client: &Client, args: &ControllerArgs) -> anyhow::Result<Arc<Context>> {
    let api_key = args.api_key_source().context(
        "no Labelbox API key is configured; pass --labelbox-api-key-file FILE (or set LABELBOX_API_KEY_FILE or LABELBOX_API_KEY)",
    )?;
    let timeout = Duration::from_secs(args.labelbox_timeout_seconds);
    let labelbox = LabelboxClient::new(args.labelbox_endpoint.clone(), api_key, timeout)?;
    info!(endpoint = %labelbox.endpoint(), "reporting to Labelbox");

    let deletion_timeout = Duration::from_secs(args.deletion_report_timeout_seconds);
    Ok(Arc::new(Context::new(
        client.clone(),
        labelbox,
        deletion_timeout,
    )))
}
