//! A small Google Cloud Bigtable client for what a Cortex migration needs: list and
//! create tables, split a table into key ranges, read rows by range or by key, and
//! write cells (loading a dump into an emulator).
//!
//! It speaks the Bigtable gRPC APIs through tonic with the message types of the
//! `googleapis-tonic-google-bigtable-*` crates (generated from Google's published
//! protos). Against the emulator (`BIGTABLE_EMULATOR_HOST`, as Google's own clients
//! read it, or [`BigtableConfig::emulator`]) it connects in plain HTTP/2 without
//! credentials; against Google it uses TLS and application default credentials
//! (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's user credentials, or the metadata
//! server). Every RPC has a deadline and is retried with jittered exponential backoff
//! on transient codes only; permission and authentication failures are final.

pub mod dump;
mod rows;

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use bytes::Bytes;
use googleapis_tonic_google_bigtable_admin_v2::google::bigtable::admin::v2 as admin;
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2 as data;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use rows::RowMerger;
pub use rows::{Cell, Row};

/// The environment variable Google's clients read to find the emulator.
pub const EMULATOR_ENV: &str = "BIGTABLE_EMULATOR_HOST";

const DATA_ENDPOINT: &str = "https://bigtable.googleapis.com";
const ADMIN_ENDPOINT: &str = "https://bigtableadmin.googleapis.com";
const SCOPE_DATA_READ: &str = "https://www.googleapis.com/auth/bigtable.data.readonly";
const SCOPE_DATA: &str = "https://www.googleapis.com/auth/bigtable.data";
const SCOPE_ADMIN: &str = "https://www.googleapis.com/auth/bigtable.admin.table";

/// Where the instance is and how to talk to it.
#[derive(Debug, Clone)]
pub struct BigtableConfig {
    /// Google Cloud project.
    pub project: String,
    /// Bigtable instance.
    pub instance: String,
    /// Emulator `host:port`; `None` = the `BIGTABLE_EMULATOR_HOST` variable, else Google.
    pub emulator: Option<String>,
    /// Application profile (empty = the instance's default).
    pub app_profile: String,
    /// Deadline of one RPC attempt (a streamed read: of the whole stream).
    pub request_timeout: Duration,
    /// Attempts per RPC on transient codes.
    pub max_attempts: usize,
    /// First retry delay (doubles, with jitter, up to `max_backoff`).
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
}

impl BigtableConfig {
    /// Settings for `project`/`instance` with the default timeouts and retries.
    pub fn new(project: impl Into<String>, instance: impl Into<String>) -> Self {
        Self {
            project: project.into(),
            instance: instance.into(),
            emulator: None,
            app_profile: String::new(),
            request_timeout: Duration::from_secs(60),
            max_attempts: 8,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }

    /// Parses `bigtable://<project>/<instance>`.
    pub fn from_url(url: &str) -> Result<Self, BigtableError> {
        let bad = |reason: &str| BigtableError::BadLocation {
            location: url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = url
            .strip_prefix("bigtable://")
            .ok_or_else(|| bad("expected bigtable://<project>/<instance>"))?;
        let mut parts = rest.trim_end_matches('/').split('/');
        let (Some(project), Some(instance), None) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected bigtable://<project>/<instance>"));
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        };
        if !valid(project) || !valid(instance) {
            return Err(bad(
                "project and instance must be non-empty IDs (letters, digits, - _ . :)",
            ));
        }
        Ok(Self::new(project, instance))
    }

    /// `bigtable://<project>/<instance>`.
    pub fn url(&self) -> String {
        format!("bigtable://{}/{}", self.project, self.instance)
    }
}

/// A Bigtable request failed.
#[derive(Debug, thiserror::Error)]
pub enum BigtableError {
    /// The `bigtable://` URL is unusable.
    #[error("{location}: {reason}")]
    BadLocation {
        /// The URL.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// No channel could be set up (bad endpoint, TLS setup).
    #[error("Bigtable endpoint {endpoint}: {reason}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// No credentials could be obtained for Google.
    #[error(
        "Bigtable credentials: {0} (set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, log in with gcloud, or run with a workload identity; BIGTABLE_EMULATOR_HOST selects an emulator)"
    )]
    Credentials(String),
    /// An RPC failed for good (after retries of transient codes).
    #[error("Bigtable {operation} {target}: {code:?}: {message}")]
    Rpc {
        /// API method.
        operation: &'static str,
        /// Table or instance the call was about.
        target: String,
        /// gRPC status code.
        code: tonic::Code,
        /// The server's message.
        message: String,
    },
    /// The server's ReadRows stream broke the protocol's rules.
    #[error("Bigtable ReadRows {table}: malformed response: {reason}")]
    Protocol {
        /// The table.
        table: String,
        /// The broken rule.
        reason: String,
    },
}

