//! One pass over the Cortex chunk index into per-tenant, per-day plans.
//!
//! [`scan`] selects the index tables (see [`select`]), and for each table, newest
//! first: reads its segments in parallel on dedicated threads, keeps the series→chunk
//! rows that pass the filters, groups them with an external sort bounded by the memory
//! budget ([`records`]), checkpoints each segment so a restart resumes where it stopped
//! ([`checkpoint`]), and, only once every segment is read, merges the runs into sorted,
//! verified plans and uploads them without colliding with earlier work ([`plans`]).

pub mod checkpoint;
pub mod metrics;
pub mod plans;
pub mod records;
pub mod select;
pub mod source;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cortex_index::entry::parse_chunk_row_ref;
use cortex_index::schema::SchemaConfig;
use futures::StreamExt;
use index_source::{Cursor, IndexSource, SegmentInfo, SourceError};
use plan_format::Compression;
use serde::{Deserialize, Serialize};
use storage::{StorageError, StoreLocation};

use crate::checkpoint::{SegmentCheckpoint, SegmentCounts, TableDir, read_json, write_atomic};
use crate::metrics as m;
use crate::plans::{ChangedPlans, LocalPlan, TenantListing, UploadResult};
use crate::records::{RecordBuffer, RunError, encode_record};
use crate::select::{DayFilter, DayRange, SelectError, TableFilter, TenantFilter};

/// Scan settings.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    /// Local state: checkpoints, sorted runs, plans before upload, downloads.
    pub work_dir: PathBuf,
    /// Bytes of buffered rows across all segment threads before spilling a run.
    pub memory_budget: usize,
    /// Segments read at once.
    pub concurrency: usize,
    /// Longest time between checkpoints of a segment (bounds the re-read after a crash).
    pub checkpoint_interval: Duration,
    /// Rows per second across all segments (protects a live table's read capacity).
    pub max_rows_per_second: Option<u64>,
    /// Tenant allow list and ignore regex.
    pub tenants: TenantFilter,
    /// Table selection.
    pub tables: TableFilter,
    /// Days whose rows are kept (`convert --period-*`); rows of other days in a
    /// selected table are skipped. Every day by default.
    pub days: DayRange,
    /// Plan file encoding.
    pub compression: Compression,
    /// Policy for plans that changed after their day was started.
    pub changed_plans: ChangedPlans,
    /// Unparseable series→chunk rows tolerated per table before it fails.
    pub max_bad_entries: u64,
    /// Keep local plans after upload.
    pub keep_files: bool,
    /// Scan tables again even if the work dir says they are done.
    pub rescan: bool,
    /// Plan uploads in flight.
    pub upload_concurrency: usize,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            work_dir: PathBuf::from("blocksconvert-scanner"),
            memory_budget: 256 << 20,
            concurrency: 4,
            checkpoint_interval: Duration::from_secs(60),
            max_rows_per_second: None,
            tenants: TenantFilter::default(),
            tables: TableFilter::default(),
            days: DayRange::default(),
            compression: Compression::Snappy,
            changed_plans: ChangedPlans::Refuse,
            max_bad_entries: 0,
            keep_files: false,
            rescan: false,
            upload_concurrency: 8,
        }
    }
}

