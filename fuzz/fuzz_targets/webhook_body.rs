//! Fuzzes the path of every `POST /model_run` body before it reaches
//! Kubernetes: `signature::verify` over the raw bytes, then
//! `model_run::parse`.
//!
//! The body is either raw bytes or a JSON object built from fuzzed fields,
//! with fuzzed key order, whitespace and `\uXXXX` escapes, so that the
//! accepting branch of `parse` is reached as often as the rejecting ones.
//! Checked properties:
//! - `verify` never panics, and accepts a header only if the header carries
//!   the MAC of the body;
//! - a body signed with the secret verifies through `X-Hub-Signature`,
//!   `X-Hub-Signature-256` and both, also when a second secret is configured;
//! - a body signed with another secret never verifies, unless the two
//!   secrets are the same HMAC key (see `same_hmac_key`);
//! - `parse` never panics, every accepted request has non-blank `modelType`
//!   and `modelRunId` of at most `MAX_ID_LEN` bytes that name a valid run,
//!   and a built body is accepted exactly when its fields are valid, with
//!   the decoded strings.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use trainhook::resources::naming;
use trainhook::signature::{self, SignatureError, SignatureHeaders};
use trainhook::webhook::model_run::{self, MAX_ID_LEN, ModelRunRequest};

/// Block size of SHA-1 and SHA-256 in bytes, which HMAC pads its key to.
const HMAC_BLOCK_LEN: usize = 64;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    secret: &'a [u8],
    other_secret: &'a [u8],
    sha1_header: Option<&'a str>,
    sha256_header: Option<&'a str>,
    body: Body<'a>,
}

#[derive(Arbitrary, Debug)]
enum Body<'a> {
    Raw(&'a [u8]),
    Built(Fields<'a>),
}

#[derive(Arbitrary, Debug)]
struct Fields<'a> {
    model_type: FieldValue<'a>,
    model_run_id: FieldValue<'a>,
    model_id: FieldValue<'a>,
    organization_id: FieldValue<'a>,
    extra: Option<(&'a str, FieldValue<'a>)>,
    reverse_order: bool,
    whitespace: Whitespace,
    escape_non_ascii: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum FieldValue<'a> {
    Absent,
    Null,
    Text(&'a str),
    Number(i64),
    Bool(bool),
}

/// JSON whitespace written around every token of a built body.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Whitespace {
    None,
    Space,
    Tab,
    Newline,
    CarriageReturnNewline,
    Mixed,
}

impl Whitespace {
    fn as_str(self) -> &'static str {
        match self {
            Whitespace::None => "",
            Whitespace::Space => " ",
            Whitespace::Tab => "\t",
            Whitespace::Newline => "\n",
            Whitespace::CarriageReturnNewline => "\r\n",
            Whitespace::Mixed => " \t\r\n ",
        }
    }
}

const FIELD_NAMES: [&str; 4] = ["modelType", "modelRunId", "modelId", "organizationId"];