impl BigtableError {
    /// True when retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Rpc { code, .. } if transient(*code))
    }

    /// True for authentication and permission failures.
    pub fn is_access_denied(&self) -> bool {
        matches!(self, Self::Credentials(_))
            || matches!(
                self,
                Self::Rpc {
                    code: tonic::Code::PermissionDenied | tonic::Code::Unauthenticated,
                    ..
                }
            )
    }

    /// True when the table (or row) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::Rpc {
                code: tonic::Code::NotFound,
                ..
            }
        )
    }
}

/// The gRPC codes Google's clients retry.
fn transient(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Aborted
            | tonic::Code::ResourceExhausted
            | tonic::Code::Unknown
            | tonic::Code::Internal
    )
}

/// A connected client (cheap to clone; channels are shared and connect lazily).
#[derive(Clone)]
pub struct Client {
    data: data::bigtable_client::BigtableClient<Channel>,
    admin: admin::bigtable_table_admin_client::BigtableTableAdminClient<Channel>,
    /// Google only: credentials, found on first use.
    auth: Option<Arc<tokio::sync::OnceCell<Arc<dyn gcp_auth::TokenProvider>>>>,
    instance_path: String,
    cfg: BigtableConfig,
    endpoint: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("instance", &self.instance_path)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// Which end of a key range, and whether the key itself is included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyBound {
    /// No bound.
    Unbounded,
    /// From/to this key, inclusive at the start, exclusive at the end.
    Key(Bytes),
    /// Strictly after this key (start only).
    After(Bytes),
}

impl Client {
    /// Sets up channels to the emulator or to Google (connecting lazily) and, for
    /// Google, finds the credentials now (so a missing one fails at start).
    pub async fn connect(cfg: BigtableConfig) -> Result<Self, BigtableError> {
        let client = Self::new(cfg)?;
        client.token_provider().await?;
        Ok(client)
    }

    /// Like [`Client::connect`], but credentials are looked up on the first request
    /// (usable outside a runtime; an error then surfaces on first use).
    pub fn new(cfg: BigtableConfig) -> Result<Self, BigtableError> {
        let emulator = cfg.emulator.clone().or_else(|| {
            std::env::var(EMULATOR_ENV)
                .ok()
                .filter(|v| !v.trim().is_empty())
        });
        let (data_ch, admin_ch, auth, endpoint) = match emulator {
            Some(host) => {
                let url = if host.contains("://") {
                    host.clone()
                } else {
                    format!("http://{host}")
                };
                let ch = channel(&url, None, &cfg)?;
                (ch.clone(), ch, None, url)
            }
            None => {
                let tls = ClientTlsConfig::new().with_webpki_roots();
                let data_ch = channel(DATA_ENDPOINT, Some(tls.clone()), &cfg)?;
                let admin_ch = channel(ADMIN_ENDPOINT, Some(tls), &cfg)?;
                (
                    data_ch,
                    admin_ch,
                    Some(Arc::default()),
                    DATA_ENDPOINT.to_owned(),
                )
            }
        };
        let max = 256 * 1024 * 1024;
        Ok(Self {
            data: data::bigtable_client::BigtableClient::new(data_ch)
                .max_decoding_message_size(max),
            admin: admin::bigtable_table_admin_client::BigtableTableAdminClient::new(admin_ch)
                .max_decoding_message_size(max),
            auth,
            instance_path: format!("projects/{}/instances/{}", cfg.project, cfg.instance),
            cfg,
            endpoint,
        })
    }

