//! The chart and the plain manifests on the local cluster. `helm install`
//! creates the CRDs and a ServiceAccount under which trainhook, run as a
//! process with that account's token, takes a signed webhook to COMPLETE.
//! The account may do exactly the documented set and nothing more.
//! `helm upgrade` and `helm uninstall` work, and uninstalling keeps the
//! CRDs and the TrainingRuns. `kubectl apply --server-side -k deploy/`
//! installs the same without Helm.
//!
//! The local cluster runs no Deployment controller and no container, so the
//! chart's Deployment creates no pods; trainhook runs on the host instead.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use kube::Api;
use serde::Deserialize;
use serde_json::{Value, json};

use support::cluster::{self, Cluster, eventually, repo_root};
use support::permissions::{Permission, lease_permissions, rule_permissions, watch_permissions};
use support::standin::Standin;
use support::trainhook::{Options, Trainhook};
use support::world::model_run_body;
use trainhook::resources::{RunPhase, TrainingRun};

const RELEASE: &str = "th";
/// Name of the release's objects: the release name and the chart name.
const FULLNAME: &str = "th-trainhook";
const API_KEY: &str = "test-api-key";
const RUN_TIMEOUT: Duration = Duration::from_secs(90);
const CRDS: [&str; 2] = [
    "trainingruns.trainhook.dev",
    "trainingtemplates.trainhook.dev",
];

/// Serializes the tests that change cluster-scoped objects: the release
/// test deletes the CRDs, which the plain manifests apply too.
static CLUSTER_SCOPED: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the cluster's helm (v4.3.2) with the admin kubeconfig, keeping its
/// cache, configuration and release data in the cluster's folder.
fn helm(cluster: &Cluster, args: &[&str]) -> Output {
    let home = cluster.dir.join("helm");
    Command::new(cluster.bin_dir.join("helm"))
        .args(args)
        .current_dir(repo_root())
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("KUBECACHEDIR", cluster.dir.join("kubectl-cache"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("helm runs")
}

/// Runs helm and returns its stdout, failing the test on an error.
fn helm_ok(cluster: &Cluster, args: &[&str]) -> String {
    let output = helm(cluster, args);
    assert!(
        output.status.success(),
        "helm {} failed: {}",
        args.join(" "),
        text(&output.stderr)
    );
    text(&output.stdout)
}

fn kubectl_json(cluster: &Cluster, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["-o", "json"]);
    serde_json::from_str(&cluster.kubectl_ok(&args)).unwrap()
}

/// Returns whether `kubectl get ARGS` finds the object.
fn exists(cluster: &Cluster, args: &[&str]) -> bool {
    let mut get = vec!["get"];
    get.extend_from_slice(args);
    let output = cluster.kubectl(&get);
    let stderr = text(&output.stderr);
    assert!(
        output.status.success() || stderr.contains("NotFound"),
        "kubectl {} failed: {stderr}",
        get.join(" ")
    );
    output.status.success()
}

async fn wait_for_crds(cluster: &Cluster) {
    for crd in CRDS {
        eventually(
            &format!("CRD {crd} to be established"),
            Duration::from_secs(60),
            || async {
                let output = cluster.kubectl(&["get", "crd", crd, "-o", "json"]);
                let crd: Value = serde_json::from_slice(&output.stdout).ok()?;
                crd["status"]["conditions"]
                    .as_array()?
                    .iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
                    .then_some(())
            },
        )
        .await;
    }
}

/// Returns the environment variable `name` of the release's Deployment.
fn deployment_env(cluster: &Cluster, namespace: &str, name: &str) -> Option<String> {
    let deployment = kubectl_json(cluster, &["get", "deployment", FULLNAME, "-n", namespace]);
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|variable| variable["name"] == name)?["value"]
        .as_str()
        .map(str::to_owned)
}

