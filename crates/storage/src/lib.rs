//! Object-store locations for every blocksconvert service.
//!
//! An operator names a location as a URL (`s3://bucket/prefix`, `gs://…`, `az://…`,
//! `file:///abs/dir`) or as a plain directory path. [`StoreLocation::open`] turns that
//! into an [`ObjectStore`] plus a key prefix, with the retry, timeout and endpoint
//! settings of [`StorageOptions`]. Local locations also expose their root directory so
//! hot paths can read files directly instead of paying a task hop per object.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::{Path, PathPart};
use object_store::{
    BackoffConfig, ClientOptions, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload, RetryConfig,
};

/// A location could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL or path is not usable.
    #[error("storage location {location:?}: {reason}")]
    BadLocation {
        /// What the operator wrote.
        location: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A probe failed and no credentials for the location's cloud were configured.
    #[error(
        "{location}: no credentials in the environment or flags, and none from an instance role or workload identity: {hint} (the store answered: {source})"
    )]
    NoCredentials {
        /// The location.
        location: String,
        /// Where credentials come from for this scheme.
        hint: &'static str,
        /// The probe's error.
        #[source]
        source: Box<StorageError>,
    },
    /// The backend failed.
    #[error("{location}: {source}")]
    Backend {
        /// Full object path or prefix.
        location: String,
        /// Backend error.
        #[source]
        source: object_store::Error,
    },
}

impl StorageError {
    /// True when the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::Backend {
                source: object_store::Error::NotFound { .. },
                ..
            }
        )
    }

    /// True when the store refused the caller (missing, wrong or insufficient
    /// credentials): retrying cannot help, only the operator can.
    pub fn is_access_denied(&self) -> bool {
        matches!(self, Self::NoCredentials { .. })
            || matches!(
                self,
                Self::Backend {
                    source: object_store::Error::PermissionDenied { .. }
                        | object_store::Error::Unauthenticated { .. },
                    ..
                }
            )
    }

    /// True when a create-if-absent write found the object already there.
    pub fn is_already_exists(&self) -> bool {
        matches!(
            self,
            Self::Backend {
                source: object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ..
            }
        )
    }
}

/// A location spec as another process opens it: URLs unchanged, a local directory as
/// its absolute path (the scheduler hands plan URLs to builders started elsewhere).
pub fn shareable_url(spec: &str) -> std::io::Result<String> {
    if spec.contains("://") {
        return Ok(spec.to_owned());
    }
    Ok(std::fs::canonicalize(spec)?.display().to_string())
}

/// Settings shared by every remote location a process opens.
///
/// Credentials and region also come from the standard cloud environment variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_REGION`, `AWS_ENDPOINT`, `GOOGLE_SERVICE_ACCOUNT`,
/// `AZURE_STORAGE_ACCOUNT_NAME`, …); flags given here win.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// S3-compatible endpoint, e.g. `http://127.0.0.1:9000` (default: AWS).
    pub s3_endpoint: Option<String>,
    /// S3 region (default: from the environment, else us-east-1).
    pub s3_region: Option<String>,
    /// S3 access key (default: `AWS_ACCESS_KEY_ID`, instance/IRSA credentials).
    pub s3_access_key_id: Option<String>,
    /// S3 secret key (default: `AWS_SECRET_ACCESS_KEY`).
    pub s3_secret_access_key: Option<String>,
    /// Allow plain-HTTP endpoints (local S3-compatible servers).
    pub s3_insecure: bool,
    /// GCS endpoint, e.g. a local emulator `http://127.0.0.1:4443` (default: Google;
    /// `STORAGE_EMULATOR_HOST`, as Google's clients read it, works too). Without
    /// Google credentials in the environment, requests to it are not signed.
    pub gcs_endpoint: Option<String>,
    /// Azure storage account (default: `AZURE_STORAGE_ACCOUNT_NAME`).
    pub azure_account_name: Option<String>,
    /// Azure storage account key (default: `AZURE_STORAGE_ACCOUNT_KEY`, SAS or a
    /// managed identity).
    pub azure_account_key: Option<String>,
    /// Azure Blob account URL, e.g. Azurite's `http://127.0.0.1:10000/devstoreaccount1`
    /// (default: `https://<account>.blob.core.windows.net`).
    pub azure_endpoint: Option<String>,
    /// Bigtable emulator `host:port` for `bigtable://` locations (default:
    /// `BIGTABLE_EMULATOR_HOST`, as Google's clients read it; unset = Google with
    /// application default credentials).
    pub bigtable_emulator: Option<String>,
    /// Per-request timeout for remote object stores.
    pub request_timeout: Duration,
    /// Retries of transient errors (5xx, resets, timeouts) per request.
    pub max_retries: usize,
}

