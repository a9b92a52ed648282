//! The Helm chart in `charts/trainhook` and the plain manifests in `deploy/`,
//! checked without a cluster: `helm lint --strict`, the values schema, what
//! the templates render, and that `deploy/` is what the chart renders.
//! tests/helm.rs installs the chart on the local cluster.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_yaml::Value;

use support::permissions::{lease_permissions, rule_permissions, str_list, watch_permissions};

const CHART: &str = "charts/trainhook";
/// Files of deploy/ that deploy/generate.sh writes.
const GENERATED: [&str; 3] = ["namespace.yaml", "crds.yaml", "trainhook.yaml"];

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Returns the folder of the binaries that localcluster/build.sh builds
/// (helm v4.3.2 and kubectl v1.37.2), building them on first use.
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let output = Command::new(repo_root().join("localcluster/build.sh"))
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("localcluster/build.sh runs");
        assert!(output.status.success(), "localcluster/build.sh failed");
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}

/// Runs helm in the repository root, with its cache and configuration in a
/// temporary folder so that no file of the user's helm is read or written.
fn helm(args: &[&str]) -> Output {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    let home = HOME.get_or_init(|| tempfile::tempdir().unwrap()).path();
    Command::new(bin_dir().join("helm"))
        .args(args)
        .current_dir(repo_root())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        // A kubeconfig that does not exist, so that no command can reach a
        // cluster by accident.
        .env("KUBECONFIG", home.join("no-kubeconfig"))
        .output()
        .expect("helm runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes `values` to a temporary file that lives as long as the result.
fn values_file(values: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::fs::write(file.path(), values).unwrap();
    file
}

/// Runs `helm template` of release `th` in namespace `apps` with `values`
/// and `extra` arguments.
fn template(values: &str, extra: &[&str]) -> Output {
    let file = values_file(values);
    let mut args = vec![
        "template",
        "th",
        CHART,
        "--namespace",
        "apps",
        "--values",
        file.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    helm(&args)
}

/// Renders the chart and returns its objects, failing on a helm error.
fn render(values: &str) -> Vec<Value> {
    render_with(values, &[])
}

fn render_with(values: &str, extra: &[&str]) -> Vec<Value> {
    let output = template(values, extra);
    assert!(
        output.status.success(),
        "helm template failed: {}\nvalues:\n{values}",
        text(&output.stderr)
    );
    parse_documents(&text(&output.stdout))
}

/// Parses a multi-document YAML stream, skipping empty documents.
fn parse_documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|document| Value::deserialize(document).unwrap())
        .filter(|value| !value.is_null())
        .collect()
}

/// Returns the objects of `kind`.
fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// Returns the one object of `kind` named `name`.
fn object<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<_> = of_kind(objects, kind)
        .into_iter()
        .filter(|o| o["metadata"]["name"] == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind} {name}, found {found:?}"
    );
    found[0]
}

fn container(objects: &[Value]) -> &Value {
    &object(objects, "Deployment", "th-trainhook")["spec"]["template"]["spec"]["containers"][0]
}

/// Returns the container's environment variable `name`: its `value`, or
/// `valueFrom` as YAML.
fn env(objects: &[Value], name: &str) -> Option<String> {
    let variables = container(objects)["env"].as_sequence().unwrap();
    let variable = variables.iter().find(|v| v["name"] == name)?;
    Some(match variable["value"].as_str() {
        Some(value) => value.to_owned(),
        None => serde_yaml::to_string(&variable["valueFrom"]).unwrap(),
    })
}

#[test]
fn deploy_matches_chart() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(repo_root().join("deploy/generate.sh"))
        .arg("--out")
        .arg(out.path())
        .env("HELM", bin_dir().join("helm"))
        .output()
        .expect("deploy/generate.sh runs");
    assert!(
        output.status.success(),
        "deploy/generate.sh failed: {}",
        text(&output.stderr)
    );

    for file in GENERATED {
        let rendered = std::fs::read_to_string(out.path().join(file)).unwrap();
        let checked_in =
            std::fs::read_to_string(repo_root().join("deploy").join(file)).unwrap_or_default();
        let first_difference = rendered
            .lines()
            .zip(checked_in.lines())
            .position(|(a, b)| a != b)
            .map(|index| index + 1)
            .unwrap_or(rendered.lines().count().min(checked_in.lines().count()) + 1);
        assert!(
            rendered == checked_in,
            "deploy/{file} differs from what charts/trainhook renders with deploy/values.yaml, \
             first at line {first_difference}; regenerate deploy/ with `make manifests`"
        );
    }
}