/// Returns the webhook secret that the chart generated.
fn webhook_secret(cluster: &Cluster, namespace: &str) -> String {
    let secret = kubectl_json(
        cluster,
        &[
            "get",
            "secret",
            &format!("{FULLNAME}-webhook"),
            "-n",
            namespace,
        ],
    );
    secret["data"]["webhook-secret"]
        .as_str()
        .expect("the Secret has the key webhook-secret")
        .to_owned()
}

/// Writes a kubeconfig that reaches the cluster as the ServiceAccount
/// `name` in `namespace`, with a token from `kubectl create token`, and
/// returns its path.
fn service_account_kubeconfig(cluster: &Cluster, namespace: &str, name: &str) -> PathBuf {
    let token = cluster.kubectl_ok(&["create", "token", name, "-n", namespace, "--duration", "1h"]);
    let admin = kubectl_json(cluster, &["config", "view", "--raw", "--minify"]);
    let admin_cluster = &admin["clusters"][0]["cluster"];
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {
            "server": admin_cluster["server"],
            "certificate-authority-data": admin_cluster["certificate-authority-data"],
        }}],
        "users": [{"name": name, "user": {"token": token.trim()}}],
        "contexts": [{"name": name, "context": {"cluster": "local", "user": name}}],
        "current-context": name,
    });
    let path = cluster.dir.join(format!("kubeconfig-{namespace}-{name}"));
    std::fs::write(&path, serde_json::to_string_pretty(&kubeconfig).unwrap()).unwrap();
    path
}

