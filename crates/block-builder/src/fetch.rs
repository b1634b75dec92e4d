//! Chunk fetching: which store serves a chunk, and getting its bytes with bounded
//! retries (transient errors only, exponential backoff with jitter) and a per-request
//! timeout. A missing object is an answer ([`Fetched::Missing`]), not an error.

use std::path::Path as FsPath;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use cortex_index::DAY_MS;
use cortex_index::schema::SchemaConfig;
use storage::{StorageError, StoreLocation};

/// The result of fetching one chunk object.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// The object's bytes.
    Found(Bytes),
    /// The store has no such object.
    Missing,
}

/// A chunk could not be fetched even after retries; the plan fails (and can be retried
/// as a whole), it never turns into a silent gap.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Transient errors or timeouts outlasted the retries.
    #[error("fetching chunk {object}: gave up after {attempts} attempts: {last}")]
    Exhausted {
        /// Object path.
        object: String,
        /// Attempts made.
        attempts: usize,
        /// Last error.
        last: String,
    },
    /// A permanent error (permission, bad path, local I/O).
    #[error("fetching chunk {object}: {reason}")]
    Permanent {
        /// Object path.
        object: String,
        /// The error.
        reason: String,
    },
}

/// Retry and timeout settings for chunk reads.
#[derive(Debug, Clone, Copy)]
pub struct FetchPolicy {
    /// Retries after the first attempt.
    pub retries: usize,
    /// Timeout of one request.
    pub timeout: Duration,
    /// First backoff delay.
    pub min_backoff: Duration,
    /// Largest backoff delay.
    pub max_backoff: Duration,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            retries: 5,
            timeout: Duration::from_secs(60),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Chunk stores by Cortex object-store type, selected per chunk through the schema.
#[derive(Debug, Clone)]
pub struct ChunkStores {
    default: StoreLocation,
    by_type: Vec<(String, StoreLocation)>,
    schema: Option<SchemaConfig>,
}

impl ChunkStores {
    /// One store for every chunk, or per period type once [`Self::with_store`] adds
    /// more and a schema is given.
    pub fn new(default: StoreLocation, schema: Option<SchemaConfig>) -> Self {
        Self {
            default,
            by_type: Vec::new(),
            schema,
        }
    }

    /// Serves periods whose `object_store` (or `store`) is `store_type` from `location`.
    pub fn with_store(mut self, store_type: &str, location: StoreLocation) -> Self {
        self.by_type.push((store_type.to_owned(), location));
        self
    }

    /// The store holding a chunk that starts at `from_ms`. The period is chosen with
    /// `from_i <= day < from_{i+1}` on the chunk's own start, as Cortex's composite
    /// store does when writing (fixes W14's off-by-one on the first day of a period).
    pub fn for_chunk(&self, from_ms: i64) -> &StoreLocation {
        if self.by_type.is_empty() {
            return &self.default;
        }
        let store_type = self
            .schema
            .as_ref()
            .and_then(|s| s.config_for_day(from_ms.div_euclid(DAY_MS)))
            .map(|p| p.chunk_store());
        store_type
            .and_then(|t| self.by_type.iter().find(|(n, _)| n == t))
            .map_or(&self.default, |(_, l)| l)
    }

    /// Every store (the default first).
    pub fn locations(&self) -> impl Iterator<Item = &StoreLocation> {
        std::iter::once(&self.default).chain(self.by_type.iter().map(|(_, l)| l))
    }

    /// True when every store is a local directory (chunks are read synchronously on
    /// the worker threads, without an async hop per object).
    pub fn all_local(&self) -> bool {
        self.default.local_root().is_some()
            && self.by_type.iter().all(|(_, l)| l.local_root().is_some())
    }
}

/// Whether a chunk object path is safe to join under a root (no `..`, no absolute).
pub fn safe_object_path(path: &str) -> bool {
    !path.starts_with('/')
        && path
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
}

/// Reads a chunk from a local directory.
pub fn read_local(root: &FsPath, object: &str) -> Result<Fetched, FetchError> {
    match std::fs::read(root.join(object)) {
        Ok(b) => Ok(Fetched::Found(Bytes::from(b))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Fetched::Missing),
        Err(e) => Err(FetchError::Permanent {
            object: root.join(object).display().to_string(),
            reason: e.to_string(),
        }),
    }
}

enum Attempt {
    Timeout,
    Store(StorageError),
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout => f.write_str("request timed out"),
            Self::Store(e) => write!(f, "{e}"),
        }
    }
}