#[test]
fn kustomization_builds_every_file() {
    let output = Command::new(bin_dir().join("kubectl"))
        .args(["kustomize", "deploy"])
        .current_dir(repo_root())
        .output()
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl kustomize deploy failed: {}",
        text(&output.stderr)
    );
    let objects = parse_documents(&text(&output.stdout));

    let kinds: BTreeSet<String> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap().to_owned())
        .collect();
    for kind in [
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
    ] {
        assert!(
            kinds.contains(kind),
            "kubectl kustomize deploy has no {kind}: {kinds:?}"
        );
    }
    for o in &objects {
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/managed-by"], "kubectl",
            "{:?} {:?}",
            o["kind"], o["metadata"]["name"]
        );
    }
}

#[test]
fn chart_crds_are_crds_yaml() {
    let copy = repo_root().join(CHART).join("crds/crds.yaml");
    assert!(
        std::fs::read(&copy).unwrap() == std::fs::read(repo_root().join("crds/crds.yaml")).unwrap(),
        "{} differs from crds/crds.yaml; run `make crds`",
        copy.display()
    );

    let output = helm(&["show", "crds", CHART]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let from_helm = parse_documents(&text(&output.stdout));
    let source =
        parse_documents(&std::fs::read_to_string(repo_root().join("crds/crds.yaml")).unwrap());
    assert_eq!(
        from_helm.len(),
        2,
        "helm show crds printed {} CRDs",
        from_helm.len()
    );
    assert!(
        from_helm == source,
        "helm show crds differs from crds/crds.yaml"
    );
}

#[test]
fn lint_strict_passes() {
    let full = values_file(FULL_VALUES);
    let values_sets = [
        ("the default values", None),
        ("deploy/values.yaml", Some("deploy/values.yaml")),
        ("every option enabled", Some(full.path().to_str().unwrap())),
    ];
    for (what, values) in values_sets {
        let mut args = vec!["lint", "--strict", CHART];
        if let Some(values) = values {
            args.extend(["--values", values]);
        }
        let output = helm(&args);
        let stdout = text(&output.stdout);
        assert!(
            output.status.success(),
            "helm lint --strict with {what} failed:\n{stdout}{}",
            text(&output.stderr)
        );
        assert!(
            stdout.contains("0 chart(s) failed"),
            "lint with {what}: {stdout}"
        );
        assert!(!stdout.contains("[WARNING]"), "lint with {what}: {stdout}");
        assert!(!stdout.contains("[ERROR]"), "lint with {what}: {stdout}");
    }
}

/// Values that turn on every optional object.
const FULL_VALUES: &str = r#"
watchNamespaces: [ml, vision]
replicas: 2
webhook:
  bodyLimit: 2048
  secret:
    existingSecret: labelbox-webhook
    key: current
    previousKey: old
labelbox:
  endpoint: https://labelbox.example.com/_gql
  apiKey:
    existingSecret: labelbox-api
    key: token
log:
  level: debug
  format: json
podAnnotations:
  example.com/team: vision
ingress:
  enabled: true
  className: nginx
  host: trainhook.example.com
podDisruptionBudget:
  enabled: true
networkPolicy:
  enabled: true
  ingressFrom:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: ingress-nginx
trainingTemplates:
  - name: bounding-box
    namespace: vision
    spec:
      modelType: bounding_box
      jobTemplate:
        spec:
          template:
            spec:
              restartPolicy: Never
              containers:
                - name: train
                  image: registry.example.com/trainers/bounding-box:1.0
"#;

#[test]
fn bad_values_fail_with_message() {
    let cases = [
        ("replicas: two", "at '/replicas': got string, want integer"),
        (
            "log: {format: xml}",
            "at '/log/format': value must be one of 'text', 'json'",
        ),
        ("replica: 2", "additional properties 'replica' not allowed"),
        (
            "watchNamespaces: [Bad_Namespace]",
            "at '/watchNamespaces/0': 'Bad_Namespace' does not match pattern",
        ),
        (
            "webhook: {bodyLimit: 0}",
            "at '/webhook/bodyLimit': minimum: got 0, want 1",
        ),
        (
            "ingress: {enabled: true}",
            "ingress.host is required when ingress.enabled is true",
        ),
        (
            "webhook: {secret: {previousKey: old}}",
            "webhook.secret.previousKey is set, but the Secret the chart creates has no previous secret",
        ),
        (
            "webhook: {secret: {existingSecret: s, previousKey: webhook-secret}}",
            "webhook.secret.previousKey must differ from webhook.secret.key",
        ),
        (
            "watchNamespaces: [ml]\ntrainingTemplates: [{name: t, spec: {jobTemplate: {}}}]",
            "trainingTemplates[0] (t) is in namespace \"apps\", which trainhook does not watch",
        ),
        (
            "trainingTemplates: [{name: t, spec: {modelType: t}}]",
            "at '/trainingTemplates/0/spec': missing property 'jobTemplate'",
        ),
        (
            "serviceAccount: {create: false}",
            "serviceAccount.name is required when serviceAccount.create is false",
        ),
        (
            "image: {tag: 'bad tag!!'}",
            "at '/image/tag': 'bad tag!!' does not match pattern",
        ),
        (
            "fullnameOverride: Bad_Name",
            "at '/fullnameOverride': 'Bad_Name' does not match pattern",
        ),
        (
            "ingress: {enabled: true, host: not a host}",
            "at '/ingress/host': 'not a host' does not match pattern",
        ),
        (
            "podDisruptionBudget: {enabled: true, minAvailable: -3}",
            "at '/podDisruptionBudget/minAvailable': minimum: got -3, want 0",
        ),
        (
            "podDisruptionBudget: {enabled: true, maxUnavailable: half}",
            "at '/podDisruptionBudget/maxUnavailable': 'half' does not match pattern",
        ),
        (
            "serviceMonitor: {enabled: true}",
            "the cluster does not serve monitoring.coreos.com/v1 ServiceMonitor",
        ),
    ];
    for (values, message) in cases {
        let output = template(values, &[]);
        let stderr = text(&output.stderr);
        assert!(
            !output.status.success(),
            "helm template accepted the values {values:?}"
        );
        assert!(
            stderr.contains(message),
            "values {values:?}: expected {message:?} in:\n{stderr}"
        );
    }
}

#[test]
fn deployment_is_hardened() {
    let objects = render("");
    let deployment = object(&objects, "Deployment", "th-trainhook");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = container(&objects);

    assert_eq!(deployment["metadata"]["namespace"], "apps");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(pod["serviceAccountName"], "th-trainhook");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        container["image"],
        "registry.example.com/trainhook/trainhook:0.1.0"
    );
    assert_eq!(str_list(&container["args"]), ["run"]);

    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(str_list(&security["capabilities"]["drop"]), ["ALL"]);

    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"][kind][resource].is_string(),
                "resources.{kind}.{resource} is missing"
            );
        }
    }

    assert_eq!(container["ports"][0]["name"], "http");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "http");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "http");
}

