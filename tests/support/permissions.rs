//! RBAC permissions as `kubectl auth can-i --list` prints them, and the set
//! that README.md documents for trainhook.

use std::collections::BTreeSet;

use serde_yaml::Value;

/// One permission: `resource.group` as `kubectl auth can-i --list` prints
/// it (or `url <path>` for a non-resource URL), the allowed resource names
/// (empty for all) and one verb.
pub type Permission = (String, String, String);

/// Returns how `kubectl auth can-i --list` names a resource of an API
/// group: `jobs.batch`, `pods`, or `trainingruns.trainhook.dev/status` for
/// a subresource.
pub fn can_i_name(resource: &str, group: &str) -> String {
    let (resource, subresource) = match resource.split_once('/') {
        Some((resource, subresource)) => (resource, format!("/{subresource}")),
        None => (resource, String::new()),
    };
    if group.is_empty() {
        format!("{resource}{subresource}")
    } else {
        format!("{resource}.{group}{subresource}")
    }
}

/// Returns the strings of a YAML sequence, or none when it is absent.
pub fn str_list(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| {
            items
                .iter()
                .map(|item| item.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Expands RBAC rules into one permission per verb.
pub fn rule_permissions(rules: &Value) -> BTreeSet<Permission> {
    let mut set = BTreeSet::new();
    for rule in rules.as_sequence().unwrap() {
        let names = str_list(&rule["resourceNames"]).join(" ");
        for group in str_list(&rule["apiGroups"]) {
            for resource in str_list(&rule["resources"]) {
                let resource = can_i_name(&resource, &group);
                for verb in str_list(&rule["verbs"]) {
                    set.insert((resource.clone(), names.clone(), verb));
                }
            }
        }
    }
    set
}

/// Builds permissions from `(resource, resource names, verbs)` rows.
pub fn expected(rows: &[(&str, &str, &[&str])]) -> BTreeSet<Permission> {
    rows.iter()
        .flat_map(|(resource, names, verbs)| {
            verbs
                .iter()
                .map(|verb| (resource.to_string(), names.to_string(), verb.to_string()))
        })
        .collect()
}

/// Returns what trainhook may do in a watched namespace, as README.md
/// documents it.
pub fn watch_permissions() -> BTreeSet<Permission> {
    expected(&[
        (
            "trainingruns.trainhook.dev",
            "",
            &["get", "list", "watch", "create", "patch"],
        ),
        ("trainingruns.trainhook.dev/status", "", &["patch"]),
        ("trainingtemplates.trainhook.dev", "", &["get", "list"]),
        (
            "jobs.batch",
            "",
            &["get", "list", "watch", "create", "patch"],
        ),
        ("pods", "", &["list", "watch"]),
        ("events.events.k8s.io", "", &["create", "patch"]),
    ])
}

/// Returns what trainhook may do in the release namespace for leader
/// election, on the Lease named `lease`.
pub fn lease_permissions(lease: &str) -> BTreeSet<Permission> {
    expected(&[
        ("leases.coordination.k8s.io", "", &["create"]),
        ("leases.coordination.k8s.io", lease, &["get", "patch"]),
    ])
}