impl Fields<'_> {
    /// Writes the fields as a JSON object; absent fields are left out.
    fn to_json(&self) -> Vec<u8> {
        let mut members: Vec<(&str, FieldValue)> = FIELD_NAMES
            .into_iter()
            .zip([
                self.model_type,
                self.model_run_id,
                self.model_id,
                self.organization_id,
            ])
            .collect();
        // An extra key that repeats a known one would make the expected
        // result depend on which duplicate serde_json keeps.
        if let Some((key, value)) = self.extra
            && !FIELD_NAMES.contains(&key)
        {
            members.push((key, value));
        }
        if self.reverse_order {
            members.reverse();
        }

        let space = self.whitespace.as_str();
        let written: Vec<String> = members
            .iter()
            .filter_map(|(key, value)| {
                let value = match value {
                    FieldValue::Absent => return None,
                    FieldValue::Null => "null".to_owned(),
                    FieldValue::Text(text) => self.json_string(text),
                    FieldValue::Number(number) => number.to_string(),
                    FieldValue::Bool(flag) => flag.to_string(),
                };
                Some(format!(
                    "{space}{}{space}:{space}{value}{space}",
                    self.json_string(key)
                ))
            })
            .collect();
        format!("{space}{{{}}}{space}", written.join(",")).into_bytes()
    }

    /// Writes a JSON string, with every non-ASCII character as a `\uXXXX`
    /// escape (a surrogate pair above U+FFFF) when `escape_non_ascii` is set.
    fn json_string(&self, text: &str) -> String {
        let plain = serde_json::to_string(text).expect("a str always serializes");
        if !self.escape_non_ascii {
            return plain;
        }
        let mut escaped = String::with_capacity(plain.len());
        for c in plain.chars() {
            if c.is_ascii() {
                escaped.push(c);
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    escaped.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
        escaped
    }

    /// Returns what `parse` must return for this body: the request, or
    /// `None` for a rejection.
    fn expected(&self) -> Option<ModelRunRequest> {
        Some(ModelRunRequest {
            model_type: expected_field(self.model_type)??,
            model_run_id: expected_field(self.model_run_id)??,
            model_id: expected_field(self.model_id)?,
            organization_id: expected_field(self.organization_id)?,
        })
    }
}

/// Returns `None` when the value makes the body invalid, and otherwise the
/// string it yields: `None` for absent, null and blank values.
fn expected_field(value: FieldValue) -> Option<Option<String>> {
    match value {
        FieldValue::Absent | FieldValue::Null => Some(None),
        FieldValue::Text(text) if text.trim().is_empty() => Some(None),
        FieldValue::Text(text) if text.len() > MAX_ID_LEN => None,
        FieldValue::Text(text) => Some(Some(text.to_owned())),
        FieldValue::Number(_) | FieldValue::Bool(_) => None,
    }
}

/// Returns the key that HMAC actually uses (RFC 2104): a key longer than the
/// block is replaced by its hash, and the result is padded with zero bytes.
fn hmac_block_key<D: Digest>(key: &[u8]) -> Vec<u8> {
    let mut block = if key.len() > HMAC_BLOCK_LEN {
        D::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    block.resize(HMAC_BLOCK_LEN, 0);
    block
}

/// Tells whether two secrets give the same HMAC for every message, such as
/// `abc` and `abc\0`. Such a pair cannot be told apart by any signature.
fn same_hmac_key<D: Digest>(a: &[u8], b: &[u8]) -> bool {
    hmac_block_key::<D>(a) == hmac_block_key::<D>(b)
}

fn check_signatures(input: &Input, body: &[u8]) {
    let secrets = [input.secret.to_vec()];
    let sha1 = signature::sign_sha1(input.secret, body);
    let sha256 = signature::sign_sha256(input.secret, body);

    // Fuzzed header values: never a panic, and never accepted without the MAC.
    let fuzzed = SignatureHeaders {
        sha1: input.sha1_header,
        sha256: input.sha256_header,
    };
    if signature::verify(fuzzed, body, &secrets).is_ok() {
        assert!(fuzzed.sha1.is_some() || fuzzed.sha256.is_some());
        if let Some(value) = fuzzed.sha1 {
            let mac = sha1.trim_start_matches("sha1=");
            assert!(value.to_ascii_lowercase().contains(mac), "{value:?}");
        }
        if let Some(value) = fuzzed.sha256 {
            let mac = sha256.trim_start_matches("sha256=");
            assert!(value.to_ascii_lowercase().contains(mac), "{value:?}");
        }
    }

    // Signed with the secret: accepted through either header and both.
    let sha1_only = SignatureHeaders {
        sha1: Some(&sha1),
        sha256: None,
    };
    let sha256_only = SignatureHeaders {
        sha1: None,
        sha256: Some(&sha256),
    };
    let both = SignatureHeaders {
        sha1: Some(&sha1),
        sha256: Some(&sha256),
    };
    let rotation = [input.other_secret.to_vec(), input.secret.to_vec()];
    for headers in [sha1_only, sha256_only, both] {
        assert_eq!(signature::verify(headers, body, &secrets), Ok(()));
        assert_eq!(signature::verify(headers, body, &rotation), Ok(()));
    }

    // Signed with another secret: rejected, alone or beside a valid header.
    let other_sha1 = signature::sign_sha1(input.other_secret, body);
    let other_sha256 = signature::sign_sha256(input.other_secret, body);
    let sha1_mismatch = Err(SignatureError::Mismatch {
        header: signature::SHA1_HEADER,
    });
    let sha256_mismatch = Err(SignatureError::Mismatch {
        header: signature::SHA256_HEADER,
    });
    if !same_hmac_key::<Sha1>(input.secret, input.other_secret) {
        let forged = SignatureHeaders {
            sha1: Some(&other_sha1),
            sha256: None,
        };
        assert_eq!(signature::verify(forged, body, &secrets), sha1_mismatch);
        let forged_beside_valid = SignatureHeaders {
            sha1: Some(&other_sha1),
            sha256: Some(&sha256),
        };
        assert_eq!(
            signature::verify(forged_beside_valid, body, &secrets),
            sha1_mismatch
        );
    }
    if !same_hmac_key::<Sha256>(input.secret, input.other_secret) {
        let forged = SignatureHeaders {
            sha1: None,
            sha256: Some(&other_sha256),
        };
        assert_eq!(signature::verify(forged, body, &secrets), sha256_mismatch);
        let forged_beside_valid = SignatureHeaders {
            sha1: Some(&sha1),
            sha256: Some(&other_sha256),
        };
        assert_eq!(
            signature::verify(forged_beside_valid, body, &secrets),
            sha256_mismatch
        );
    }
}

fn check_parse(body: &[u8], built: Option<&Fields>) {
    let result = model_run::parse(body);

    if let Ok(request) = &result {
        for (name, id) in [
            ("modelType", &request.model_type),
            ("modelRunId", &request.model_run_id),
        ] {
            assert!(!id.trim().is_empty(), "accepted a blank {name}: {id:?}");
            assert!(id.len() <= MAX_ID_LEN, "accepted a {name} of {} bytes", id.len());
        }
        for optional in [&request.model_id, &request.organization_id]
            .into_iter()
            .flatten()
        {
            assert!(!optional.trim().is_empty(), "{optional:?}");
            assert!(optional.len() <= MAX_ID_LEN);
        }
        let name = naming::run_name(&request.model_run_id);
        assert!(naming::is_valid_name(&name), "{name:?}");
    }

    if let Some(fields) = built {
        let expected = fields.expected();
        assert_eq!(result.as_ref().ok(), expected.as_ref(), "{result:?}");
    }
}

fuzz_target!(|input: Input| {
    let (body, built) = match &input.body {
        Body::Raw(bytes) => (bytes.to_vec(), None),
        Body::Built(fields) => (fields.to_json(), Some(fields)),
    };

    check_signatures(&input, &body);
    check_parse(&body, built);
});
