//! Chunk fetching: which store serves a chunk, and getting its bytes with bounded
//! retries (transient errors only, exponential backoff with jitter) and a per-request
//! timeout. A missing object is an answer ([`Fetched::Missing`]), not an error.
//!
//! Shared by the builder and by `verify`, which must read the chunk store without
//! depending on the builder it checks.

/// Chunk fetch retries (a builder metric: `verify` counts its retries the same way).
pub const FETCH_RETRIES: &str = "cortex_blocksconvert_builder_fetch_retries_total";

use std::path::Path as FsPath;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use cortex_chunk::ChunkKey;
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

/// Schema `object_store` types whose chunks Cortex kept in Bigtable tables.
pub const BIGTABLE_CHUNK_STORES: &[&str] = &["bigtable", "gcp", "gcp-columnkey", "bigtable-hashed"];

/// One place chunks are read from.
#[derive(Debug, Clone)]
pub enum ChunkStore {
    /// Objects at their Cortex keys in a directory or bucket.
    Objects(StoreLocation),
    /// Rows of the schema's chunk tables in a Bigtable instance (row key = the
    /// chunk's external key, cell `f:c` = the object).
    Bigtable(Box<bigtable::Client>),
}

impl ChunkStore {
    /// The local root, when this is a local directory.
    pub fn local_root(&self) -> Option<&FsPath> {
        match self {
            Self::Objects(l) => l.local_root(),
            Self::Bigtable(_) => None,
        }
    }

    /// A chunk's full name for messages.
    pub fn describe(&self, object: &str, table: Option<&str>) -> String {
        match self {
            Self::Objects(l) => l.describe(object),
            Self::Bigtable(c) => format!(
                "{} table {} row {object}",
                c.url(),
                table.unwrap_or("(none)")
            ),
        }
    }
}

impl std::fmt::Display for ChunkStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Objects(l) => write!(f, "{l}"),
            Self::Bigtable(c) => f.write_str(&c.url()),
        }
    }
}

/// Chunk stores by Cortex object-store type, selected per chunk through the schema.
#[derive(Debug, Clone)]
pub struct ChunkStores {
    default: ChunkStore,
    by_type: Vec<(String, ChunkStore)>,
    schema: Option<SchemaConfig>,
}

/// The chunk stores cannot serve the schema.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ChunkStoresError(String);

impl ChunkStores {
    /// One store for every chunk, or per period type once [`Self::with_store`] adds
    /// more and a schema is given.
    pub fn new(default: impl Into<ChunkStore>, schema: Option<SchemaConfig>) -> Self {
        Self {
            default: default.into(),
            by_type: Vec::new(),
            schema,
        }
    }

    /// Serves periods whose `object_store` (or `store`) is `store_type` from `location`.
    pub fn with_store(mut self, store_type: &str, location: impl Into<ChunkStore>) -> Self {
        self.by_type.push((store_type.to_owned(), location.into()));
        self
    }

    /// Checks that every Bigtable store can find its tables: a schema whose periods
    /// served from Bigtable all name their chunk tables.
    pub fn check(&self) -> Result<(), ChunkStoresError> {
        let uses_bigtable = std::iter::once(&self.default)
            .chain(self.by_type.iter().map(|(_, s)| s))
            .any(|s| matches!(s, ChunkStore::Bigtable(_)));
        if !uses_bigtable {
            return Ok(());
        }
        let Some(schema) = &self.schema else {
            return Err(ChunkStoresError(
                "chunks in Bigtable need --schema (its chunks: prefix and period name the tables)"
                    .into(),
            ));
        };
        for p in &schema.configs {
            if p.is_convertible()
                && matches!(
                    self.store_for_type(p.chunk_store()),
                    ChunkStore::Bigtable(_)
                )
                && p.chunks.is_none()
            {
                return Err(ChunkStoresError(format!(
                    "the period from {} reads chunks from Bigtable but has no chunks: table config",
                    p.from
                )));
            }
        }
        Ok(())
    }

