//! The fixed rule that turns a Labelbox model run id into a TrainingRun name.
//!
//! The same id always maps to the same name, so that a repeated or concurrent
//! delivery of one model run finds the run that exists instead of starting a
//! second training. The name is also the Job's name, and a Job's name becomes
//! the value of its pods' `batch.kubernetes.io/job-name` label, so it must be
//! a valid label value: at most 63 characters of `[a-z0-9-]`, starting and
//! ending with an alphanumeric character.

use sha2::{Digest, Sha256};

/// Longest name the rule produces: the limit of a label value.
pub const MAX_NAME_LEN: usize = 63;

/// Hex digits of the id's SHA-256 appended when the id is not a valid name
/// as it stands. Forty bits keep accidental collisions out of reach for any
/// realistic number of runs in one namespace.
const HASH_LEN: usize = 10;

/// Derives the TrainingRun name for a model run id.
///
/// An id that is already a valid name is used as it is, so the usual
/// lowercase UUID of Labelbox reads the same in `kubectl get`. Any other id
/// is lowercased, its invalid characters become `-`, it is cut to fit, and
/// a hash of the raw id is appended so that ids differing only in case or in
/// the replaced characters still get different names.
pub fn run_name(model_run_id: &str) -> String {
    if is_valid_name(model_run_id) {
        return model_run_id.to_owned();
    }

    let sanitized: String = model_run_id
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();

    let hash = hex::encode(Sha256::digest(model_run_id.as_bytes()));
    let room = MAX_NAME_LEN - HASH_LEN - 1;
    let stem: String = sanitized.chars().take(room).collect();
    let stem = stem.trim_matches('-');

    if stem.is_empty() {
        format!("run-{}", &hash[..HASH_LEN])
    } else {
        format!("{stem}-{}", &hash[..HASH_LEN])
    }
}

/// Tells whether `name` is a valid DNS-1123 label, the form of a TrainingRun
/// name that can also name its Job.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let valid_char = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';

    !bytes.is_empty()
        && bytes.len() <= MAX_NAME_LEN
        && bytes.iter().all(valid_char)
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_uuid_is_kept() {
        let id = "9e3f331a-551b-0e24-6ab5-f69855df64ea";
        assert_eq!(run_name(id), id);
    }

    #[test]
    fn upper_case_id_gets_hash_suffix() {
        let name = run_name("9E3F331A-551B");
        assert!(name.starts_with("9e3f331a-551b-"), "{name}");
        assert!(is_valid_name(&name), "{name}");
        assert_ne!(name, run_name("9e3f331a-551b"));
    }

    #[test]
    fn ids_differing_in_replaced_chars_differ() {
        let underscore = run_name("model_run.1");
        let dot = run_name("model.run_1");
        assert!(is_valid_name(&underscore), "{underscore}");
        assert!(is_valid_name(&dot), "{dot}");
        assert_ne!(underscore, dot);
    }

    #[test]
    fn long_id_is_cut_to_a_label() {
        let id = "a".repeat(200);
        let name = run_name(&id);
        assert_eq!(name.len(), MAX_NAME_LEN);
        assert!(is_valid_name(&name), "{name}");
        assert_ne!(name, run_name(&"a".repeat(199)));
    }

    #[test]
    fn id_of_only_symbols_gets_prefix() {
        let name = run_name("___");
        assert!(name.starts_with("run-"), "{name}");
        assert!(is_valid_name(&name), "{name}");
    }

    #[test]
    fn stem_never_ends_with_dash() {
        // Cutting at the room limit can leave a dash at the end of the stem.
        let id = format!("{}_tail", "b".repeat(51));
        let name = run_name(&id);
        assert!(is_valid_name(&name), "{name}");
        assert!(!name.contains("--"), "{name}");
    }

    #[test]
    fn derivation_is_stable() {
        let id = "Org_Model.Run/42";
        assert_eq!(run_name(id), run_name(id));
    }

    #[test]
    fn names_of_odd_ids_are_valid() {
        let ids = [
            "",
            "-",
            "a-",
            "-a",
            "ÄÖÜ",
            "run id with spaces",
            "x".repeat(64).as_str(),
        ]
        .map(str::to_owned);
        for id in ids {
            let name = run_name(&id);
            assert!(is_valid_name(&name), "id {id:?} gave {name:?}");
        }
    }
}
