//! Signatures of Labelbox webhook calls.
//!
//! Labelbox sends `X-Hub-Signature: sha1=<hex>`, the HMAC-SHA1 of the raw
//! request body keyed by the secret set on its model training settings page.
//! Its general webhooks may also send `X-Hub-Signature-256: sha256=<hex>`,
//! which is accepted when present and never required.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// Header carrying the HMAC-SHA1 signature.
pub const SHA1_HEADER: &str = "X-Hub-Signature";

/// Header carrying the HMAC-SHA256 signature.
pub const SHA256_HEADER: &str = "X-Hub-Signature-256";

/// Signs `body` as Labelbox does and returns the `X-Hub-Signature` value.
pub fn sign_sha1(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Signs `body` and returns an `X-Hub-Signature-256` value.
pub fn sign_sha256(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The signature headers of one request, as received.
#[derive(Debug, Default, Clone, Copy)]
pub struct SignatureHeaders<'a> {
    /// Value of `X-Hub-Signature`.
    pub sha1: Option<&'a str>,
    /// Value of `X-Hub-Signature-256`.
    pub sha256: Option<&'a str>,
}

/// Reason a request's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Neither header was sent.
    #[error(
        "missing signature: send the X-Hub-Signature header, `sha1=` followed by the hex HMAC-SHA1 of the body keyed by the webhook secret"
    )]
    Missing,

    /// A header was not of the form `<algorithm>=<hex>` with a MAC of the
    /// hash's length.
    #[error(
        "malformed {header} header: expected `{prefix}=` followed by the hex digits of one MAC"
    )]
    Malformed {
        /// Name of the header.
        header: &'static str,
        /// Expected algorithm prefix.
        prefix: &'static str,
    },

    /// A header was sent more than once, so it is unclear which value holds.
    #[error("{header} was sent more than once; send one value")]
    Repeated {
        /// Name of the header.
        header: &'static str,
    },

    /// No configured secret produced the signature.
    #[error(
        "invalid signature: {header} does not match the body; check that the secret in Labelbox equals trainhook's webhook secret"
    )]
    Mismatch {
        /// Name of the header that did not match.
        header: &'static str,
    },
}

/// Verifies a request's signature over its raw body against every secret
/// currently valid, and succeeds when one of them matches.
///
/// Every header that is present must match, so an attacker cannot pass with a
/// valid SHA-256 beside a forged SHA-1. The comparison of each MAC runs in
/// constant time.
pub fn verify(
    headers: SignatureHeaders<'_>,
    body: &[u8],
    secrets: &[Vec<u8>],
) -> Result<(), SignatureError> {
    if headers.sha1.is_none() && headers.sha256.is_none() {
        return Err(SignatureError::Missing);
    }

    if let Some(value) = headers.sha1 {
        let expected = decode(value, SHA1_HEADER, "sha1", 20)?;
        let matches = |secret: &Vec<u8>| {
            let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("any key length");
            mac.update(body);
            mac.verify_slice(&expected).is_ok()
        };
        if !secrets.iter().any(matches) {
            return Err(SignatureError::Mismatch {
                header: SHA1_HEADER,
            });
        }
    }

    if let Some(value) = headers.sha256 {
        let expected = decode(value, SHA256_HEADER, "sha256", 32)?;
        let matches = |secret: &Vec<u8>| {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
            mac.update(body);
            mac.verify_slice(&expected).is_ok()
        };
        if !secrets.iter().any(matches) {
            return Err(SignatureError::Mismatch {
                header: SHA256_HEADER,
            });
        }
    }

    Ok(())
}