#[test]
fn deployment_env_follows_values() {
    let defaults = render("");
    assert_eq!(env(&defaults, "TRAINHOOK_NAMESPACES"), None);
    assert_eq!(
        env(&defaults, "TRAINHOOK_LISTEN").as_deref(),
        Some("0.0.0.0:8080")
    );
    assert_eq!(
        env(&defaults, "TRAINHOOK_WEBHOOK_SECRET_FILE").as_deref(),
        Some("/etc/trainhook/webhook-secret/current")
    );
    assert_eq!(env(&defaults, "LABELBOX_API_KEY_FILE"), None);
    assert_eq!(
        env(&defaults, "LABELBOX_ENDPOINT").as_deref(),
        Some("https://api.labelbox.com/_gql")
    );
    assert_eq!(
        env(&defaults, "TRAINHOOK_BODY_LIMIT").as_deref(),
        Some("1048576")
    );
    assert_eq!(env(&defaults, "TRAINHOOK_LOG").as_deref(), Some("info"));
    assert_eq!(
        env(&defaults, "TRAINHOOK_LOG_FORMAT").as_deref(),
        Some("text")
    );
    assert!(
        env(&defaults, "POD_NAME")
            .unwrap()
            .contains("fieldPath: metadata.name")
    );
    assert!(
        env(&defaults, "TRAINHOOK_LEASE_NAMESPACE")
            .unwrap()
            .contains("fieldPath: metadata.namespace")
    );
    assert_eq!(
        env(&defaults, "TRAINHOOK_LEASE_NAME").as_deref(),
        Some("th-trainhook")
    );

    let full = render(FULL_VALUES);
    assert_eq!(
        env(&full, "TRAINHOOK_NAMESPACES").as_deref(),
        Some("ml,vision")
    );
    assert_eq!(
        env(&full, "TRAINHOOK_WEBHOOK_SECRET_FILE").as_deref(),
        Some("/etc/trainhook/webhook-secret/current,/etc/trainhook/webhook-secret/previous")
    );
    assert_eq!(
        env(&full, "LABELBOX_API_KEY_FILE").as_deref(),
        Some("/etc/trainhook/labelbox/api-key")
    );
    assert_eq!(
        env(&full, "LABELBOX_ENDPOINT").as_deref(),
        Some("https://labelbox.example.com/_gql")
    );
    assert_eq!(env(&full, "TRAINHOOK_BODY_LIMIT").as_deref(), Some("2048"));
    assert_eq!(env(&full, "TRAINHOOK_LOG").as_deref(), Some("debug"));
    assert_eq!(env(&full, "TRAINHOOK_LOG_FORMAT").as_deref(), Some("json"));

    let deployment = object(&full, "Deployment", "th-trainhook");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["annotations"]["example.com/team"],
        "vision"
    );
}