/// A scan failed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Reading the index failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Bad filter settings.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// Work-dir I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A sorted run failed to read.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The plans location failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A plan failed verification before upload.
    #[error("plan {plan} failed verification: {reason}")]
    Verify {
        /// Local plan file.
        plan: String,
        /// What is wrong.
        reason: String,
    },
    /// Too many unparseable series→chunk rows.
    #[error(
        "table {table}: {count} series-to-chunk entries could not be parsed (limit {limit}), e.g. {examples:?}; raise --max-bad-entries to convert the rest"
    )]
    TooManyBadEntries {
        /// Table.
        table: String,
        /// How many.
        count: u64,
        /// The limit.
        limit: u64,
        /// Some of them.
        examples: Vec<String>,
    },
    /// A flag's value is unusable.
    #[error("{flag}: {reason}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Stopped by a signal; checkpoints are saved.
    #[error("scan cancelled; progress is checkpointed in the work dir")]
    Cancelled,
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ScanError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Live progress for the CLI's bar and logs.
#[derive(Debug, Default)]
pub struct ScanProgress {
    /// Tables selected.
    pub tables_total: AtomicUsize,
    /// Tables finished (or skipped as done).
    pub tables_done: AtomicUsize,
    /// Segments of the current table.
    pub segments_total: AtomicUsize,
    /// Segments of the current table read to the end.
    pub segments_done: AtomicUsize,
    /// Rows read by this process.
    pub rows_read: AtomicU64,
    /// Expected rows of the current table if known (0 = unknown).
    pub table_rows_expected: AtomicU64,
    /// Rows of the current table read so far (including before a restart).
    pub table_rows_read: AtomicU64,
    /// Plans uploaded or found unchanged.
    pub plans_done: AtomicU64,
    /// Current table name.
    pub table: Mutex<String>,
    cancelled: AtomicBool,
}

impl ScanProgress {
    /// Asks the scan to stop at the next page boundary (after checkpointing).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// Whether [`ScanProgress::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

/// Result of one table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TableOutcome {
    /// Table.
    pub table: String,
    /// Skipped because an earlier run finished it.
    pub already_done: bool,
    /// Counts over the whole table (across restarts).
    pub counts: SegmentCounts,
    /// Rows this process read from this table.
    pub rows_read_this_run: u64,
    /// Plans produced.
    pub plans: u64,
    /// Series in those plans.
    pub series: u64,
    /// Plans uploaded (new or replaced).
    pub uploaded: u64,
    /// Plans already present with the same generation.
    pub unchanged: u64,
    /// Plans not uploaded, with the reason.
    pub conflicts: Vec<String>,
}

/// Result of a scan.
#[derive(Debug, Clone, Default)]
pub struct ScanOutcome {
    /// Per table, in scan order.
    pub tables: Vec<TableOutcome>,
    /// Periods the scanner cannot convert.
    pub skipped_periods: Vec<select::SkippedPeriod>,
}

impl ScanOutcome {
    /// Every conflict of every table.
    pub fn conflicts(&self) -> Vec<String> {
        self.tables
            .iter()
            .flat_map(|t| t.conflicts.clone())
            .collect()
    }

    /// Rows read by this process.
    pub fn rows_read_this_run(&self) -> u64 {
        self.tables.iter().map(|t| t.rows_read_this_run).sum()
    }
}

/// What a table's work-dir state belongs to; a mismatch discards the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Fingerprint {
    source: String,
    table: String,
    segments: Vec<String>,
    tenants: String,
    schema: String,
    destination: String,
    /// The day range when one is given. Left out of the record (and its key) for
    /// every day, so the records of earlier scans still match; a narrower scan never
    /// marks a table done for a wider one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    days: String,
}

/// Directory (under the plans location) of the scanner's records of finished tables;
/// it matches no plan name, so schedulers ignore it.
pub const SCAN_STATE_DIR: &str = ".blocksconvert-scanner";

impl Fingerprint {
    /// True when `other` is the same scan, perhaps split into other segments.
    fn same_scan_as(&self, other: &Self) -> bool {
        Self {
            segments: Vec::new(),
            ..self.clone()
        } == Self {
            segments: Vec::new(),
            ..other.clone()
        }
    }

    /// `<SCAN_STATE_DIR>/<table>.<sha256 of this fingerprint>.done.json`. How the
    /// table was split is left out: it does not change what was scanned (and a
    /// Bigtable table's key ranges differ from one SampleRowKeys call to the next).
    fn done_key(&self) -> String {
        use sha2::Digest;
        let canonical = serde_json::to_vec(&Self {
            segments: Vec::new(),
            ..self.clone()
        })
        .unwrap_or_default();
        let digest = sha2::Sha256::digest(&canonical);
        let hex = hex::encode(&digest[..12]);
        let table: String = self
            .table
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{SCAN_STATE_DIR}/{table}.{hex}.done.json")
    }
}

/// Today's UTC day index.
pub fn today() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    secs.div_euclid(86_400)
}