/// Runs kubectl with another kubeconfig.
fn kubectl_as(cluster: &Cluster, kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(cluster.bin_dir.join("kubectl"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env(
            "KUBECACHEDIR",
            cluster.dir.join("kubectl-cache-service-account"),
        )
        .output()
        .expect("kubectl runs")
}

/// Returns what `user` may do in `namespace`, from the table that
/// `kubectl auth can-i --list` prints (it has no JSON output).
fn can_i_list(cluster: &Cluster, user: &str, namespace: &str) -> BTreeSet<Permission> {
    let table = cluster.kubectl_ok(&["auth", "can-i", "--list", "--as", user, "-n", namespace]);
    let mut lines = table.lines();
    let header = lines.next().expect("a header line");
    let column = |title: &str| {
        header
            .find(title)
            .unwrap_or_else(|| panic!("no column {title:?} in {header:?}"))
    };
    let (urls_at, names_at, verbs_at) = (
        column("Non-Resource URLs"),
        column("Resource Names"),
        column("Verbs"),
    );
    let cell = |line: &str, from: usize, to: usize| -> String {
        let to = to.min(line.len());
        line.get(from.min(to)..to)
            .unwrap_or("")
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned()
    };

    let mut permissions = BTreeSet::new();
    for line in lines.filter(|line| !line.trim().is_empty()) {
        let resource = cell(line, 0, urls_at);
        let urls = cell(line, urls_at, names_at);
        let names = cell(line, names_at, verbs_at);
        let verbs = cell(line, verbs_at, usize::MAX);
        let subject = if resource.is_empty() {
            format!("url {urls}")
        } else {
            resource
        };
        for verb in verbs.split_whitespace() {
            permissions.insert((subject.clone(), names.clone(), verb.to_owned()));
        }
    }
    permissions
}

/// Returns what the ServiceAccount `namespace/name` may do in `scope`
/// beyond what every service account may do there, which an account
/// without bindings in the same namespace shows.
fn granted(cluster: &Cluster, namespace: &str, name: &str, scope: &str) -> BTreeSet<Permission> {
    let account = can_i_list(
        cluster,
        &format!("system:serviceaccount:{namespace}:{name}"),
        scope,
    );
    let baseline = can_i_list(
        cluster,
        &format!("system:serviceaccount:{namespace}:account-without-bindings"),
        scope,
    );
    account.difference(&baseline).cloned().collect()
}

/// Returns the permissions of the Role `name` in `namespace` that the
/// release's manifest declares.
fn declared_role(
    manifest: &[serde_yaml::Value],
    namespace: &str,
    name: &str,
) -> BTreeSet<Permission> {
    let role = manifest
        .iter()
        .find(|o| {
            o["kind"] == "Role"
                && o["metadata"]["namespace"] == namespace
                && o["metadata"]["name"] == name
        })
        .unwrap_or_else(|| panic!("the release declares no Role {namespace}/{name}"));
    rule_permissions(&role["rules"])
}

/// Values for the release: trainhook watches `watched`, which gets a
/// `bounding_box` template whose pod succeeds after 3 seconds.
fn release_values(watched: &str, labelbox_endpoint: &str) -> String {
    json!({
        "watchNamespaces": [watched],
        "labelbox": {"endpoint": labelbox_endpoint, "apiKey": {"value": API_KEY}},
        "trainingTemplates": [{
            "name": "bounding-box",
            "namespace": watched,
            "spec": {
                "modelType": "bounding_box",
                "jobTemplate": {"spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"annotations": {
                            "localcluster.trainhook.dev/run-seconds": "3",
                            "localcluster.trainhook.dev/termination-message": r#"{"weights": "s3://models/boxes.pt"}"#
                        }},
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "train", "image": "example.invalid/trainer:1"}]
                        }
                    }
                }}
            }
        }]
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn release_runs_trainhook_with_least_privilege() {
    let _cluster_scoped = CLUSTER_SCOPED.lock().await;
    let cluster = cluster::shared();

    // cluster::shared() installed the CRDs; remove them so that the release
    // has to create them from the chart.
    let mut delete = vec!["delete", "crd", "--wait=true", "--ignore-not-found"];
    delete.extend(CRDS);
    cluster.kubectl_ok(&delete);

    let namespace = cluster.namespace("helm-release");
    let watched = cluster.namespace("helm-watched");
    let unrelated = cluster.namespace("helm-unrelated");
    let standin = Standin::start(API_KEY).await;
    let values = cluster.dir.join(format!("values-{namespace}.yaml"));
    std::fs::write(&values, release_values(&watched, &standin.status_url())).unwrap();
    let values = values.to_str().unwrap();

    // Install.
    let notes = helm_ok(
        cluster,
        &[
            "install",
            RELEASE,
            "charts/trainhook",
            "--namespace",
            &namespace,
            "--values",
            values,
        ],
    );
    assert!(notes.contains("kubectl get trainingruns -A"), "{notes}");
    assert!(
        notes.contains(&format!(
            "kubectl port-forward -n {namespace} service/{FULLNAME}"
        )),
        "{notes}"
    );
    wait_for_crds(cluster).await;
    assert_eq!(
        deployment_env(cluster, &namespace, "TRAINHOOK_NAMESPACES").as_deref(),
        Some(watched.as_str())
    );
    assert_eq!(
        deployment_env(cluster, &namespace, "TRAINHOOK_LOG").as_deref(),
        Some("info")
    );
    assert!(exists(
        cluster,
        &["trainingtemplate", "bounding-box", "-n", &watched]
    ));
    let generated_secret = webhook_secret(cluster, &namespace);
    assert_eq!(generated_secret.len(), 56, "base64 of 40 characters");

    // The ServiceAccount's permissions, beyond those every account has.
    let manifest: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&helm_ok(
        cluster,
        &["get", "manifest", RELEASE, "--namespace", &namespace],
    ))
    .map(|document| serde_yaml::Value::deserialize(document).unwrap())
    .filter(|value| !value.is_null())
    .collect();
    let in_watched = granted(cluster, &namespace, FULLNAME, &watched);
    assert_eq!(in_watched, watch_permissions());
    assert_eq!(in_watched, declared_role(&manifest, &watched, FULLNAME));
    let in_release = granted(cluster, &namespace, FULLNAME, &namespace);
    assert_eq!(in_release, lease_permissions(FULLNAME));
    assert_eq!(
        in_release,
        declared_role(
            &manifest,
            &namespace,
            &format!("{FULLNAME}-leader-election")
        )
    );
    let elsewhere = granted(cluster, &namespace, FULLNAME, &unrelated);
    assert!(
        elsewhere.is_empty(),
        "granted in {unrelated}: {elsewhere:?}"
    );

    // trainhook as that ServiceAccount takes a webhook to COMPLETE.
    let kubeconfig = service_account_kubeconfig(cluster, &namespace, FULLNAME);
    let whoami = kubectl_as(cluster, &kubeconfig, &["auth", "whoami", "-o", "json"]);
    let whoami: Value = serde_json::from_slice(&whoami.stdout).unwrap_or_default();
    assert_eq!(
        whoami["status"]["userInfo"]["username"],
        format!("system:serviceaccount:{namespace}:{FULLNAME}")
    );
    let mut trainhook = Trainhook::start(Options {
        kubeconfig: &kubeconfig,
        namespace: &watched,
        labelbox_endpoint: &standin.status_url(),
        labelbox_api_key: API_KEY,
        subcommand: "run",
        extra_args: ["--lease-namespace", &namespace, "--lease-name", FULLNAME]
            .map(str::to_owned)
            .to_vec(),
    })
    .await;

    let model_run_id = "7c1a9e42-3f0b-4d5e-9a61-0b2c8d4e6f13";
    let (code, answer) = trainhook
        .post_model_run(&model_run_body(model_run_id))
        .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["namespace"], watched.as_str());

    let runs: Api<TrainingRun> = Api::namespaced(cluster.client().await, &watched);
    let run = eventually(
        &format!("TrainingRun {model_run_id} to finish"),
        RUN_TIMEOUT,
        || async {
            let run = runs.get_opt(model_run_id).await.ok().flatten()?;
            let phase = run.status.as_ref()?.phase?;
            phase.is_finished().then_some(run)
        },
    )
    .await;
    let status = run.status.unwrap();
    assert_eq!(
        status.phase,
        Some(RunPhase::Succeeded),
        "{:?}",
        status.message
    );

    let statuses = eventually(
        "three statuses acknowledged by the stand-in",
        RUN_TIMEOUT,
        || async {
            let statuses = standin.accepted_statuses(model_run_id).await;
            (statuses.len() >= 3).then_some(statuses)
        },
    )
    .await;
    let names: Vec<_> = statuses.iter().map(|s| s["status"].clone()).collect();
    assert_eq!(names, ["PREPARING_DATA", "TRAINING_MODEL", "COMPLETE"]);
    eventually("COMPLETE to be acknowledged", RUN_TIMEOUT, || async {
        let run = runs.get(model_run_id).await.ok()?;
        (run.status?.labelbox.last_acknowledged?.as_str() == "COMPLETE").then_some(())
    })
    .await;

    let lease = kubectl_json(cluster, &["get", "lease", FULLNAME, "-n", &namespace]);
    let holder = lease["spec"]["holderIdentity"].as_str().unwrap_or_default();
    assert!(!holder.is_empty(), "nobody holds the Lease: {lease}");

    let events = kubectl_json(cluster, &["get", "events.events.k8s.io", "-n", &watched]);
    let reasons: BTreeSet<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["regarding"]["name"] == model_run_id)
        .filter_map(|event| event["reason"].as_str())
        .collect();
    for reason in ["JobCreated", "RunSucceeded"] {
        assert!(reasons.contains(reason), "no {reason} Event: {reasons:?}");
    }
    let log = trainhook.log();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "trainhook was denied a request:\n{log}"
    );
    trainhook.kill();

    // Upgrade with a changed value.
    helm_ok(
        cluster,
        &[
            "upgrade",
            RELEASE,
            "charts/trainhook",
            "--namespace",
            &namespace,
            "--values",
            values,
            "--set",
            "log.level=debug",
        ],
    );
    assert_eq!(
        deployment_env(cluster, &namespace, "TRAINHOOK_LOG").as_deref(),
        Some("debug")
    );
    assert_eq!(
        webhook_secret(cluster, &namespace),
        generated_secret,
        "the upgrade replaced the generated webhook secret that Labelbox has"
    );

    // Uninstall keeps the CRDs and the runs.
    helm_ok(cluster, &["uninstall", RELEASE, "--namespace", &namespace]);
    let webhook_secret_name = format!("{FULLNAME}-webhook");
    let lease_role = format!("{FULLNAME}-leader-election");
    for (kind, name, in_namespace) in [
        ("deployment", FULLNAME, namespace.as_str()),
        ("service", FULLNAME, namespace.as_str()),
        ("serviceaccount", FULLNAME, namespace.as_str()),
        ("secret", webhook_secret_name.as_str(), namespace.as_str()),
        ("role", lease_role.as_str(), namespace.as_str()),
        ("rolebinding", lease_role.as_str(), namespace.as_str()),
        ("role", FULLNAME, watched.as_str()),
        ("rolebinding", FULLNAME, watched.as_str()),
        ("trainingtemplate", "bounding-box", watched.as_str()),
    ] {
        assert!(
            !exists(cluster, &[kind, name, "-n", in_namespace]),
            "{kind} {in_namespace}/{name} is left after helm uninstall"
        );
    }
    for crd in CRDS {
        assert!(
            exists(cluster, &["crd", crd]),
            "helm uninstall removed CRD {crd}"
        );
    }
    assert!(
        exists(cluster, &["trainingrun", model_run_id, "-n", &watched]),
        "helm uninstall removed TrainingRun {model_run_id}"
    );

    // The account's token no longer reads the runs. The API server answers
    // Forbidden because the RoleBinding is gone, and Unauthorized once its
    // cache of ServiceAccounts no longer has the deleted one.
    let output = kubectl_as(
        cluster,
        &kubeconfig,
        &["get", "trainingruns", "-n", &watched],
    );
    let stderr = text(&output.stderr);
    assert!(
        !output.status.success(),
        "the token still reads runs after helm uninstall"
    );
    assert!(
        stderr.contains("Forbidden") || stderr.contains("Unauthorized"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_values_fail_install() {
    let cluster = cluster::shared();
    let namespace = cluster.namespace("helm-invalid");

    let cases = [
        ("replicas=two", "at '/replicas': got string, want integer"),
        (
            "log.format=xml",
            "at '/log/format': value must be one of 'text', 'json'",
        ),
    ];
    for (value, message) in cases {
        let output = helm(
            cluster,
            &[
                "install",
                "invalid",
                "charts/trainhook",
                "--namespace",
                &namespace,
                "--set",
                value,
            ],
        );
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "helm install accepted {value}");
        assert!(
            stderr.contains(message),
            "{value}: expected {message:?} in:\n{stderr}"
        );
    }
    let releases = helm_ok(cluster, &["list", "--namespace", &namespace, "-q"]);
    assert_eq!(releases.trim(), "", "a failed install left a release");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_manifests_apply_with_kustomize() {
    let _cluster_scoped = CLUSTER_SCOPED.lock().await;
    let cluster = cluster::shared();
    let deploy = repo_root().join("deploy");

    cluster.kubectl_ok(&["apply", "--server-side", "-k", deploy.to_str().unwrap()]);
    wait_for_crds(cluster).await;

    let deployment = kubectl_json(
        cluster,
        &["get", "deployment", "trainhook", "-n", "trainhook"],
    );
    assert_eq!(
        deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "kubectl"
    );
    let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "TRAINHOOK_LOG_FORMAT" && v["value"] == "json"),
        "{env}"
    );

    // Watching every namespace: the watch permissions hold anywhere.
    let anywhere = cluster.namespace("plain-anywhere");
    assert_eq!(
        granted(cluster, "trainhook", "trainhook", &anywhere),
        watch_permissions()
    );
    let mut in_own = watch_permissions();
    in_own.extend(lease_permissions("trainhook"));
    assert_eq!(
        granted(cluster, "trainhook", "trainhook", "trainhook"),
        in_own
    );
}