/// Decodes `<prefix>=<hex>` into the MAC bytes, which must be `len` bytes
/// long, the output size of the hash.
fn decode(
    value: &str,
    header: &'static str,
    prefix: &'static str,
    len: usize,
) -> Result<Vec<u8>, SignatureError> {
    let malformed = SignatureError::Malformed { header, prefix };
    let hex_digits = value
        .trim()
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('='))
        .ok_or_else(|| malformed.clone())?;

    let mac = hex::decode(hex_digits).map_err(|_| malformed.clone())?;
    if mac.len() != len {
        return Err(malformed);
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"webhook-secret";

    fn sha1_only(value: &str) -> SignatureHeaders<'_> {
        SignatureHeaders {
            sha1: Some(value),
            sha256: None,
        }
    }

    #[test]
    fn empty_body_signature_matches_known_vector() {
        // HMAC-SHA1 of zero bytes keyed by "key", computed with Python's
        // hmac module: the signature Labelbox sends on `GET /models`.
        assert_eq!(
            sign_sha1(b"key", b""),
            "sha1=f42bb0eeb018ebbd4597ae7213711ec60760843f"
        );
    }

    #[test]
    fn own_signature_verifies() {
        let body = br#"{"modelType":"ner","modelRunId":"x"}"#;
        let signature = sign_sha1(SECRET, body);
        assert_eq!(
            verify(sha1_only(&signature), body, &[SECRET.to_vec()]),
            Ok(())
        );
    }

    #[test]
    fn missing_headers_are_rejected() {
        let result = verify(SignatureHeaders::default(), b"{}", &[SECRET.to_vec()]);
        assert_eq!(result, Err(SignatureError::Missing));
    }

    #[test]
    fn changed_body_is_rejected() {
        let signature = sign_sha1(SECRET, b"{\"a\": 1}");
        let result = verify(sha1_only(&signature), b"{\"a\":1}", &[SECRET.to_vec()]);
        assert_eq!(
            result,
            Err(SignatureError::Mismatch {
                header: SHA1_HEADER
            })
        );
    }

    #[test]
    fn secret_with_trailing_newline_is_rejected() {
        let signature = sign_sha1(b"webhook-secret\n", b"{}");
        let result = verify(sha1_only(&signature), b"{}", &[SECRET.to_vec()]);
        assert_eq!(
            result,
            Err(SignatureError::Mismatch {
                header: SHA1_HEADER
            })
        );
    }

    #[test]
    fn either_of_two_secrets_verifies() {
        let signature = sign_sha1(b"new-secret", b"{}");
        let secrets = [SECRET.to_vec(), b"new-secret".to_vec()];
        assert_eq!(verify(sha1_only(&signature), b"{}", &secrets), Ok(()));
    }

    #[test]
    fn sha256_alone_verifies() {
        let signature = sign_sha256(SECRET, b"{}");
        let headers = SignatureHeaders {
            sha1: None,
            sha256: Some(&signature),
        };
        assert_eq!(verify(headers, b"{}", &[SECRET.to_vec()]), Ok(()));
    }

    #[test]
    fn forged_sha1_beside_valid_sha256_is_rejected() {
        let sha256 = sign_sha256(SECRET, b"{}");
        let sha1 = sign_sha1(b"wrong", b"{}");
        let headers = SignatureHeaders {
            sha1: Some(&sha1),
            sha256: Some(&sha256),
        };
        let result = verify(headers, b"{}", &[SECRET.to_vec()]);
        assert_eq!(
            result,
            Err(SignatureError::Mismatch {
                header: SHA1_HEADER
            })
        );
    }

    #[test]
    fn malformed_values_are_rejected() {
        let short_mac = format!("sha1={}", "ab".repeat(19));
        let long_mac = format!("sha1={}", "ab".repeat(21));
        let sha256_mac = sign_sha256(SECRET, b"{}").replace("sha256=", "sha1=");
        for value in [
            "",
            "sha1",
            "sha1=",
            "md5=00",
            "sha1=zz",
            "sha1=abc",
            &short_mac,
            &long_mac,
            &sha256_mac,
        ] {
            let result = verify(sha1_only(value), b"{}", &[SECRET.to_vec()]);
            assert_eq!(
                result,
                Err(SignatureError::Malformed {
                    header: SHA1_HEADER,
                    prefix: "sha1"
                }),
                "{value:?}"
            );
        }
    }
}