fn is_transient(a: &Attempt) -> bool {
    match a {
        Attempt::Timeout => true,
        Attempt::Store(StorageError::Backend { source, .. }) => !matches!(
            source,
            object_store::Error::NotFound { .. }
                | object_store::Error::InvalidPath { .. }
                | object_store::Error::NotSupported { .. }
                | object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
                | object_store::Error::NotImplemented { .. }
        ),
        Attempt::Store(StorageError::BadLocation { .. } | StorageError::NoCredentials { .. }) => {
            false
        }
    }
}

/// Fetches one object from a (remote) store with retries and timeouts.
pub async fn fetch_remote(
    location: &StoreLocation,
    object: &str,
    policy: FetchPolicy,
) -> Result<Fetched, FetchError> {
    let attempts = std::sync::atomic::AtomicUsize::new(0);
    let attempt = || async {
        attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match tokio::time::timeout(policy.timeout, location.get(object)).await {
            Err(_) => Err(Attempt::Timeout),
            Ok(Ok(b)) => Ok(Fetched::Found(b)),
            Ok(Err(e)) if e.is_not_found() => Ok(Fetched::Missing),
            Ok(Err(e)) => Err(Attempt::Store(e)),
        }
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.min_backoff)
        .with_max_delay(policy.max_backoff)
        .with_max_times(policy.retries)
        .with_jitter();
    attempt
        .retry(backoff)
        .when(is_transient)
        .notify(|e, after| {
            metrics::counter!(crate::metrics::FETCH_RETRIES).increment(1);
            tracing::warn!(object, error = %e, retry_in = ?after, "chunk fetch failed, retrying");
        })
        .await
        .map_err(|e| {
            let object = location.describe(object);
            if is_transient(&e) {
                FetchError::Exhausted {
                    object,
                    attempts: attempts.load(std::sync::atomic::Ordering::Relaxed),
                    last: e.to_string(),
                }
            } else {
                FetchError::Permanent {
                    object,
                    reason: e.to_string(),
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_paths_cannot_escape_the_root() {
        assert!(safe_object_path("acme/1a:2:3:4"));
        assert!(!safe_object_path("../etc/passwd"));
        assert!(!safe_object_path("/etc/passwd"));
        assert!(!safe_object_path("a//b"));
    }

    #[test]
    fn store_selection_follows_the_chunk_start() {
        let schema = SchemaConfig::parse(
            "configs:\n- from: 2020-01-01\n  store: aws-dynamo\n  object_store: s3\n  schema: v9\n  index: {prefix: i_, period: 168h}\n- from: 2020-02-01\n  store: aws-dynamo\n  object_store: gcs\n  schema: v11\n  index: {prefix: j_, period: 168h}\n",
        )
        .expect("schema");
        let a = tempfile::tempdir().expect("a");
        let b = tempfile::tempdir().expect("b");
        let la = StoreLocation::local(a.path(), false).expect("a");
        let lb = StoreLocation::local(b.path(), false).expect("b");
        let stores = ChunkStores::new(la.clone(), Some(schema))
            .with_store("s3", la.clone())
            .with_store("gcs", lb.clone());
        let feb1 = 18293 * DAY_MS; // 2020-02-01
        assert_eq!(stores.for_chunk(feb1 - 1).to_string(), la.to_string());
        assert_eq!(
            stores.for_chunk(feb1).to_string(),
            lb.to_string(),
            "W14: the first day of a period uses the new store"
        );
        assert!(stores.all_local());
    }
}