    fn store_for_type(&self, store_type: &str) -> &ChunkStore {
        self.by_type
            .iter()
            .find(|(n, _)| n == store_type)
            .map_or(&self.default, |(_, l)| l)
    }

    /// The store holding a chunk that starts at `from_ms`. The period is chosen with
    /// `from_i <= day < from_{i+1}` on the chunk's own start, as Cortex's composite
    /// store does when writing (fixes W14's off-by-one on the first day of a period).
    pub fn for_chunk(&self, from_ms: i64) -> &ChunkStore {
        if self.by_type.is_empty() {
            return &self.default;
        }
        match self
            .schema
            .as_ref()
            .and_then(|s| s.config_for_day(from_ms.div_euclid(DAY_MS)))
        {
            Some(p) => self.store_for_type(p.chunk_store()),
            None => &self.default,
        }
    }

    /// The Bigtable chunk table of a chunk starting at `from_ms` (Cortex's
    /// `ChunkTableFor`: the period of the chunk's start, `chunks.prefix` + its period
    /// number); `None` without a schema or a `chunks:` config.
    pub fn chunk_table(&self, from_ms: i64) -> Option<String> {
        let p = self
            .schema
            .as_ref()?
            .config_for_day(from_ms.div_euclid(DAY_MS))?;
        Some(p.chunks.as_ref()?.table_for(from_ms))
    }

    /// Every store (the default first).
    pub fn stores(&self) -> impl Iterator<Item = &ChunkStore> {
        std::iter::once(&self.default).chain(self.by_type.iter().map(|(_, l)| l))
    }

    /// True when every store is a local directory (chunks are read synchronously on
    /// the worker threads, without an async hop per object).
    pub fn all_local(&self) -> bool {
        self.stores().all(|s| s.local_root().is_some())
    }