    /// `bigtable://<project>/<instance>`.
    pub fn url(&self) -> String {
        self.cfg.url()
    }

    /// The endpoint the client talks to (the emulator's address or Google's).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Google's credentials (none for the emulator), found once.
    async fn token_provider(
        &self,
    ) -> Result<Option<Arc<dyn gcp_auth::TokenProvider>>, BigtableError> {
        let Some(cell) = &self.auth else {
            return Ok(None);
        };
        let provider = cell
            .get_or_try_init(|| async {
                gcp_auth::provider()
                    .await
                    .map_err(|e| BigtableError::Credentials(error_chain(&e)))
            })
            .await?;
        Ok(Some(Arc::clone(provider)))
    }

    fn table_path(&self, table: &str) -> String {
        format!("{}/tables/{table}", self.instance_path)
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.cfg.min_backoff)
            .with_max_delay(self.cfg.max_backoff)
            .with_max_times(self.cfg.max_attempts.saturating_sub(1))
            .with_jitter()
    }

    /// Wraps a message with the deadline, the routing header Google requires, and a
    /// bearer token when talking to Google.
    async fn request<T>(
        &self,
        msg: T,
        scope: &str,
        routing: &str,
    ) -> Result<tonic::Request<T>, BigtableError> {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(self.cfg.request_timeout);
        if let Ok(v) = tonic::metadata::MetadataValue::try_from(routing) {
            req.metadata_mut().insert("x-goog-request-params", v);
        }
        if let Some(auth) = self.token_provider().await? {
            let token = auth
                .token(&[scope])
                .await
                .map_err(|e| BigtableError::Credentials(error_chain(&e)))?;
            let value =
                tonic::metadata::MetadataValue::try_from(format!("Bearer {}", token.as_str()))
                    .map_err(|e| BigtableError::Credentials(e.to_string()))?;
            req.metadata_mut().insert("authorization", value);
        }
        Ok(req)
    }

    fn rpc_error(operation: &'static str, target: &str, s: tonic::Status) -> BigtableError {
        BigtableError::Rpc {
            operation,
            target: target.to_owned(),
            code: s.code(),
            message: s.message().to_owned(),
        }
    }

    fn note_retry(operation: &'static str, e: &BigtableError, delay: Duration) {
        tracing::warn!(operation, error = %e, retry_in = ?delay, "Bigtable request failed; retrying");
        ::metrics::counter!(RETRIES_METRIC, "operation" => operation).increment(1);
    }

    /// Names of every table of the instance (admin ListTables, all pages).
    pub async fn list_tables(&self) -> Result<Vec<String>, BigtableError> {
        let mut names = Vec::new();
        let mut page_token = String::new();
        loop {
            let token = page_token.clone();
            let page = (|| async {
                let req = self
                    .request(
                        admin::ListTablesRequest {
                            parent: self.instance_path.clone(),
                            view: admin::table::View::NameOnly as i32,
                            page_size: 1000,
                            page_token: token.clone(),
                        },
                        SCOPE_ADMIN,
                        &format!("parent={}", self.instance_path),
                    )
                    .await?;
                self.admin
                    .clone()
                    .list_tables(req)
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(|s| Self::rpc_error("ListTables", &self.instance_path, s))
            })
            .retry(self.backoff())
            .when(BigtableError::is_transient)
            .notify(|e, d| Self::note_retry("ListTables", e, d))
            .await?;
            for t in page.tables {
                let name = t.name.rsplit('/').next().unwrap_or(&t.name).to_owned();
                names.push(name);
            }
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        names.sort();
        Ok(names)
    }

    /// Creates a table with the given column families (no GC policy, as Cortex's
    /// table client does); an existing table is left as it is.
    pub async fn create_table(&self, table: &str, families: &[&str]) -> Result<(), BigtableError> {
        let column_families = families
            .iter()
            .map(|f| ((*f).to_owned(), admin::ColumnFamily::default()))
            .collect();
        let req = self
            .request(
                admin::CreateTableRequest {
                    parent: self.instance_path.clone(),
                    table_id: table.to_owned(),
                    table: Some(admin::Table {
                        column_families,
                        ..Default::default()
                    }),
                    initial_splits: Vec::new(),
                },
                SCOPE_ADMIN,
                &format!("parent={}", self.instance_path),
            )
            .await?;
        match self.admin.clone().create_table(req).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
            Err(s) => Err(Self::rpc_error("CreateTable", table, s)),
        }
    }

    /// Keys that split the table into ranges of roughly equal size
    /// (SampleRowKeys), in key order, without the empty "end of table" key.
    pub async fn sample_row_keys(&self, table: &str) -> Result<Vec<Bytes>, BigtableError> {
        let path = self.table_path(table);
        (|| async {
            let req = self
                .request(
                    data::SampleRowKeysRequest {
                        table_name: path.clone(),
                        app_profile_id: self.cfg.app_profile.clone(),
                        ..Default::default()
                    },
                    SCOPE_DATA_READ,
                    &format!("table_name={path}"),
                )
                .await?;
            let mut stream = self
                .data
                .clone()
                .sample_row_keys(req)
                .await
                .map_err(|s| Self::rpc_error("SampleRowKeys", table, s))?
                .into_inner();
            let mut keys = Vec::new();
            while let Some(msg) = stream
                .message()
                .await
                .map_err(|s| Self::rpc_error("SampleRowKeys", table, s))?
            {
                if !msg.row_key.is_empty() {
                    keys.push(msg.row_key);
                }
            }
            keys.sort();
            keys.dedup();
            Ok(keys)
        })
        .retry(self.backoff())
        .when(BigtableError::is_transient)
        .notify(|e, d| Self::note_retry("SampleRowKeys", e, d))
        .await
    }

    /// Up to `limit` whole rows of `[start, end)` in key order, cells of `family`
    /// only, values stripped when `keys_only`. A failed attempt is retried as a whole
    /// (the page is small and nothing of it was handed out).
    pub async fn read_range(
        &self,
        table: &str,
        start: &KeyBound,
        end: &KeyBound,
        family: &str,
        keys_only: bool,
        limit: usize,
    ) -> Result<Vec<Row>, BigtableError> {
        use data::row_range::{EndKey, StartKey};
        let range = data::RowRange {
            start_key: match start {
                KeyBound::Unbounded => None,
                KeyBound::Key(k) => Some(StartKey::StartKeyClosed(k.clone())),
                KeyBound::After(k) => Some(StartKey::StartKeyOpen(k.clone())),
            },
            end_key: match end {
                KeyBound::Unbounded => None,
                KeyBound::Key(k) | KeyBound::After(k) => Some(EndKey::EndKeyOpen(k.clone())),
            },
        };
        let rows = data::RowSet {
            row_keys: Vec::new(),
            row_ranges: vec![range],
        };
        (|| self.read_rows_once(table, rows.clone(), family, keys_only, limit))
            .retry(self.backoff())
            .when(BigtableError::is_transient)
            .notify(|e, d| Self::note_retry("ReadRows", e, d))
            .await
    }

    /// The rows with these keys (one ReadRows for the whole batch; keys that do not
    /// exist are simply absent). On a transient failure only the keys not yet
    /// received are asked again.
    pub async fn read_keys(
        &self,
        table: &str,
        keys: &[Bytes],
        family: &str,
    ) -> Result<Vec<Row>, BigtableError> {
        let mut wanted: Vec<Bytes> = keys.to_vec();
        wanted.sort();
        wanted.dedup();
        let mut got: Vec<Row> = Vec::with_capacity(wanted.len());
        let mut attempt = 0;
        let mut backoff = self.backoff().build();
        loop {
            attempt += 1;
            let rows = data::RowSet {
                row_keys: wanted.clone(),
                row_ranges: Vec::new(),
            };
            let mut partial = Vec::new();
            match self
                .read_rows_into(table, rows, family, false, 0, &mut partial)
                .await
            {
                Ok(()) => {
                    got.append(&mut partial);
                    return Ok(got);
                }
                Err(e) if e.is_transient() => {
                    let delay = backoff.next();
                    if !partial.is_empty() {
                        // Rows come in key order: everything up to the last one is done.
                        let last = partial.last().map(|r| r.key.clone()).unwrap_or_default();
                        wanted.retain(|k| *k > last);
                        got.append(&mut partial);
                        backoff = self.backoff().build();
                        attempt = 0;
                    }
                    match delay {
                        Some(d) if attempt < self.cfg.max_attempts => {
                            Self::note_retry("ReadRows", &e, d);
                            tokio::time::sleep(d).await;
                        }
                        _ => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn read_rows_once(
        &self,
        table: &str,
        rows: data::RowSet,
        family: &str,
        keys_only: bool,
        limit: usize,
    ) -> Result<Vec<Row>, BigtableError> {
        let mut out = Vec::new();
        self.read_rows_into(table, rows, family, keys_only, limit, &mut out)
            .await?;
        Ok(out)
    }

    /// Streams ReadRows into `out`; committed rows stay in `out` even when the
    /// stream fails later (callers resume after them).
    async fn read_rows_into(
        &self,
        table: &str,
        rows: data::RowSet,
        family: &str,
        keys_only: bool,
        limit: usize,
        out: &mut Vec<Row>,
    ) -> Result<(), BigtableError> {
        use data::row_filter::{Chain, Filter};
        let path = self.table_path(table);
        let mut filters = vec![data::RowFilter {
            filter: Some(Filter::FamilyNameRegexFilter(regex_quote(family))),
        }];
        if keys_only {
            filters.push(data::RowFilter {
                filter: Some(Filter::StripValueTransformer(true)),
            });
        }
        let req = self
            .request(
                data::ReadRowsRequest {
                    table_name: path.clone(),
                    app_profile_id: self.cfg.app_profile.clone(),
                    rows: Some(rows),
                    // A chain needs two filters or more.
                    filter: Some(if filters.len() == 1 {
                        filters.remove(0)
                    } else {
                        data::RowFilter {
                            filter: Some(Filter::Chain(Chain { filters })),
                        }
                    }),
                    rows_limit: i64::try_from(limit).unwrap_or(i64::MAX),
                    ..Default::default()
                },
                SCOPE_DATA_READ,
                &format!("table_name={path}"),
            )
            .await?;
        let mut stream = self
            .data
            .clone()
            .read_rows(req)
            .await
            .map_err(|s| Self::rpc_error("ReadRows", table, s))?
            .into_inner();
        let mut merger = RowMerger::new(table);
        while let Some(msg) = stream
            .message()
            .await
            .map_err(|s| Self::rpc_error("ReadRows", table, s))?
        {
            for chunk in msg.chunks {
                if let Some(row) = merger.push(chunk)? {
                    out.push(row);
                }
            }
        }
        merger.finish()
    }

    /// Writes cells (MutateRows, one SetCell per cell, timestamps as given); entries
    /// the server rejects transiently are sent again.
    pub async fn write_rows(&self, table: &str, rows: &[Row]) -> Result<(), BigtableError> {
        use data::mutation::{Mutation as M, SetCell};
        let path = self.table_path(table);
        let mut pending: Vec<usize> = (0..rows.len()).collect();
        let mut backoff = self.backoff().build();
        while !pending.is_empty() {
            let entries = pending
                .iter()
                .map(|&i| data::mutate_rows_request::Entry {
                    row_key: rows[i].key.clone(),
                    mutations: rows[i]
                        .cells
                        .iter()
                        .map(|c| data::Mutation {
                            mutation: Some(M::SetCell(SetCell {
                                family_name: c.family.clone(),
                                column_qualifier: c.qualifier.clone(),
                                timestamp_micros: c.timestamp_micros,
                                value: c.value.clone(),
                            })),
                        })
                        .collect(),
                    idempotency: None,
                })
                .collect();
            let req = self
                .request(
                    data::MutateRowsRequest {
                        table_name: path.clone(),
                        app_profile_id: self.cfg.app_profile.clone(),
                        entries,
                        ..Default::default()
                    },
                    SCOPE_DATA,
                    &format!("table_name={path}"),
                )
                .await?;
            let mut retry = Vec::new();
            let mut last_error = None;
            match self.data.clone().mutate_rows(req).await {
                Ok(resp) => {
                    let mut stream = resp.into_inner();
                    loop {
                        match stream.message().await {
                            Ok(Some(msg)) => {
                                for e in msg.entries {
                                    let Some(status) = e.status.filter(|s| s.code != 0) else {
                                        continue;
                                    };
                                    let code = tonic::Code::from_i32(status.code);
                                    let Some(&row) =
                                        usize::try_from(e.index).ok().and_then(|i| pending.get(i))
                                    else {
                                        continue;
                                    };
                                    let err = BigtableError::Rpc {
                                        operation: "MutateRows",
                                        target: table.to_owned(),
                                        code,
                                        message: status.message,
                                    };
                                    if !err.is_transient() {
                                        return Err(err);
                                    }
                                    retry.push(row);
                                    last_error = Some(err);
                                }
                            }
                            Ok(None) => break,
                            Err(s) => {
                                let err = Self::rpc_error("MutateRows", table, s);
                                if !err.is_transient() {
                                    return Err(err);
                                }
                                // Which entries landed is unknown: send all again
                                // (SetCell with an explicit timestamp is idempotent).
                                retry = pending.clone();
                                last_error = Some(err);
                                break;
                            }
                        }
                    }
                }
                Err(s) => {
                    let err = Self::rpc_error("MutateRows", table, s);
                    if !err.is_transient() {
                        return Err(err);
                    }
                    retry = pending.clone();
                    last_error = Some(err);
                }
            }
            retry.sort_unstable();
            retry.dedup();
            pending = retry;
            if let Some(err) = last_error {
                match backoff.next() {
                    Some(d) => {
                        Self::note_retry("MutateRows", &err, d);
                        tokio::time::sleep(d).await;
                    }
                    None => return Err(err),
                }
            }
        }
        Ok(())
    }
}

/// Retries of Bigtable RPCs, by operation.
pub const RETRIES_METRIC: &str = "blocksconvert_bigtable_request_retries_total";

fn channel(
    url: &str,
    tls: Option<ClientTlsConfig>,
    cfg: &BigtableConfig,
) -> Result<Channel, BigtableError> {
    let bad = |e: tonic::transport::Error| BigtableError::Connect {
        endpoint: url.to_owned(),
        reason: error_chain(&e),
    };
    let mut ep = Endpoint::from_shared(url.to_owned())
        .map_err(bad)?
        .connect_timeout(Duration::from_secs(10))
        .timeout(cfg.request_timeout)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    if let Some(tls) = tls {
        ep = ep.tls_config(tls).map_err(bad)?;
    }
    Ok(ep.connect_lazy())
}

/// RE2 pattern matching exactly `s`.
fn regex_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !c.is_ascii_alphanumeric() && c != '_' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let c = BigtableConfig::from_url("bigtable://proj-1/inst").expect("valid");
        assert_eq!(
            (c.project.as_str(), c.instance.as_str()),
            ("proj-1", "inst")
        );
        assert_eq!(c.url(), "bigtable://proj-1/inst");
        for bad in [
            "bigtable://",
            "bigtable://p",
            "bigtable://p/",
            "bigtable://p/i/x",
            "bigtable://p/i j",
            "gs://p/i",
        ] {
            assert!(BigtableConfig::from_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(regex_quote("f"), "f");
        assert_eq!(regex_quote("a.b*"), "a\\.b\\*");
    }
}