impl Default for StorageOptions {
    fn default() -> Self {
        Self {
            s3_endpoint: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_insecure: false,
            gcs_endpoint: None,
            azure_account_name: None,
            azure_account_key: None,
            azure_endpoint: None,
            bigtable_emulator: None,
            request_timeout: Duration::from_secs(60),
            max_retries: 5,
        }
    }
}

impl StorageOptions {
    fn retry(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: self.max_retries,
            retry_timeout: Duration::from_secs(300),
        }
    }

    fn client(&self) -> ClientOptions {
        ClientOptions::new()
            .with_timeout(self.request_timeout)
            .with_connect_timeout(Duration::from_secs(10))
            .with_allow_http(self.s3_insecure)
    }
}

/// An object store plus the key prefix everything under this location lives in.
#[derive(Debug, Clone)]
pub struct StoreLocation {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    local_root: Option<PathBuf>,
    display: String,
    /// Set when the URL's cloud needs credentials and none were configured: where
    /// they come from, for the error of a failed probe.
    credentials_hint: Option<&'static str>,
}

/// Environment variables that give Google Cloud Storage credentials.
const GOOGLE_CREDENTIAL_VARS: &[&str] = &[
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_SERVICE_ACCOUNT",
    "GOOGLE_SERVICE_ACCOUNT_PATH",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GOOGLE_BEARER_TOKEN",
];

