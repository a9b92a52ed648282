//! Fuzzes `naming::run_name`, the rule that turns a model run id into the
//! name of its TrainingRun and Job.
//!
//! Checked properties: it never panics; the name is a DNS-1123 label of at
//! most 63 characters, by `is_valid_name` and by an independent check; the
//! same id always gives the same name; an id that is already valid is its
//! own name; any other id gets `-` and the first 10 hex digits of its
//! SHA-256 at the end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use trainhook::resources::naming::{MAX_NAME_LEN, is_valid_name, run_name};

/// Tells whether `name` matches `[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?`,
/// written apart from `is_valid_name` so that a bug there is caught too.
fn is_dns1123_label(name: &str) -> bool {
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let (Some(first), Some(last)) = (name.chars().next(), name.chars().last()) else {
        return false;
    };
    name.len() <= 63
        && alphanumeric(first)
        && alphanumeric(last)
        && name.chars().all(|c| alphanumeric(c) || c == '-')
}

fuzz_target!(|id: &str| {
    let name = run_name(id);

    assert!(is_valid_name(&name), "{id:?} gave {name:?}");
    assert!(is_dns1123_label(&name), "{id:?} gave {name:?}");
    assert!(name.len() <= MAX_NAME_LEN, "{id:?} gave {name:?}");
    assert!(name.len() <= 63, "{id:?} gave {name:?}");
    assert_eq!(name, run_name(id), "not stable for {id:?}");

    if is_valid_name(id) {
        assert_eq!(name, id, "a valid id must be its own name");
    } else {
        let hash = hex::encode(Sha256::digest(id.as_bytes()));
        let suffix = format!("-{}", &hash[..10]);
        assert!(name.ends_with(&suffix), "{id:?} gave {name:?}");
    }
});