/// Scans every selected table of every source and uploads the plans to `plans`.
///
/// Each source reads the tables of the periods whose index store it holds, so a
/// cluster whose index moved between stores (DynamoDB, then Bigtable) is scanned in
/// one run with one `--index` per store. With several sources a period is reported as
/// skipped only when no source holds it, and a `--tables` name need only exist in one.
pub async fn scan(
    sources: &[Arc<dyn IndexSource>],
    schema: &SchemaConfig,
    plans: &StoreLocation,
    cfg: &ScanConfig,
    progress: &Arc<ScanProgress>,
) -> Result<ScanOutcome, ScanError> {
    let several = sources.len() > 1;
    let mut selections: Vec<(&Arc<dyn IndexSource>, Vec<select::SelectedTable>)> = Vec::new();
    let mut skipped_everywhere: Option<Vec<select::SkippedPeriod>> = None;
    let mut unknown_tables: Option<Vec<String>> = None;
    for source in sources {
        let listed: Vec<(String, Option<u64>)> = source
            .tables()
            .await?
            .into_iter()
            .map(|t| (t.name, t.approx_items))
            .collect();
        // With several sources, a --tables name only has to be in one of them.
        let mut filter = cfg.tables.clone();
        let mut missing = Vec::new();
        if several {
            let known = select::select_tables(
                schema,
                &listed,
                &TableFilter::default(),
                source.index_stores(),
                today(),
            )
            .map(|(t, _)| t.into_iter().map(|t| t.name).collect::<Vec<_>>())
            .unwrap_or_default();
            missing = filter
                .tables
                .iter()
                .filter(|t| !known.contains(t))
                .cloned()
                .collect();
            filter.tables.retain(|t| known.contains(t));
            if !cfg.tables.tables.is_empty() && filter.tables.is_empty() {
                unknown_tables = Some(match unknown_tables {
                    None => missing,
                    Some(u) => u.into_iter().filter(|t| missing.contains(t)).collect(),
                });
                continue;
            }
        }
        let (tables, skipped) = match select::select_tables(
            schema,
            &listed,
            &filter,
            source.index_stores(),
            today(),
        ) {
            Ok(v) => v,
            Err(select::SelectError::NoTables { periods, .. }) if several => {
                tracing::warn!(source = %source.describe(), expected = %periods, "this index source holds no table of a convertible period");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if several {
            unknown_tables = Some(match unknown_tables {
                None => missing,
                Some(u) => u.into_iter().filter(|t| missing.contains(t)).collect(),
            });
        }
        skipped_everywhere = Some(match skipped_everywhere {
            None => skipped,
            Some(before) => before
                .into_iter()
                .filter(|p| skipped.iter().any(|s| s.from == p.from))
                .collect(),
        });
        selections.push((source, tables));
    }
    if let Some(t) = unknown_tables.and_then(|u| u.into_iter().next()) {
        return Err(select::SelectError::UnknownTable(t).into());
    }
    if selections.is_empty() {
        return Err(ScanError::Flag {
            flag: "--index",
            reason: "no index source holds a table of a convertible period of the schema".into(),
        });
    }
    let skipped_periods = skipped_everywhere.unwrap_or_default();
    for s in &skipped_periods {
        tracing::warn!(from = %s.from, reason = %s.reason, "period skipped");
    }
    let total: usize = selections.iter().map(|(_, t)| t.len()).sum();
    ::metrics::counter!(m::FOUND_TABLES).increment(total as u64);
    progress.tables_total.store(total, Ordering::Relaxed);
    let mut outcome = ScanOutcome {
        tables: Vec::new(),
        skipped_periods,
    };
    for (i, (source, tables)) in selections.into_iter().enumerate() {
        tracing::info!(
            source = %source.describe(),
            tables = ?tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            "tables to scan"
        );
        // Sources after the first keep their state apart: two stores may name
        // their tables alike.
        let cfg = if i == 0 {
            cfg.clone()
        } else {
            ScanConfig {
                work_dir: cfg.work_dir.join(format!("index-{i}")),
                ..cfg.clone()
            }
        };
        scan_source(source, &tables, schema, plans, &cfg, progress, &mut outcome).await?;
    }
    Ok(outcome)
}

async fn scan_source(
    source: &Arc<dyn IndexSource>,
    tables: &[select::SelectedTable],
    schema: &SchemaConfig,
    plans: &StoreLocation,
    cfg: &ScanConfig,
    progress: &Arc<ScanProgress>,
    outcome: &mut ScanOutcome,
) -> Result<(), ScanError> {
    let limiter = cfg
        .max_rows_per_second
        .map(|r| Arc::new(RateLimiter::new(r)));
    for t in tables {
        let result = scan_table(source, schema, plans, cfg, progress, limiter.clone(), t).await?;
        progress.tables_done.fetch_add(1, Ordering::Relaxed);
        ::metrics::counter!(m::PROCESSED_TABLES).increment(1);
        outcome.tables.push(result);
    }
    Ok(())
}

async fn scan_table(
    source: &Arc<dyn IndexSource>,
    schema: &SchemaConfig,
    plans: &StoreLocation,
    cfg: &ScanConfig,
    progress: &Arc<ScanProgress>,
    limiter: Option<Arc<RateLimiter>>,
    table: &select::SelectedTable,
) -> Result<TableOutcome, ScanError> {
    let dir = TableDir::new(&cfg.work_dir, &table.name);
    *progress.table.lock().unwrap_or_else(|p| p.into_inner()) = table.name.clone();
    let mut segments = source.segments(&table.name).await?;
    let mut fingerprint = Fingerprint {
        source: source.describe(),
        table: table.name.clone(),
        segments: segments.iter().map(|s| s.name.clone()).collect(),
        tenants: cfg.tenants.fingerprint(),
        schema: schema.to_yaml(),
        destination: plans.describe(""),
        days: cfg.days.describe(),
    };
    // The destination is the truth: a table counts as scanned only when the plans
    // location holds the done record of this exact scan (same source, tables,
    // filters, schema and destination). A lost or moved work dir costs nothing; a
    // new or emptied destination, or a wider filter, is scanned again.
    let done_key = fingerprint.done_key();
    if cfg.rescan {
        plans.delete(&done_key).await?;
    } else {
        match plans.get(&done_key).await {
            Ok(bytes) => {
                if let Ok(done) = serde_json::from_slice::<TableOutcome>(&bytes) {
                    tracing::info!(table = %table.name, record = %plans.describe(&done_key), "table already scanned into this destination with these filters; skipping (use --rescan to scan it again)");
                    return Ok(TableOutcome {
                        already_done: true,
                        rows_read_this_run: 0,
                        ..done
                    });
                }
                tracing::warn!(record = %plans.describe(&done_key), "unreadable scan record; scanning the table again");
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    if cfg.rescan && dir.root.exists() {
        std::fs::remove_dir_all(&dir.root).map_err(|e| ScanError::io(&dir.root, e))?;
    }
    let old: Option<Fingerprint> =
        read_json(&dir.fingerprint()).map_err(|e| ScanError::io(&dir.fingerprint(), e))?;
    if let Some(o) = &old
        && o.segments != fingerprint.segments
        && o.same_scan_as(&fingerprint)
        && !dir.done().exists()
        && let Some(resumed) = source.resume_segments(&table.name, &o.segments)
    {
        // The source split the table differently this time (Bigtable's sampled key
        // ranges move); carry on with the ranges the checkpoints belong to.
        tracing::info!(table = %table.name, segments = resumed.len(), "resuming with the segments the scan started with");
        segments = resumed;
        fingerprint.segments = o.segments.clone();
    }
    if old.as_ref().is_some_and(|o| *o != fingerprint) {
        tracing::warn!(table = %table.name, "work dir holds state of a different scan of this table (source, segments, tenants, schema or destination changed); starting the table over");
        std::fs::remove_dir_all(&dir.root).map_err(|e| ScanError::io(&dir.root, e))?;
    } else if dir.done().exists() {
        // Finished earlier, but the destination lacks its record (emptied, or the
        // record was never written): read the table again.
        std::fs::remove_dir_all(&dir.root).map_err(|e| ScanError::io(&dir.root, e))?;
    }
    std::fs::create_dir_all(&dir.root).map_err(|e| ScanError::io(&dir.root, e))?;
    write_atomic(&dir.fingerprint(), &fingerprint)
        .map_err(|e| ScanError::io(&dir.fingerprint(), e))?;

    progress
        .segments_total
        .store(segments.len(), Ordering::Relaxed);
    progress.segments_done.store(0, Ordering::Relaxed);
    progress
        .table_rows_expected
        .store(table.approx_items.unwrap_or(0), Ordering::Relaxed);
    progress.table_rows_read.store(0, Ordering::Relaxed);
    ::metrics::gauge!(m::SEGMENTS).set(segments.len() as f64);
    tracing::info!(table = %table.name, segments = segments.len(), items = ?table.approx_items, "scanning table");

    let started = Instant::now();
    let rows_before = progress.rows_read.load(Ordering::Relaxed);
    let checkpoints = {
        let job = SegmentJob {
            source: Arc::clone(source),
            schema: schema.clone(),
            table: table.name.clone(),
            dir: dir.clone(),
            cfg: cfg.clone(),
            progress: Arc::clone(progress),
            limiter,
            segments: segments.clone(),
            next: AtomicUsize::new(0),
        };
        tokio::task::spawn_blocking(move || job.run())
            .await
            .map_err(|e| ScanError::Internal(format!("segment threads: {e}")))??
    };
    let rows_this_run = progress.rows_read.load(Ordering::Relaxed) - rows_before;
    let mut counts = SegmentCounts::default();
    let mut runs = Vec::new();
    for (seg, cp) in segments.iter().zip(&checkpoints) {
        counts.add(&cp.counts);
        runs.extend(cp.runs.iter().map(|r| dir.segment(seg.index).join(r)));
    }
    tracing::info!(table = %table.name, rows = counts.rows_read, rows_this_run, kept = counts.kept, runs = runs.len(), elapsed = ?started.elapsed(), "table read");
    if counts.bad > cfg.max_bad_entries {
        return Err(ScanError::TooManyBadEntries {
            table: table.name.clone(),
            count: counts.bad,
            limit: cfg.max_bad_entries,
            examples: counts.bad_examples.clone(),
        });
    }

    let plan_dir = dir.plans();
    if plan_dir.exists() {
        std::fs::remove_dir_all(&plan_dir).map_err(|e| ScanError::io(&plan_dir, e))?;
    }
    let compression = cfg.compression;
    let local: Vec<LocalPlan> = {
        let plan_dir = plan_dir.clone();
        tokio::task::spawn_blocking(move || plans::write_plans(&runs, &plan_dir, compression))
            .await
            .map_err(|e| ScanError::Internal(format!("plan writer: {e}")))??
    };
    let mut outcome = TableOutcome {
        table: table.name.clone(),
        already_done: false,
        counts,
        rows_read_this_run: rows_this_run,
        plans: local.len() as u64,
        series: local.iter().map(|p| p.series).sum(),
        ..Default::default()
    };

    // Upload, listing each tenant's directory once.
    let mut users: Vec<&str> = local.iter().map(|p| p.user.as_str()).collect();
    users.dedup();
    let mut listings: HashMap<String, Arc<TenantListing>> = HashMap::new();
    for u in users {
        listings.insert(u.to_owned(), Arc::new(TenantListing::load(plans, u).await?));
    }
    let results: Vec<(String, Result<UploadResult, ScanError>)> =
        futures::stream::iter(local.iter())
            .map(|p| {
                let listing = Arc::clone(&listings[&p.user]);
                async move {
                    let r = plans::upload_plan(plans, p, compression, &listing, cfg.changed_plans)
                        .await;
                    progress.plans_done.fetch_add(1, Ordering::Relaxed);
                    (p.key(compression), r)
                }
            })
            .buffer_unordered(cfg.upload_concurrency.max(1))
            .collect()
            .await;
    let mut by_key = BTreeMap::new();
    for (key, r) in results {
        match r? {
            UploadResult::Uploaded | UploadResult::Replaced(_) => outcome.uploaded += 1,
            UploadResult::Unchanged => outcome.unchanged += 1,
            UploadResult::Conflict(reason) => {
                tracing::error!(plan = %key, %reason, "plan not uploaded");
                by_key.insert(key, reason);
            }
        }
    }
    outcome.conflicts = by_key.into_values().collect();
    tracing::info!(table = %table.name, plans = outcome.plans, uploaded = outcome.uploaded, unchanged = outcome.unchanged, conflicts = outcome.conflicts.len(), "plans uploaded");
    if outcome.conflicts.is_empty() {
        // Done: the record in the destination makes later runs skip the table; the
        // runs are no longer needed.
        let record = serde_json::to_vec_pretty(&outcome)
            .map_err(|e| ScanError::Internal(format!("scan record: {e}")))?;
        plans.put(&done_key, record).await?;
        write_atomic(&dir.done(), &outcome).map_err(|e| ScanError::io(&dir.done(), e))?;
        for s in &segments {
            let p = dir.segment(s.index);
            std::fs::remove_dir_all(&p).map_err(|e| ScanError::io(&p, e))?;
        }
        if !cfg.keep_files {
            std::fs::remove_dir_all(&plan_dir).map_err(|e| ScanError::io(&plan_dir, e))?;
        }
    }
    Ok(outcome)
}

/// Shares a rows-per-second budget between segment threads.
#[derive(Debug)]
struct RateLimiter {
    per_row: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    fn new(rows_per_second: u64) -> Self {
        Self {
            per_row: Duration::from_secs_f64(1.0 / rows_per_second.max(1) as f64),
            next: Mutex::new(Instant::now()),
        }
    }

    fn acquire(&self, rows: usize) {
        let wait = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if *next < now {
                *next = now;
            }
            let wait = *next - now;
            *next += self.per_row * rows as u32;
            wait
        };
        std::thread::sleep(wait);
    }
}

/// The segments of one table, read by `concurrency` threads.
struct SegmentJob {
    source: Arc<dyn IndexSource>,
    schema: SchemaConfig,
    table: String,
    dir: TableDir,
    cfg: ScanConfig,
    progress: Arc<ScanProgress>,
    limiter: Option<Arc<RateLimiter>>,
    segments: Vec<SegmentInfo>,
    next: AtomicUsize,
}

impl SegmentJob {
    fn run(self) -> Result<Vec<SegmentCheckpoint>, ScanError> {
        let threads = self.cfg.concurrency.clamp(1, self.segments.len().max(1));
        let budget = (self.cfg.memory_budget / threads).max(4096);
        let results: Mutex<Vec<Option<SegmentCheckpoint>>> =
            Mutex::new(vec![None; self.segments.len()]);
        let first_error: Mutex<Option<ScanError>> = Mutex::new(None);
        let failed = AtomicBool::new(false);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (results, first_error, failed) = (&results, &first_error, &failed);
                let this = &self;
                std::thread::Builder::new()
                    .name(format!("scan-{t}"))
                    .spawn_scoped(s, move || {
                        loop {
                            if failed.load(Ordering::SeqCst) {
                                return;
                            }
                            let i = this.next.fetch_add(1, Ordering::SeqCst);
                            let Some(seg) = this.segments.get(i) else {
                                return;
                            };
                            match this.scan_segment(seg, budget) {
                                Ok(cp) => {
                                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(cp);
                                    this.progress.segments_done.fetch_add(1, Ordering::Relaxed);
                                    ::metrics::counter!(m::SEGMENTS_DONE).increment(1);
                                }
                                Err(e) => {
                                    failed.store(true, Ordering::SeqCst);
                                    let mut fe =
                                        first_error.lock().unwrap_or_else(|p| p.into_inner());
                                    // A cancellation is reported only if nothing else failed.
                                    if fe.is_none() || matches!(*fe, Some(ScanError::Cancelled)) {
                                        *fe = Some(e);
                                    }
                                    return;
                                }
                            }
                        }
                    })
                    .map(|_| ())
                    .unwrap_or_else(|e| {
                        failed.store(true, Ordering::SeqCst);
                        *first_error.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(ScanError::Internal(format!("spawning a scan thread: {e}")));
                    });
            }
        });
        if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        results
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .map(|c| c.ok_or_else(|| ScanError::Internal("a segment was not scanned".into())))
            .collect()
    }

    fn scan_segment(
        &self,
        seg: &SegmentInfo,
        budget: usize,
    ) -> Result<SegmentCheckpoint, ScanError> {
        let dir = self.dir.segment(seg.index);
        std::fs::create_dir_all(&dir).map_err(|e| ScanError::io(&dir, e))?;
        let cp_path = dir.join("checkpoint.json");
        let mut cp: SegmentCheckpoint = read_json(&cp_path)
            .map_err(|e| ScanError::io(&cp_path, e))?
            .unwrap_or_default();
        self.progress
            .table_rows_read
            .fetch_add(cp.counts.rows_read, Ordering::Relaxed);
        if cp.done {
            return Ok(cp);
        }
        // Runs written after the last checkpoint hold rows that will be read again.
        for entry in std::fs::read_dir(&dir).map_err(|e| ScanError::io(&dir, e))? {
            let entry = entry.map_err(|e| ScanError::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".run") && !cp.runs.contains(&name) {
                std::fs::remove_file(entry.path()).map_err(|e| ScanError::io(&entry.path(), e))?;
            }
        }
        if cp.cursor != Cursor::Start {
            tracing::info!(segment = %seg.name, rows = cp.counts.rows_read, "resuming segment from its checkpoint");
        }
        let result = self.read_segment(seg, &dir, &cp_path, &mut cp, budget);
        if let Err(ScanError::Source(e)) = &result
            && e.invalidates_segment()
        {
            // What was read cannot be trusted: the segment starts over next time.
            tracing::error!(segment = %seg.name, error = %e, "discarding the segment's progress");
            let _ = std::fs::remove_dir_all(&dir);
        }
        result.map(|()| cp)
    }

    fn read_segment(
        &self,
        seg: &SegmentInfo,
        dir: &Path,
        cp_path: &Path,
        cp: &mut SegmentCheckpoint,
        budget: usize,
    ) -> Result<(), ScanError> {
        let mut reader = self.source.open_segment(&self.table, seg, &cp.cursor)?;
        let mut buf = RecordBuffer::default();
        let mut enc = Vec::with_capacity(256);
        let mut days = DayFilter::new(
            &self.schema,
            &self.table,
            self.source.index_stores(),
            self.cfg.days,
        );
        let mut tenants: HashMap<String, bool> = HashMap::new();
        let mut last_checkpoint = Instant::now();
        let mut page_counts = SegmentCounts::default();
        let mut by_type = [0u64; ENTRY_TYPES.len()];
        loop {
            if self.progress.is_cancelled() {
                self.checkpoint(dir, cp_path, cp, &mut buf)?;
                return Err(ScanError::Cancelled);
            }
            let Some(page) = reader.next_page()? else {
                break;
            };
            if let Some(l) = &self.limiter {
                l.acquire(page.rows.len());
            }
            page_counts.rows_read = page.rows.len() as u64;
            for row in &page.rows {
                let kind = entry_type(&row.range);
                by_type[kind] += 1;
                if kind != SERIES_TO_CHUNK {
                    continue;
                }
                let Some(r) = parse_chunk_row_ref(&row.hash, &row.range) else {
                    bad_entry(&mut page_counts, &row.hash, "unparseable hash or range");
                    continue;
                };
                if !valid_tenant(r.user) {
                    bad_entry(
                        &mut page_counts,
                        &row.hash,
                        "tenant ID is not valid under Cortex's rules",
                    );
                    continue;
                }
                if !days.accepts(r.day) {
                    page_counts.ignored_schema += 1;
                    continue;
                }
                let accepted = match tenants.get(r.user) {
                    Some(a) => *a,
                    None => {
                        let a = self.cfg.tenants.accepts(r.user);
                        tenants.insert(r.user.to_owned(), a);
                        a
                    }
                };
                if !accepted {
                    page_counts.ignored_tenant += 1;
                    continue;
                }
                encode_record(&mut enc, r.user, r.day, r.series_id, r.chunk_id);
                buf.push(&enc);
                page_counts.kept += 1;
            }
            for (kind, n) in by_type.iter_mut().enumerate() {
                if *n > 0 {
                    page_counts
                        .by_type
                        .insert(ENTRY_TYPES[kind].to_owned(), std::mem::take(n));
                }
            }
            self.emit_page_metrics(&page_counts, page.consumed_capacity);
            cp.counts.add(&page_counts);
            page_counts = SegmentCounts::default();
            cp.cursor = page.cursor;
            self.progress
                .rows_read
                .fetch_add(page.rows.len() as u64, Ordering::Relaxed);
            self.progress
                .table_rows_read
                .fetch_add(page.rows.len() as u64, Ordering::Relaxed);
            if buf.is_full(budget) || last_checkpoint.elapsed() >= self.cfg.checkpoint_interval {
                self.checkpoint(dir, cp_path, cp, &mut buf)?;
                last_checkpoint = Instant::now();
            }
        }
        cp.done = true;
        self.checkpoint(dir, cp_path, cp, &mut buf)
    }

    /// Spills the buffer as a run and records it with the current cursor.
    fn checkpoint(
        &self,
        dir: &Path,
        cp_path: &Path,
        cp: &mut SegmentCheckpoint,
        buf: &mut RecordBuffer,
    ) -> Result<(), ScanError> {
        if !buf.is_empty() {
            let name = format!("run-{}.run", cp.runs.len());
            let path = dir.join(&name);
            let bytes = buf.spill(&path).map_err(|e| ScanError::io(&path, e))?;
            ::metrics::counter!(m::SPILLED_BYTES).increment(bytes);
            cp.runs.push(name);
        }
        write_atomic(cp_path, cp).map_err(|e| ScanError::io(cp_path, e))?;
        ::metrics::counter!(m::CHECKPOINTS).increment(1);
        Ok(())
    }

    fn emit_page_metrics(&self, c: &SegmentCounts, capacity: f64) {
        ::metrics::counter!(m::ROWS_READ).increment(c.rows_read);
        ::metrics::counter!(m::CORTEX_READ_ROWS).increment(c.rows_read);
        for (kind, n) in &c.by_type {
            ::metrics::counter!(m::SCANNED_ENTRIES, "type" => kind.clone()).increment(*n);
        }
        if c.ignored_tenant > 0 {
            ::metrics::counter!(m::IGNORED_ENTRIES, "reason" => "tenant")
                .increment(c.ignored_tenant);
        }
        if c.ignored_schema > 0 {
            ::metrics::counter!(m::IGNORED_ENTRIES, "reason" => "schema")
                .increment(c.ignored_schema);
        }
        if c.bad > 0 {
            ::metrics::counter!(m::BAD_ENTRIES).increment(c.bad);
        }
        if capacity > 0.0 {
            ::metrics::gauge!(m::CONSUMED_CAPACITY).increment(capacity);
        }
    }
}

fn bad_entry(c: &mut SegmentCounts, hash: &str, reason: &str) {
    c.bad += 1;
    if c.bad_examples.len() < 5 {
        c.bad_examples.push(format!("{hash:?}: {reason}"));
    }
}

/// Tenant IDs become path components of plans and blocks: Cortex's rules.
fn valid_tenant(user: &str) -> bool {
    cortex_index::tenant::tenant_id_problem(user).is_none()
}

/// Cortex's entry type names (metric label `type`), indexed by [`entry_type`].
pub const ENTRY_TYPES: [&str; 6] = [
    "series-to-chunk",
    "metric-to-series",
    "metric-label-to-label-value",
    "series-to-label-values",
    "unknown",
    "unknown-too-short",
];
const SERIES_TO_CHUNK: usize = 0;

/// The entry type (index into [`ENTRY_TYPES`]) from the 3-byte suffix `00 <marker> 00`.
pub fn entry_type(range: &[u8]) -> usize {
    if range.len() < 3 {
        return 5;
    }
    match range[range.len() - 3..] {
        [0, b'3', 0] => SERIES_TO_CHUNK,
        [0, b'7', 0] => 1,
        [0, b'8', 0] => 2,
        [0, b'9', 0] => 3,
        _ => 4,
    }
}