    /// Fetches the chunks `keys` (results in the same order; `None` keys, invalid IDs
    /// the caller reports itself, come back [`Fetched::Missing`]). Objects are read
    /// with up to 16 requests in flight; Bigtable chunks with one ReadRows per table
    /// for the whole batch.
    pub async fn fetch_chunks(
        &self,
        keys: &[Option<ChunkKey>],
        policy: FetchPolicy,
    ) -> Result<Vec<Fetched>, FetchError> {
        use futures::StreamExt;
        let mut out: Vec<Fetched> = vec![Fetched::Missing; keys.len()];
        // (table, row key, index in `keys`) per Bigtable client.
        let mut rows: Vec<(bigtable::Client, String, bytes::Bytes, usize)> = Vec::new();
        let mut objects: Vec<(StoreLocation, String, usize)> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let Some(key) = key else { continue };
            let object = key.object_path();
            match self.for_chunk(key.from) {
                ChunkStore::Objects(l) => objects.push((l.clone(), object, i)),
                ChunkStore::Bigtable(c) => match self.chunk_table(key.from) {
                    Some(t) => rows.push(((**c).clone(), t, bytes::Bytes::from(object), i)),
                    None => {
                        return Err(FetchError::Permanent {
                            object,
                            reason: "no chunks: table config for its period".into(),
                        });
                    }
                },
            }
        }
        let fetched: Vec<(usize, Result<Fetched, FetchError>)> = futures::stream::iter(objects)
            .map(|(l, object, i)| async move { (i, fetch_remote(&l, &object, policy).await) })
            .buffered(16)
            .collect()
            .await;
        for (i, r) in fetched {
            out[i] = r?;
        }
        rows.sort_by(|a, b| (&a.1, &a.2).cmp(&(&b.1, &b.2)));
        for group in rows.chunk_by(|a, b| a.1 == b.1 && a.0.url() == b.0.url()) {
            let (client, table) = (&group[0].0, &group[0].1);
            for batch in group.chunks(BIGTABLE_KEYS_PER_READ) {
                let wanted: Vec<bytes::Bytes> = batch.iter().map(|r| r.2.clone()).collect();
                let found = tokio::time::timeout(
                    policy.timeout,
                    client.read_keys(table, &wanted, BIGTABLE_CHUNK_FAMILY),
                )
                .await
                .map_err(|_| FetchError::Exhausted {
                    object: format!("{} table {table} ({} rows)", client.url(), wanted.len()),
                    attempts: 1,
                    last: "ReadRows timed out".into(),
                })?
                .map_err(|e| bigtable_fetch_error(client, table, wanted.len(), e))?;
                let mut by_key: std::collections::HashMap<bytes::Bytes, bytes::Bytes> = found
                    .into_iter()
                    .filter_map(|row| {
                        let value = row
                            .cells
                            .into_iter()
                            .find(|c| c.qualifier.as_ref() == BIGTABLE_CHUNK_COLUMN)?
                            .value;
                        Some((row.key, value))
                    })
                    .collect();
                for (_, _, key, i) in batch {
                    if let Some(v) = by_key.remove(key) {
                        out[*i] = Fetched::Found(v);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Row keys asked per ReadRows when fetching chunks from Bigtable.
const BIGTABLE_KEYS_PER_READ: usize = 500;
/// Cortex's chunk cell: family `f`, qualifier `c`.
const BIGTABLE_CHUNK_FAMILY: &str = "f";
const BIGTABLE_CHUNK_COLUMN: &[u8] = b"c";

fn bigtable_fetch_error(
    client: &bigtable::Client,
    table: &str,
    rows: usize,
    e: bigtable::BigtableError,
) -> FetchError {
    let object = format!("{} table {table} ({rows} rows)", client.url());
    if e.is_transient() {
        FetchError::Exhausted {
            object,
            attempts: 0,
            last: e.to_string(),
        }
    } else {
        FetchError::Permanent {
            object,
            reason: e.to_string(),
        }
    }
}

impl From<StoreLocation> for ChunkStore {
    fn from(l: StoreLocation) -> Self {
        Self::Objects(l)
    }
}

impl From<bigtable::Client> for ChunkStore {
    fn from(c: bigtable::Client) -> Self {
        Self::Bigtable(Box::new(c))
    }
}

/// Whether a chunk object path is safe to join under a root (no `..`, no absolute).
pub fn safe_object_path(path: &str) -> bool {
    !path.starts_with('/')
        && path
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
}

/// Reads local chunk objects into one reused buffer. Per object: an open relative to
/// the root's directory handle (the kernel then resolves only the object's own path
/// components; resolving the whole root per chunk was about 3 % of a local build's
/// CPU), reads until end of file and a close; no size query, and no allocation once
/// the buffer has grown to the largest object (a builder reads hundreds of thousands
/// of small files per plan).
#[derive(Debug, Default)]
pub struct LocalReader {
    buf: Vec<u8>,
    /// The last root, opened as a directory.
    root: Option<(std::path::PathBuf, rustix::fd::OwnedFd)>,
}

impl LocalReader {
    /// Space added whenever the buffer is full: more than most chunk objects.
    const GROWTH: usize = 64 * 1024;

    /// The bytes of `object` (a relative path, see [`safe_object_path`]) under `root`
    /// (valid until the next read), or `None` when there is no such file.
    pub fn read(&mut self, root: &FsPath, object: &str) -> Result<Option<&[u8]>, FetchError> {
        use rustix::fs::{Mode, OFlags};
        use std::io::Read;
        let fail = |path: &FsPath, e: std::io::Error| FetchError::Permanent {
            object: path.display().to_string(),
            reason: e.to_string(),
        };
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        let (path, dir) = match self.root.take() {
            Some((path, dir)) if path.as_os_str() == root.as_os_str() => (path, dir),
            _ => match retry_interrupted(|| rustix::fs::open(root, ROOT_FLAGS, Mode::empty())) {
                Ok(dir) => (root.to_owned(), dir),
                // No root: every object under it is missing.
                Err(rustix::io::Errno::NOENT) => return Ok(None),
                Err(e) => return Err(fail(root, e.into())),
            },
        };
        let opened = retry_interrupted(|| rustix::fs::openat(&dir, object, flags, Mode::empty()));
        self.root = Some((path, dir));
        let mut file = match opened {
            Ok(fd) => std::fs::File::from(fd),
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(fail(&root.join(object), e.into())),
        };
        let mut filled = 0;
        loop {
            if filled == self.buf.len() {
                self.buf.resize(filled + Self::GROWTH, 0);
            }
            match file.read(&mut self.buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail(&root.join(object), e)),
            }
        }
        Ok(Some(&self.buf[..filled]))
    }
}

/// How a chunk root is opened: as a path handle where the platform has one, so a
/// root the builder may search but not list (mode 0711) works as it did with whole
/// paths.
#[cfg(any(target_os = "linux", target_os = "android"))]
const ROOT_FLAGS: rustix::fs::OFlags = rustix::fs::OFlags::PATH
    .union(rustix::fs::OFlags::DIRECTORY)
    .union(rustix::fs::OFlags::CLOEXEC);
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const ROOT_FLAGS: rustix::fs::OFlags = rustix::fs::OFlags::RDONLY
    .union(rustix::fs::OFlags::DIRECTORY)
    .union(rustix::fs::OFlags::CLOEXEC);

/// Repeats an open interrupted by a signal, as `std::fs::File::open` does.
fn retry_interrupted<T>(mut open: impl FnMut() -> rustix::io::Result<T>) -> rustix::io::Result<T> {
    loop {
        match open() {
            Err(rustix::io::Errno::INTR) => {}
            other => return other,
        }
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
            metrics::counter!(FETCH_RETRIES).increment(1);
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

    #[test]
    fn local_reader_returns_each_object_whole_from_one_reused_buffer() {
        let dir = tempfile::tempdir().expect("dir");
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::create_dir(dir.path().join("acme")).expect("tenant dir");
        std::fs::write(dir.path().join("acme/big"), &big).expect("big");
        std::fs::write(dir.path().join("acme/small"), b"xyz").expect("small");
        std::fs::write(dir.path().join("acme/empty"), b"").expect("empty");
        let mut r = LocalReader::default();
        assert_eq!(r.read(dir.path(), "acme/big").expect("big"), Some(&big[..]));
        // A smaller object after a larger one: only its own bytes.
        assert_eq!(
            r.read(dir.path(), "acme/small").expect("small"),
            Some(&b"xyz"[..])
        );
        assert_eq!(
            r.read(dir.path(), "acme/empty").expect("empty"),
            Some(&[][..])
        );
        assert_eq!(r.read(dir.path(), "acme/none").expect("missing"), None);
        // A directory where an object should be is an error naming the path.
        let e = r.read(dir.path(), "acme").expect_err("a directory");
        assert!(e.to_string().contains("acme"), "{e}");
        // Another root, then back: each object is read under its own root.
        let other = tempfile::tempdir().expect("other");
        std::fs::create_dir(other.path().join("acme")).expect("tenant dir");
        std::fs::write(other.path().join("acme/small"), b"other").expect("small");
        assert_eq!(
            r.read(other.path(), "acme/small").expect("other root"),
            Some(&b"other"[..])
        );
        assert_eq!(
            r.read(dir.path(), "acme/small").expect("first root again"),
            Some(&b"xyz"[..])
        );
        // A root that does not exist holds no objects.
        assert_eq!(
            r.read(&dir.path().join("absent"), "acme/small")
                .expect("missing root"),
            None
        );
        // A root that is a file is an error naming it.
        let e = r
            .read(&dir.path().join("acme/small"), "x")
            .expect_err("a file as root");
        assert!(e.to_string().contains("small"), "{e}");
    }
}