/// Where credentials come from when none of `vars` is set and no flag gave them.
fn missing_credentials(vars: &[&str], flags: bool, hint: &'static str) -> Option<&'static str> {
    let set = |v: &&str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
    (!flags && !vars.iter().any(set)).then_some(hint)
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl StoreLocation {
    /// Opens a URL or a plain directory. A local directory is created if missing when
    /// `create` is set (outputs), and must exist otherwise (inputs).
    pub fn open(spec: &str, opts: &StorageOptions, create: bool) -> Result<Self, StorageError> {
        let bad = |reason: String| StorageError::BadLocation {
            location: spec.to_owned(),
            reason,
        };
        if spec.is_empty() {
            return Err(bad("empty location".into()));
        }
        let Some((scheme, _)) = spec.split_once("://").filter(|(s, _)| {
            s.len() > 1 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '+')
        }) else {
            return Self::local(FsPath::new(spec), create);
        };
        let url = url::Url::parse(spec).map_err(|e| bad(e.to_string()))?;
        let key_prefix = url.path().trim_matches('/').to_owned();
        let store: Arc<dyn ObjectStore> = match scheme {
            "file" => {
                let dir = url
                    .to_file_path()
                    .map_err(|()| bad("not an absolute file path".into()))?;
                return Self::local(&dir, create);
            }
            "s3" | "s3a" => {
                let bucket = url.host_str().ok_or_else(|| bad("no bucket".into()))?;
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(opts.retry())
                    .with_client_options(opts.client());
                if let Some(e) = &opts.s3_endpoint {
                    b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
                }
                if let Some(k) = &opts.s3_access_key_id {
                    b = b.with_access_key_id(k);
                }
                if let Some(k) = &opts.s3_secret_access_key {
                    b = b.with_secret_access_key(k);
                }
                if let Some(r) = &opts.s3_region {
                    b = b.with_region(r);
                }
                if opts.s3_insecure {
                    b = b.with_allow_http(true);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            "gs" => {
                let bucket = url.host_str().ok_or_else(|| bad("no bucket".into()))?;
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(opts.retry());
                let endpoint = opts.gcs_endpoint.clone().or_else(|| {
                    std::env::var("STORAGE_EMULATOR_HOST")
                        .ok()
                        .filter(|v| !v.trim().is_empty())
                        .map(|v| {
                            if v.contains("://") {
                                v
                            } else {
                                format!("http://{v}")
                            }
                        })
                });
                match endpoint {
                    Some(e) => {
                        b = b
                            .with_base_url(e.trim_end_matches('/'))
                            .with_client_options(opts.client().with_allow_http(true));
                        if missing_credentials(GOOGLE_CREDENTIAL_VARS, false, "").is_some() {
                            // An emulator takes unsigned requests. object_store skips the
                            // signature on reads only; its writes still ask for a token,
                            // which without credentials means the (absent) metadata
                            // server, so they get a static empty one.
                            b = b.with_skip_signature(true).with_credentials(Arc::new(
                                object_store::StaticCredentialProvider::new(
                                    object_store::gcp::GcpCredential {
                                        bearer: String::new(),
                                    },
                                ),
                            ));
                        }
                    }
                    None => b = b.with_client_options(opts.client()),
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            "az" | "azure" | "abfs" | "abfss" => {
                let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(spec)
                    .with_retry(opts.retry());
                if let Some(a) = &opts.azure_account_name {
                    b = b.with_account(a);
                }
                if let Some(k) = &opts.azure_account_key {
                    b = b.with_access_key(k);
                }
                match &opts.azure_endpoint {
                    Some(e) => {
                        b = b
                            .with_endpoint(e.trim_end_matches('/').to_owned())
                            .with_client_options(
                                opts.client().with_allow_http(e.starts_with("http://")),
                            );
                    }
                    None => b = b.with_client_options(opts.client()),
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            other => {
                return Err(bad(format!(
                    "unsupported scheme {other:?} (use s3://, gs://, az://, file:// or a directory)"
                )));
            }
        };
        let credentials_hint = match scheme {
            "s3" | "s3a" => missing_credentials(
                &[
                    "AWS_ACCESS_KEY_ID",
                    "AWS_WEB_IDENTITY_TOKEN_FILE",
                    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                ],
                opts.s3_access_key_id.is_some(),
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or --s3.access-key-id and --s3.secret-access-key), or run with an instance or IRSA role",
            ),
            "gs" => missing_credentials(
                GOOGLE_CREDENTIAL_VARS,
                opts.gcs_endpoint.is_some(),
                "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run with a workload identity",
            ),
            _ => missing_credentials(
                &[
                    "AZURE_STORAGE_ACCOUNT_KEY",
                    "AZURE_STORAGE_ACCESS_KEY",
                    "AZURE_STORAGE_SAS_KEY",
                    "AZURE_CLIENT_ID",
                    "AZURE_STORAGE_USE_EMULATOR",
                ],
                opts.azure_account_key.is_some(),
                "set AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or a SAS key, or a managed identity's AZURE_CLIENT_ID)",
            ),
        };
        let prefix = if matches!(scheme, "az" | "azure" | "abfs" | "abfss") {
            // The Azure URL names the container in the path; the builder consumed it.
            Path::from_iter(key_prefix.split('/').skip(1).filter(|p| !p.is_empty()))
        } else {
            Path::from_iter(key_prefix.split('/').filter(|p| !p.is_empty()))
        };
        Ok(Self {
            store,
            prefix,
            local_root: None,
            display: spec.trim_end_matches('/').to_owned(),
            credentials_hint,
        })
    }

    /// A local directory.
    pub fn local(dir: &FsPath, create: bool) -> Result<Self, StorageError> {
        let bad = |reason: String| StorageError::BadLocation {
            location: dir.display().to_string(),
            reason,
        };
        if create {
            std::fs::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
        }
        let root = dir
            .canonicalize()
            .map_err(|e| bad(format!("cannot open directory: {e}")))?;
        if !root.is_dir() {
            return Err(bad("not a directory".into()));
        }
        let store = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| bad(e.to_string()))?
            .with_automatic_cleanup(true);
        Ok(Self {
            store: Arc::new(store),
            prefix: Path::default(),
            display: root.display().to_string(),
            local_root: Some(root),
            credentials_hint: None,
        })
    }

    /// Wraps an existing store (fault-injection tests, in-process servers).
    pub fn from_store(store: Arc<dyn ObjectStore>, prefix: &str, display: &str) -> Self {
        Self {
            store,
            prefix: Path::from_iter(prefix.split('/').filter(|p| !p.is_empty())),
            local_root: None,
            display: display.to_owned(),
            credentials_hint: None,
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The root directory when this location is a local directory.
    pub fn local_root(&self) -> Option<&FsPath> {
        self.local_root.as_deref()
    }

    /// The store path of `rel` (a `/`-separated key relative to this location).
    /// Key parts are taken verbatim (Cortex keys contain `:`).
    pub fn path(&self, rel: &str) -> Path {
        Path::from_iter(
            self.prefix
                .parts()
                .chain(rel.split('/').filter(|p| !p.is_empty()).map(PathPart::from)),
        )
    }

    /// The key of `path` relative to this location, if it lies under it.
    pub fn relative(&self, path: &Path) -> Option<String> {
        let parts: Vec<_> = path.prefix_match(&self.prefix)?.collect();
        Some(
            parts
                .iter()
                .map(|p| p.as_ref())
                .collect::<Vec<_>>()
                .join("/"),
        )
    }

    /// A human-readable name of `rel` for error messages.
    pub fn describe(&self, rel: &str) -> String {
        format!("{}/{}", self.display, rel)
    }

    fn backend(&self, rel: &str) -> impl FnOnce(object_store::Error) -> StorageError + '_ {
        let location = self.describe(rel);
        move |source| StorageError::Backend { location, source }
    }

    /// Reads a whole object.
    pub async fn get(&self, rel: &str) -> Result<Bytes, StorageError> {
        let path = self.path(rel);
        let r = self.store.get(&path).await.map_err(self.backend(rel))?;
        r.bytes().await.map_err(self.backend(rel))
    }

    /// Reads up to `len` bytes from the start of an object (fewer if it is shorter).
    pub async fn get_prefix(&self, rel: &str, len: u64) -> Result<Bytes, StorageError> {
        let path = self.path(rel);
        let meta = self.store.head(&path).await.map_err(self.backend(rel))?;
        let end = meta.size.min(len);
        if end == 0 {
            return Ok(Bytes::new());
        }
        self.store
            .get_range(&path, 0..end)
            .await
            .map_err(self.backend(rel))
    }

    /// Streams an object into a local file (bounded memory); returns its size.
    pub async fn download_to(&self, rel: &str, file: &FsPath) -> Result<u64, StorageError> {
        use tokio::io::AsyncWriteExt;
        let path = self.path(rel);
        let r = self.store.get(&path).await.map_err(self.backend(rel))?;
        let mut stream = r.into_stream();
        let target = file.display().to_string();
        let mut out = tokio::fs::File::create(file)
            .await
            .map_err(|e| io_error(target.clone(), "LocalFileSystem", e))?;
        let mut size = 0;
        while let Some(chunk) = stream.try_next().await.map_err(self.backend(rel))? {
            size += chunk.len() as u64;
            out.write_all(&chunk)
                .await
                .map_err(|e| io_error(target.clone(), "LocalFileSystem", e))?;
        }
        out.flush()
            .await
            .map_err(|e| io_error(target, "LocalFileSystem", e))?;
        Ok(size)
    }

    /// Object metadata (size, last modified), or a not-found error.
    pub async fn head(&self, rel: &str) -> Result<ObjectMeta, StorageError> {
        self.store
            .head(&self.path(rel))
            .await
            .map_err(self.backend(rel))
    }

    /// Writes (overwrites) an object.
    pub async fn put(&self, rel: &str, data: impl Into<PutPayload>) -> Result<(), StorageError> {
        self.store
            .put(&self.path(rel), data.into())
            .await
            .map_err(self.backend(rel))
            .map(|_| ())
    }

    /// Writes an object only if it does not exist yet (atomic on S3, GCS, Azure and
    /// local disks); see [`StorageError::is_already_exists`].
    pub async fn put_if_absent(
        &self,
        rel: &str,
        data: impl Into<PutPayload>,
    ) -> Result<(), StorageError> {
        self.store
            .put_opts(
                &self.path(rel),
                data.into(),
                PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                },
            )
            .await
            .map_err(self.backend(rel))
            .map(|_| ())
    }

    /// Uploads a local file (multipart for large files). A local destination on the
    /// same file system gets a hard link instead of a copy (a block is written once).
    pub async fn upload_file(&self, rel: &str, file: &FsPath) -> Result<u64, StorageError> {
        if let Some(root) = &self.local_root
            && let Some(size) = link_into(root, rel, file)
        {
            return Ok(size);
        }
        let local = |e| io_error(file.display().to_string(), "local", e);
        let remote = |e| io_error(self.describe(rel), "upload", e);
        let size = std::fs::metadata(file).map_err(local)?.len();
        const PART: usize = 16 << 20;
        let path = self.path(rel);
        let mut f = tokio::fs::File::open(file).await.map_err(local)?;
        let mut writer =
            object_store::buffered::BufWriter::with_capacity(Arc::clone(&self.store), path, PART);
        tokio::io::copy(&mut f, &mut writer).await.map_err(remote)?;
        tokio::io::AsyncWriteExt::shutdown(&mut writer)
            .await
            .map_err(remote)?;
        Ok(size)
    }

    /// Deletes an object; a missing object is not an error.
    pub async fn delete(&self, rel: &str) -> Result<(), StorageError> {
        match self.store.delete(&self.path(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.backend(rel)(e)),
        }
    }

    /// Proves the location is writable with the credentials at hand: writes, reads
    /// back and deletes a small probe object (`.blocksconvert-probe-<random>`), within
    /// `deadline`. Run before long work so a wrong URL or missing credentials fail
    /// in seconds with the cause, not after hours of retries.
    pub async fn probe_writable(&self, deadline: Duration) -> Result<(), StorageError> {
        let key = format!(".blocksconvert-probe-{:016x}", rand::random::<u64>());
        let work = async {
            self.put(&key, b"probe".to_vec()).await?;
            self.get(&key).await?;
            self.delete(&key).await
        };
        tokio::time::timeout(deadline, work)
            .await
            .unwrap_or_else(|_| Err(self.timed_out(&key, deadline)))
            .map_err(|e| self.explain(e))
    }

    /// A probe's error, with where credentials come from when none were configured and
    /// the error is about credentials (refused, or the instance metadata service that
    /// the SDKs fall back to did not give any).
    fn explain(&self, e: StorageError) -> StorageError {
        let text = e.to_string().to_ascii_lowercase();
        let about_credentials = e.is_access_denied()
            || text.contains("credential")
            || text.contains("169.254.169.254")
            || text.contains("metadata");
        match self.credentials_hint {
            Some(hint) if about_credentials => StorageError::NoCredentials {
                location: self.display.clone(),
                hint,
                source: Box::new(e),
            },
            _ => e,
        }
    }

    /// Proves the location is readable: lists one page of it within `deadline`.
    pub async fn probe_readable(&self, deadline: Duration) -> Result<(), StorageError> {
        let prefix = self.path("");
        let work = async {
            let mut listing = self.store.list(Some(&prefix));
            match listing.next().await {
                None | Some(Ok(_)) => Ok(()),
                Some(Err(e)) => Err(self.backend("")(e)),
            }
        };
        tokio::time::timeout(deadline, work)
            .await
            .unwrap_or_else(|_| Err(self.timed_out("", deadline)))
            .map_err(|e| self.explain(e))
    }

    fn timed_out(&self, rel: &str, deadline: Duration) -> StorageError {
        StorageError::Backend {
            location: self.describe(rel),
            source: object_store::Error::Generic {
                store: "probe",
                source: format!(
                    "no answer within {deadline:?} (unreachable endpoint, or credentials being looked up from an instance metadata service that does not answer: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS or AZURE_STORAGE_ACCOUNT_KEY as the URL needs)"
                )
                .into(),
            },
        }
    }

    /// On a local directory, removes the empty directories at and below `rel` (and
    /// `rel`'s parents while they are empty): a failed write (a full disk) leaves
    /// directories that no object listing shows and no delete removes. Object stores
    /// have no directories; there this does nothing.
    pub fn prune_empty_dirs(&self, rel: &str) {
        fn prune(dir: &FsPath) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        prune(&e.path());
                    }
                }
            }
            // Fails harmlessly when not empty.
            let _ = std::fs::remove_dir(dir);
        }
        let Some(root) = &self.local_root else { return };
        let rel = rel.trim_matches('/');
        if rel.is_empty()
            || rel
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return;
        }
        let target = root.join(rel);
        prune(&target);
        let mut parent = target.parent();
        while let Some(p) = parent {
            if p == root.as_path() || std::fs::remove_dir(p).is_err() {
                break;
            }
            parent = p.parent();
        }
    }

    /// The immediate "sub-directories" of `rel` (common prefixes of a delimited
    /// listing), as names relative to `rel`.
    pub async fn list_dirs(&self, rel: &str) -> Result<Vec<String>, StorageError> {
        let prefix = self.path(rel);
        let listing = self
            .store
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(self.backend(rel))?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect())
    }

    /// Every object under `rel` (recursive), keys relative to this location.
    pub async fn list(&self, rel: &str) -> Result<Vec<(String, ObjectMeta)>, StorageError> {
        let prefix = self.path(rel);
        let metas: Vec<ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(self.backend(rel))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| self.relative(&m.location).map(|k| (k, m)))
            .collect())
    }
}

