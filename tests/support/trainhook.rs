//! trainhook run as a real process, the way a user runs it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::cluster::eventually;

/// A running `trainhook run`.
pub struct Trainhook {
    child: Child,
    /// Base URL of the webhook, such as `http://127.0.0.1:PORT`.
    pub url: String,
    /// The webhook secret it accepts.
    pub secret: Vec<u8>,
    /// File the webhook secret is read from; a test may rewrite it.
    pub secret_file: PathBuf,
    log: PathBuf,
}

/// How to start trainhook.
pub struct Options<'a> {
    /// Kubeconfig trainhook uses.
    pub kubeconfig: &'a Path,
    /// Namespace it watches.
    pub namespace: &'a str,
    /// Labelbox endpoint (the stand-in's).
    pub labelbox_endpoint: &'a str,
    /// Labelbox API key.
    pub labelbox_api_key: &'a str,
    /// Subcommand: `run`, `webhook` or `controller`.
    pub subcommand: &'a str,
    /// More arguments.
    pub extra_args: Vec<String>,
}

impl Trainhook {
    /// Starts trainhook and waits until its webhook responds to `/healthz`.
    pub async fn start(options: Options<'_>) -> Trainhook {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap().keep();
        let secret_file = dir.join("webhook-secret");
        let secret = format!("secret-{}", rand::random::<u64>()).into_bytes();
        std::fs::write(&secret_file, &secret).unwrap();
        let log = dir.join("trainhook.log");

        let child = Command::new(env!("CARGO_BIN_EXE_trainhook"))
            .arg(options.subcommand)
            .args(["--namespace", options.namespace])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--log", "info,trainhook=debug"])
            .args(options.extra_args)
            .env("KUBECONFIG", options.kubeconfig)
            .env("TRAINHOOK_WEBHOOK_SECRET_FILE", &secret_file)
            .env("LABELBOX_ENDPOINT", options.labelbox_endpoint)
            .env("LABELBOX_API_KEY", options.labelbox_api_key)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("trainhook starts");

        let trainhook = Trainhook {
            child,
            url: format!("http://127.0.0.1:{port}"),
            secret,
            secret_file,
            log,
        };
        let health = format!("{}/healthz", trainhook.url);
        eventually(
            "trainhook to answer /healthz",
            Duration::from_secs(30),
            || async {
                reqwest::get(&health)
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            },
        )
        .await;
        trainhook
    }

    /// Signs `body` with the webhook secret.
    pub fn sign(&self, body: &[u8]) -> String {
        trainhook::signature::sign_sha1(&self.secret, body)
    }

    /// Sends a signed `POST /model_run`, returning the status and JSON body.
    pub async fn post_model_run(&self, body: &str) -> (u16, serde_json::Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/model_run", self.url))
            .header("X-Hub-Signature", self.sign(body.as_bytes()))
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Returns the process id, which is part of its leader election
    /// identity outside a pod.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Returns what trainhook logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Trainhook {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- trainhook log ({}) ---\n{}",
                self.log.display(),
                self.log()
            );
        }
    }
}

/// Returns a port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
