//! Secrets read from files or values, re-read on every use so that a
//! rotated Kubernetes Secret applies without a restart.

use std::path::PathBuf;

use thiserror::Error;

/// Source of a secret.
#[derive(Clone)]
pub enum SecretSource {
    /// A file, typically a mounted Kubernetes Secret key, read on every use.
    File(PathBuf),
    /// A value given directly, such as from an environment variable.
    Value(String),
}

/// A secret file that could not be read.
#[derive(Debug, Error)]
#[error("failed to read secret file {path}: {error}")]
pub struct SecretReadError {
    path: PathBuf,
    error: std::io::Error,
}

impl SecretSource {
    /// Reads the secret's bytes.
    ///
    /// One trailing newline is dropped from a file, because `echo` and most
    /// editors add one that the secret typed into Labelbox does not have.
    pub async fn read(&self) -> Result<Vec<u8>, SecretReadError> {
        match self {
            SecretSource::Value(value) => Ok(value.clone().into_bytes()),
            SecretSource::File(path) => {
                let mut bytes = tokio::fs::read(path)
                    .await
                    .map_err(|error| SecretReadError {
                        path: path.clone(),
                        error,
                    })?;
                strip_one_newline(&mut bytes);
                Ok(bytes)
            }
        }
    }
}

impl std::fmt::Debug for SecretSource {
    // Never prints a secret value, so that a logged configuration is safe.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::File(path) => write!(f, "File({})", path.display()),
            SecretSource::Value(_) => f.write_str("Value(<redacted>)"),
        }
    }
}

/// Drops one trailing `\n` or `\r\n`.
pub fn strip_one_newline(bytes: &mut Vec<u8>) {
    if bytes.ends_with(b"\r\n") {
        bytes.truncate(bytes.len() - 2);
    } else if bytes.ends_with(b"\n") {
        bytes.truncate(bytes.len() - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_only_one_newline() {
        let mut bytes = b"secret\n\n".to_vec();
        strip_one_newline(&mut bytes);
        assert_eq!(bytes, b"secret\n");
    }

    #[test]
    fn strips_crlf() {
        let mut bytes = b"secret\r\n".to_vec();
        strip_one_newline(&mut bytes);
        assert_eq!(bytes, b"secret");
    }

    #[test]
    fn debug_hides_value() {
        let printed = format!("{:?}", SecretSource::Value("hunter2".into()));
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
