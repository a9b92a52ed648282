//! The webhook secrets valid now: each configured secret as it reads now,
//! plus, for a configurable overlap, the value it had before it changed.
//!
//! Labelbox and the Kubernetes Secret are changed by hand, one after the
//! other, so for a while Labelbox may still sign with the old secret after
//! the mounted file already contains the new one.
//!
//! A source that becomes unreadable or empty revokes every value it had at
//! once, so that removing a leaked secret takes effect without a restart.
//! Kubernetes replaces the files of a mounted Secret atomically, so a
//! rotation never passes through that state.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::secrets::SecretSource;

/// Secrets read from their sources on every call, with recent past values.
pub struct SecretRing {
    sources: Vec<SecretSource>,
    overlap: Duration,
    seen: Mutex<Vec<Seen>>,
}

/// What one source held: its current value and values it held before,
/// each with the time it stops being accepted.
#[derive(Default)]
struct Seen {
    current: Option<Vec<u8>>,
    previous: Vec<(Vec<u8>, Instant)>,
}

impl SecretRing {
    /// Creates a ring over `sources` that keeps a replaced value valid for
    /// `overlap`.
    pub fn new(sources: Vec<SecretSource>, overlap: Duration) -> Self {
        let seen = sources.iter().map(|_| Seen::default()).collect();
        Self {
            sources,
            overlap,
            seen: Mutex::new(seen),
        }
    }

    /// Returns every secret valid now. Errors list the sources that could
    /// not be read, when none could.
    pub async fn valid(&self) -> Result<Vec<Vec<u8>>, String> {
        let mut read = Vec::with_capacity(self.sources.len());
        for source in &self.sources {
            read.push(
                source
                    .read()
                    .await
                    .map_err(|error| error.to_string())
                    .and_then(|secret| {
                        if secret.is_empty() {
                            Err(format!("{source:?} is empty"))
                        } else {
                            Ok(secret)
                        }
                    }),
            );
        }

        let now = Instant::now();
        let mut seen = self
            .seen
            .lock()
            .expect("no thread panics while holding the lock");
        let mut valid = Vec::new();
        let mut errors = Vec::new();
        for (index, result) in read.into_iter().enumerate() {
            let entry = &mut seen[index];
            match result {
                Ok(secret) => {
                    if entry
                        .current
                        .as_ref()
                        .is_some_and(|current| *current != secret)
                    {
                        info!(source = ?self.sources[index], overlap = ?self.overlap, "webhook secret changed; the previous one stays valid for the overlap");
                        let replaced = entry.current.take().expect("checked above");
                        entry.previous.push((replaced, now + self.overlap));
                    }
                    entry.current = Some(secret);
                }
                Err(error) => {
                    if entry.current.is_some() || !entry.previous.is_empty() {
                        warn!(%error, "a webhook secret became unreadable; its earlier values are no longer accepted");
                    } else {
                        warn!(%error, "skipped an unreadable webhook secret");
                    }
                    entry.current = None;
                    entry.previous.clear();
                    errors.push(error);
                }
            }
            entry.previous.retain(|(_, until)| *until > now);
            valid.extend(entry.current.iter().cloned());
            valid.extend(entry.previous.iter().map(|(secret, _)| secret.clone()));
        }

        if valid.is_empty() {
            let reason = if errors.is_empty() {
                "none is configured".to_owned()
            } else {
                errors.join("; ")
            };
            return Err(reason);
        }
        Ok(valid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(content: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    #[tokio::test]
    async fn changed_secret_keeps_old_during_overlap() {
        let (_dir, path) = file_with("old");
        let ring = SecretRing::new(
            vec![SecretSource::File(path.clone())],
            Duration::from_secs(60),
        );
        assert_eq!(ring.valid().await.unwrap(), [b"old".to_vec()]);

        std::fs::write(&path, "new").unwrap();
        assert_eq!(
            ring.valid().await.unwrap(),
            [b"new".to_vec(), b"old".to_vec()]
        );
    }

    #[tokio::test]
    async fn old_secret_expires_after_overlap() {
        let (_dir, path) = file_with("old");
        let ring = SecretRing::new(vec![SecretSource::File(path.clone())], Duration::ZERO);
        ring.valid().await.unwrap();

        std::fs::write(&path, "new").unwrap();
        assert_eq!(ring.valid().await.unwrap(), [b"new".to_vec()]);
    }

    #[tokio::test]
    async fn removed_secret_is_revoked_at_once() {
        let (_dir, path) = file_with("leaked");
        let ring = SecretRing::new(
            vec![SecretSource::File(path.clone())],
            Duration::from_secs(60),
        );
        ring.valid().await.unwrap();

        std::fs::remove_file(&path).unwrap();
        assert!(ring.valid().await.is_err());

        std::fs::write(&path, "").unwrap();
        assert!(ring.valid().await.is_err());

        std::fs::write(&path, "fresh").unwrap();
        assert_eq!(ring.valid().await.unwrap(), [b"fresh".to_vec()]);
    }

    #[tokio::test]
    async fn unreadable_file_is_tolerated_beside_readable() {
        let (_dir, path) = file_with("good");
        let missing = SecretSource::File("/nonexistent/trainhook-secret".into());
        let ring = SecretRing::new(vec![missing, SecretSource::File(path)], Duration::ZERO);
        assert_eq!(ring.valid().await.unwrap(), [b"good".to_vec()]);
    }

    #[tokio::test]
    async fn no_readable_secret_names_the_failure() {
        let missing = SecretSource::File("/nonexistent/trainhook-secret".into());
        let ring = SecretRing::new(vec![missing], Duration::ZERO);
        let error = ring.valid().await.unwrap_err();
        assert!(error.contains("/nonexistent/trainhook-secret"), "{error}");
    }
}