fn io_error(location: String, store: &'static str, e: std::io::Error) -> StorageError {
    StorageError::Backend {
        location,
        source: object_store::Error::Generic {
            store,
            source: Box::new(e),
        },
    }
}

/// Hard-links `file` to `root/rel` (replacing an existing file); `None` when that is
/// not possible (other file system, bad key), so the caller copies instead.
fn link_into(root: &FsPath, rel: &str, file: &FsPath) -> Option<u64> {
    if rel
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return None;
    }
    let dest = root.join(rel);
    std::fs::create_dir_all(dest.parent()?).ok()?;
    let _ = std::fs::remove_file(&dest);
    std::fs::hard_link(file, &dest).ok()?;
    std::fs::metadata(&dest).ok().map(|m| m.len())
}

/// Empties a process's local work dir, keeping the `lock` file its binary holds
/// (removing it would let a second process lock a new one). The error names the entry.
pub fn empty_work_dir(dir: &std::path::Path) -> Result<(), (std::path::PathBuf, std::io::Error)> {
    std::fs::create_dir_all(dir).map_err(|e| (dir.to_owned(), e))?;
    let entries = std::fs::read_dir(dir).map_err(|e| (dir.to_owned(), e))?;
    for entry in entries.flatten() {
        let p = entry.path();
        if p.file_name().is_some_and(|n| n == "lock") {
            continue;
        }
        let removed = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        removed.map_err(|e| (p, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_directory_round_trip_with_colon_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let loc = StoreLocation::open(
            dir.path().to_str().expect("utf8"),
            &StorageOptions::default(),
            false,
        )
        .expect("open");
        assert!(loc.local_root().is_some());
        let key = "team-a.prod/3b1603ed84479eef:175dc5144ff:175dc6fb5e6:a689557f";
        loc.put(key, Bytes::from_static(b"abc")).await.expect("put");
        assert!(dir.path().join(key).is_file(), "stored at its key");
        assert_eq!(loc.get(key).await.expect("get"), Bytes::from_static(b"abc"));
        assert!(loc.get("nope/x").await.expect_err("missing").is_not_found());
        loc.put_if_absent("m/1", Bytes::from_static(b"1"))
            .await
            .expect("create");
        let again = loc
            .put_if_absent("m/1", Bytes::from_static(b"2"))
            .await
            .expect_err("exists");
        assert!(again.is_already_exists(), "{again}");
        let listed = loc.list("team-a.prod").await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0, key);
        loc.delete(key).await.expect("delete");
        loc.delete(key).await.expect("delete twice");
    }

    #[test]
    fn urls_are_parsed_and_bad_ones_named() {
        let opts = StorageOptions {
            s3_endpoint: Some("http://127.0.0.1:1".into()),
            s3_insecure: true,
            s3_region: Some("us-east-1".into()),
            ..Default::default()
        };
        let loc = StoreLocation::open("s3://bucket/some/prefix/", &opts, false).expect("s3");
        assert_eq!(loc.path("t/1:2").as_ref(), "some/prefix/t/1:2");
        assert_eq!(loc.relative(&loc.path("t/1:2")).as_deref(), Some("t/1:2"));
        let err = StoreLocation::open("ftp://x/y", &opts, false).expect_err("scheme");
        assert!(err.to_string().contains("unsupported scheme"), "{err}");
        let err = StoreLocation::open("/definitely/not/here", &opts, false).expect_err("dir");
        assert!(err.to_string().contains("/definitely/not/here"), "{err}");
    }
}