#[test]
fn secrets_mount_as_files() {
    let full = render(FULL_VALUES);
    assert!(
        of_kind(&full, "Secret").is_empty(),
        "existing Secrets were named, so the chart should create none"
    );
    let volumes =
        &object(&full, "Deployment", "th-trainhook")["spec"]["template"]["spec"]["volumes"];
    let webhook = &volumes[0]["secret"];
    assert_eq!(volumes[0]["name"], "webhook-secret");
    assert_eq!(webhook["secretName"], "labelbox-webhook");
    assert_eq!(webhook["items"][0]["key"], "current");
    assert_eq!(webhook["items"][0]["path"], "current");
    assert_eq!(webhook["items"][1]["key"], "old");
    assert_eq!(webhook["items"][1]["path"], "previous");
    let labelbox = &volumes[1]["secret"];
    assert_eq!(labelbox["secretName"], "labelbox-api");
    assert_eq!(labelbox["items"][0]["key"], "token");
    assert_eq!(labelbox["items"][0]["path"], "api-key");
    let mounts = &container(&full)["volumeMounts"];
    assert_eq!(mounts[0]["mountPath"], "/etc/trainhook/webhook-secret");
    assert_eq!(mounts[1]["mountPath"], "/etc/trainhook/labelbox");

    // Values become Secrets that the chart creates.
    let created = render(
        "webhook: {secret: {value: now, previousValue: before}}\nlabelbox: {apiKey: {value: key-1}}",
    );
    let webhook = object(&created, "Secret", "th-trainhook-webhook");
    assert_eq!(webhook["data"]["webhook-secret"], "bm93");
    assert_eq!(webhook["data"]["previous-webhook-secret"], "YmVmb3Jl");
    let labelbox = object(&created, "Secret", "th-trainhook-labelbox");
    assert_eq!(labelbox["data"]["api-key"], "a2V5LTE=");
    assert_eq!(
        env(&created, "TRAINHOOK_WEBHOOK_SECRET_FILE").as_deref(),
        Some("/etc/trainhook/webhook-secret/current,/etc/trainhook/webhook-secret/previous")
    );

    // Without a value, the chart generates a secret of 40 characters.
    let generated = render("");
    let secret = object(&generated, "Secret", "th-trainhook-webhook")["data"]["webhook-secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(secret.len(), 56, "base64 of 40 characters: {secret}");
}

#[test]
fn rbac_follows_watch_namespaces() {
    let all = render("");
    let cluster_role = object(&all, "ClusterRole", "th-trainhook");
    assert_eq!(
        rule_permissions(&cluster_role["rules"]),
        watch_permissions()
    );
    let binding = object(&all, "ClusterRoleBinding", "th-trainhook");
    assert_eq!(binding["roleRef"]["name"], "th-trainhook");
    assert_eq!(binding["subjects"][0]["name"], "th-trainhook");
    assert_eq!(binding["subjects"][0]["namespace"], "apps");
    assert_eq!(
        of_kind(&all, "Role").len(),
        1,
        "only the leader election Role"
    );

    let listed = render("watchNamespaces: [ml, vision]");
    assert!(of_kind(&listed, "ClusterRole").is_empty());
    assert!(of_kind(&listed, "ClusterRoleBinding").is_empty());
    for namespace in ["ml", "vision"] {
        let role = of_kind(&listed, "Role")
            .into_iter()
            .find(|r| r["metadata"]["namespace"] == namespace)
            .unwrap_or_else(|| panic!("no Role in {namespace}"));
        assert_eq!(role["metadata"]["name"], "th-trainhook");
        assert_eq!(rule_permissions(&role["rules"]), watch_permissions());
        let binding = of_kind(&listed, "RoleBinding")
            .into_iter()
            .find(|r| r["metadata"]["namespace"] == namespace)
            .unwrap_or_else(|| panic!("no RoleBinding in {namespace}"));
        assert_eq!(binding["roleRef"]["name"], "th-trainhook");
        assert_eq!(binding["subjects"][0]["namespace"], "apps");
    }

    for objects in [&all, &listed] {
        let lease_role = object(objects, "Role", "th-trainhook-leader-election");
        assert_eq!(lease_role["metadata"]["namespace"], "apps");
        assert_eq!(
            rule_permissions(&lease_role["rules"]),
            lease_permissions("th-trainhook")
        );
        let binding = object(objects, "RoleBinding", "th-trainhook-leader-election");
        assert_eq!(binding["subjects"][0]["name"], "th-trainhook");
    }
}

#[test]
fn optional_objects_only_when_enabled() {
    let defaults = render("");
    for kind in [
        "Ingress",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceMonitor",
        "TrainingTemplate",
    ] {
        assert!(
            of_kind(&defaults, kind).is_empty(),
            "{kind} rendered by default"
        );
    }

    let full = render_with(
        &format!("{FULL_VALUES}\nserviceMonitor: {{enabled: true}}"),
        &["--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"],
    );

    let ingress = object(&full, "Ingress", "th-trainhook");
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert_eq!(
        str_list(&ingress["spec"]["tls"][0]["hosts"]),
        ["trainhook.example.com"]
    );
    assert_eq!(ingress["spec"]["tls"][0]["secretName"], "th-trainhook-tls");
    let rule = &ingress["spec"]["rules"][0];
    assert_eq!(rule["host"], "trainhook.example.com");
    let paths: Vec<_> = rule["http"]["paths"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/models", "/model_run"]);

    let budget = object(&full, "PodDisruptionBudget", "th-trainhook");
    assert_eq!(budget["spec"]["minAvailable"], 1);

    let policy = object(&full, "NetworkPolicy", "th-trainhook");
    assert_eq!(str_list(&policy["spec"]["policyTypes"]), ["Ingress"]);
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], "http");

    let monitor = object(&full, "ServiceMonitor", "th-trainhook");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");

    let template = object(&full, "TrainingTemplate", "bounding-box");
    assert_eq!(template["metadata"]["namespace"], "vision");
    assert_eq!(template["spec"]["modelType"], "bounding_box");

    let service = object(&full, "Service", "th-trainhook");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
}

#[test]
fn notes_give_webhook_url() {
    let file = values_file(FULL_VALUES);
    let output = helm(&[
        "install",
        "th",
        CHART,
        "--namespace",
        "apps",
        "--dry-run=client",
        "--values",
        file.path().to_str().unwrap(),
    ]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        stdout.contains("URL:    https://trainhook.example.com"),
        "{stdout}"
    );
    assert!(stdout.contains("kubectl get trainingruns -A"), "{stdout}");
    assert!(stdout.contains("vision/bounding-box"), "{stdout}");

    let output = helm(&[
        "install",
        "th",
        CHART,
        "--namespace",
        "apps",
        "--dry-run=client",
    ]);
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("kubectl port-forward -n apps service/th-trainhook 8080:80"),
        "{stdout}"
    );
    assert!(
        stdout.contains("WARNING: no Labelbox API key is set"),
        "{stdout}"
    );
}
