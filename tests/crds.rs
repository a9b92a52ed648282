//! The checked-in CRDs are what the code generates.

#[test]
fn checked_in_crds_match_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/crds.yaml");
    let checked_in = std::fs::read_to_string(path).expect("crds/crds.yaml exists");
    assert!(
        checked_in == trainhook::resources::crds_yaml(),
        "crds/crds.yaml differs from the code; regenerate it with `make crds`"
    );
}

#[test]
fn run_crd_has_printer_columns() {
    use kube::CustomResourceExt;

    let crd = trainhook::resources::TrainingRun::crd();
    let version = &crd.spec.versions[0];
    let columns: Vec<&str> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|column| column.name.as_str())
        .collect();
    assert_eq!(
        columns,
        ["Model Type", "Model Run", "Phase", "Labelbox", "Age"]
    );
    assert_eq!(
        crd.spec.names.short_names.as_deref(),
        Some(&["tr".to_owned()][..])
    );
}
