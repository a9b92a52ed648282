//! One local Kubernetes control plane per test binary, started by
//! `localcluster/up.sh` and stopped when the test process exits.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// A running local cluster.
pub struct Cluster {
    /// Folder of the cluster's files; removed when the test process exits.
    pub dir: PathBuf,
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// Folder of the built binaries (kubectl, helm, ...).
    pub bin_dir: PathBuf,
}

/// Returns the repository's root folder.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Returns the cluster of this test binary, starting it and installing the
/// CRDs on first use.
pub fn shared() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(Cluster::start)
}

/// Starts a cluster for one test alone, for tests that stop its parts. It
/// stops when the test process exits.
pub fn private() -> &'static Cluster {
    Box::leak(Box::new(Cluster::start()))
}

impl Cluster {
    fn start() -> Cluster {
        let bin_dir = build_binaries();
        let dir = tempfile::Builder::new()
            .prefix("trainhook-test-cluster-")
            .tempdir()
            .unwrap()
            .keep();
        std::fs::remove_dir(&dir).unwrap();

        // The cluster stops itself when this process exits, because statics
        // are never dropped.
        let output = Command::new(repo_root().join("localcluster/up.sh"))
            .arg("--dir")
            .arg(&dir)
            .arg("--stop-with-pid")
            .arg(std::process::id().to_string())
            .stderr(Stdio::inherit())
            .output()
            .expect("localcluster/up.sh runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "localcluster/up.sh failed: {stdout}"
        );

        let kubeconfig = stdout
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix("export KUBECONFIG="))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("no `export KUBECONFIG=` line in: {stdout}"));

        let cluster = Cluster {
            dir,
            kubeconfig,
            bin_dir,
        };
        cluster.install_crds();
        cluster
    }

    fn install_crds(&self) {
        let crds = repo_root().join("crds/crds.yaml");
        self.kubectl_ok(&["apply", "--server-side", "-f", crds.to_str().unwrap()]);
        // `kubectl wait` fails instead of waiting while a new CRD has no
        // conditions yet, so poll the Established condition instead.
        let start = Instant::now();
        for crd in [
            "trainingruns.trainhook.dev",
            "trainingtemplates.trainhook.dev",
        ] {
            while !self.crd_established(crd) {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "CRD {crd} not established after 60 s"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    fn crd_established(&self, crd: &str) -> bool {
        let json: serde_json::Value =
            serde_json::from_str(&self.kubectl_ok(&["get", "crd", crd, "-o", "json"])).unwrap();
        let conditions = json["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        conditions
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    }

    /// Stops one component, such as `kube-apiserver`.
    pub fn stop_component(&self, component: &str) {
        self.component("stop", component);
    }

    /// Starts a component stopped by [`Cluster::stop_component`] again.
    pub fn start_component(&self, component: &str) {
        self.component("start", component);
    }

    fn component(&self, action: &str, component: &str) {
        let status = Command::new(repo_root().join("localcluster/component.sh"))
            .arg("--dir")
            .arg(&self.dir)
            .args([action, component])
            .status()
            .expect("localcluster/component.sh runs");
        assert!(
            status.success(),
            "localcluster/component.sh {action} {component} failed"
        );
    }

    /// Runs the cluster's kubectl with the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(self.bin_dir.join("kubectl"))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.join("kubectl-cache"))
            .output()
            .expect("kubectl runs")
    }

    /// Runs kubectl and returns its stdout, failing the test on an error.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        assert!(
            output.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Applies a YAML document with kubectl.
    pub fn apply(&self, yaml: &str) {
        let mut child = Command::new(self.bin_dir.join("kubectl"))
            .args(["apply", "--server-side", "-f", "-"])
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.join("kubectl-cache"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(yaml.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "kubectl apply failed: {}\n{yaml}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Returns an admin client.
    pub async fn client(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
        Client::try_from(config).unwrap()
    }

    /// Creates a namespace with a unique name that starts with `prefix`.
    pub fn namespace(&self, prefix: &str) -> String {
        let suffix: u32 = rand::random::<u32>() % 1_000_000;
        let name = format!("{prefix}-{suffix:06}");
        self.kubectl_ok(&["create", "namespace", &name]);
        name
    }
}

/// Builds the cluster binaries if missing and returns their folder.
fn build_binaries() -> PathBuf {
    let output = Command::new(repo_root().join("localcluster/build.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("localcluster/build.sh runs");
    assert!(output.status.success(), "localcluster/build.sh failed");
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// Polls `check` every 200 ms until it returns `Some`, or fails the test
/// after `timeout` with `what` in the message.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
