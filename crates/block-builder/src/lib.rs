//! Builds one TSDB block from one blocksconvert plan and uploads it.
//!
//! [`build_plan`] is the library entry point used by `blocksconvert build` and the
//! builder service: it fetches the plan, validates it completely (W18), converts it on
//! dedicated threads (see [`pipeline`](crate::pipeline)), applies the
//! bad-chunk policy (W13), uploads the block with `meta.json` last after removing any
//! block an earlier attempt of the same plan left behind (W7), and writes the plan's
//! report object next to its markers.

pub mod existing;
mod pipeline;
/// Chunk stores and fetching (the `chunk-store` crate, shared with `verify`).
pub use chunk_store as fetch;
/// Label normalisation of chunk metadata (in `cortex-chunk`, shared with `verify`).
pub use cortex_chunk::labels;
pub mod merge;
pub mod metrics;
pub mod report;
/// Timestamp snapping (in `tsdb-block`, shared with `verify`).
pub use tsdb_block::snap;
mod upload;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Instant;

pub use existing::ExistingBlocks;
pub use fetch::{
    BIGTABLE_CHUNK_STORES, ChunkStore, ChunkStores, ChunkStoresError, FetchError, FetchPolicy,
    Fetched,
};
pub use pipeline::LocalBlock;
pub use report::{BadChunkKind, PlanReport, PlanStatus};
use storage::{StorageError, StoreLocation};
use tsdb_block::{BlockError, BlockMeta};

/// Tuning and policy of a build.
#[derive(Debug, Clone)]
pub struct BuildConfig {
    /// Scratch space (`plans/`, `blocks/`, `spill/` below it).
    pub work_dir: PathBuf,
    /// CPU worker threads (decode, merge, encode).
    pub workers: usize,
    /// Series fetched ahead concurrently from remote stores.
    pub fetch_concurrency: usize,
    /// Bytes of memory the block writer uses (series records, symbols, postings)
    /// before it spills to disk.
    pub memory_budget: usize,
    /// Largest fraction of a plan's chunks that may be missing or bad while the plan
    /// still finishes (with gaps, listed in the report); above it the plan fails.
    /// 0 fails on the first bad chunk.
    pub max_bad_chunk_fraction: f64,
    /// Cortex `-builder.timestamp-tolerance` in ms (0 = off).
    pub timestamp_tolerance_ms: i64,
    /// Chunk fetch retries and timeout.
    pub fetch: FetchPolicy,
    /// Maximum chunk segment file size.
    pub segment_size: u64,
    /// Keep the local block directory after upload (debugging).
    pub keep_local_block: bool,
}

impl Default for BuildConfig {
    fn default() -> Self {
        Self {
            work_dir: std::env::temp_dir().join("blocksconvert-builder"),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            fetch_concurrency: 32,
            memory_budget: 64 << 20,
            max_bad_chunk_fraction: 0.05,
            timestamp_tolerance_ms: 0,
            fetch: FetchPolicy::default(),
            segment_size: tsdb_block::segment::DEFAULT_MAX_SEGMENT_SIZE,
            keep_local_block: false,
        }
    }
}

/// Phases of a build, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Fetching and validating the plan.
    Validating = 0,
    /// Fetching, merging and encoding series.
    Converting = 1,
    /// Writing the index.
    Indexing = 2,
    /// Uploading the block.
    Uploading = 3,
    /// Done.
    Done = 4,
}

/// Live counters of one build, shared with progress bars and heartbeats.
#[derive(Debug, Default)]
pub struct BuildProgress {
    /// Plan size in bytes (as stored).
    pub plan_size: AtomicU64,
    /// Plan bytes read by the converting pass.
    pub plan_bytes_read: Arc<AtomicU64>,
    /// Series in the plan.
    pub series_total: AtomicU64,
    /// Series done.
    pub series_done: AtomicU64,
    /// Chunks fetched.
    pub chunks_fetched: AtomicU64,
    /// Chunk bytes fetched.
    pub bytes_fetched: AtomicU64,
    /// Samples decoded.
    pub samples_decoded: AtomicU64,
    /// Samples written.
    pub samples_written: AtomicU64,
    /// Block bytes uploaded.
    pub bytes_uploaded: AtomicU64,
    phase: AtomicU8,
    cancelled: AtomicBool,
}

impl BuildProgress {
    /// Current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Validating,
            1 => Phase::Converting,
            2 => Phase::Indexing,
            3 => Phase::Uploading,
            _ => Phase::Done,
        }
    }

    fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Relaxed);
    }

    /// Asks the build to stop; it returns [`BuildError::Cancelled`] and cleans up.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether [`Self::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

/// Why a plan produced no block.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The plan is malformed or truncated (not retriable: rescan it).
    #[error(transparent)]
    Plan(#[from] plan_format::PlanError),
    /// A chunk could not be fetched even after retries (retriable).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// More bad chunks than the policy allows; the report lists them.
    #[error(
        "plan {plan}: {bad} of {total} chunks are missing or bad, above the allowed fraction {max_fraction} (see the plan report)"
    )]
    TooManyBadChunks {
        /// Plan object.
        plan: String,
        /// Bad chunks.
        bad: u64,
        /// Chunks in the plan.
        total: u64,
        /// The policy.
        max_fraction: f64,
    },
    /// Writing the local block failed.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// Local file-system failure (work dir full, permissions).
    #[error("{path}: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Object-store failure (plan download, upload, markers); retriable.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The plan's header names another tenant or day than its key (not retriable).
    #[error(
        "plan {plan}: its header says tenant {header_tenant:?} day {header_day}, but it is filed as tenant {key_tenant:?} day {key_day}; refusing to build it"
    )]
    NotItsKey {
        /// Plan object.
        plan: String,
        /// Tenant in the header.
        header_tenant: String,
        /// Day in the header.
        header_day: i64,
        /// Tenant of the key.
        key_tenant: String,
        /// Day of the key.
        key_day: i64,
    },
    /// The plan's header names no usable tenant-day (not retriable).
    #[error("plan {plan}: {reason}; refusing to build it")]
    NotATenantDay {
        /// Plan object.
        plan: String,
        /// What is wrong.
        reason: String,
    },
    /// The build was cancelled (shutdown or lost lease).
    #[error("build cancelled")]
    Cancelled,
    /// A bug or resource exhaustion (thread could not start).
    #[error("internal error: {0}")]
    Internal(String),
}

impl BuildError {
    /// Whether retrying the same plan later can succeed.
    pub fn is_retriable(&self) -> bool {
        if let Self::Storage(e) = self
            && e.is_access_denied()
        {
            // Credentials or permissions: every retry fails the same way until an
            // operator fixes them, so the plan is reported, not retried into
            // quarantine again and again.
            return false;
        }
        !matches!(
            self,
            Self::Plan(_)
                | Self::TooManyBadChunks { .. }
                | Self::NotItsKey { .. }
                | Self::NotATenantDay { .. }
        )
    }
}

/// A plan object: the location holding it and its key (`<user>/<day>.plan[.gz|.snappy]`).
#[derive(Debug, Clone)]
pub struct PlanRef {
    /// Where the plan lives.
    pub location: StoreLocation,
    /// Key relative to the location.
    pub key: String,
}

impl PlanRef {
    /// Splits a URL or path of a plan file into its directory location and key.
    pub fn open(spec: &str, opts: &storage::StorageOptions) -> Result<Self, StorageError> {
        let trimmed = spec.trim_end_matches('/');
        let (dir, file) = match trimmed.rsplit_once('/') {
            Some((d, f)) if !d.is_empty() && !d.ends_with(':') && !d.ends_with(":/") => (d, f),
            Some(("", f)) => ("/", f),
            _ => (".", trimmed),
        };
        if plan_format::Compression::from_name(file).is_none() {
            return Err(StorageError::BadLocation {
                location: spec.to_owned(),
                reason: "a plan file name ends in .plan, .plan.gz or .plan.snappy".into(),
            });
        }
        Ok(Self {
            location: StoreLocation::open(dir, opts, false)?,
            key: file.to_owned(),
        })
    }

    /// The plan's base (key without the plan suffix), which names its markers.
    pub fn base(&self) -> &str {
        for suffix in [".plan.gz", ".plan.snappy", ".plan"] {
            if let Some(b) = self.key.strip_suffix(suffix) {
                return b;
            }
        }
        &self.key
    }
}

/// Where blocks and per-plan objects (report, block marker) go.
#[derive(Debug, Clone)]
pub struct Destinations {
    /// Blocks bucket: blocks land at `<user>/<ULID>/`.
    pub blocks: StoreLocation,
    /// Location of the plan's markers; `<base>.report.json` and `<base>.block.<ULID>`
    /// are written there (names no Cortex scheduler recognises).
    pub markers: StoreLocation,
    /// Base of the plan's marker names inside `markers` (e.g. `acme/18584`); `None`
    /// derives `<user>/<day_index>` from the plan header (Cortex's layout).
    pub base: Option<String>,
    /// The tenant and day the plan's key names (a lease says them): a header that
    /// disagrees fails the plan before any block is written, so a plan filed under one
    /// tenant can never write into another's namespace or another day.
    pub expect: Option<PlanIdentity>,
    /// Cache of the blocks already in `blocks` (share one per process).
    pub existing: ExistingBlocks,
}

/// The tenant and UTC day a plan is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanIdentity {
    /// Tenant ID.
    pub tenant: String,
    /// Day index (days since 1970-01-01 UTC).
    pub day_index: i64,
}

/// A successfully built and uploaded plan.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// Block ULID.
    pub ulid: String,
    /// Its meta.json.
    pub meta: BlockMeta,
    /// The plan report (also uploaded).
    pub report: PlanReport,
    /// Bytes uploaded.
    pub block_bytes: u64,
    /// Blocks of earlier attempts of this plan that were removed first (W7).
    pub replaced_blocks: Vec<String>,
    /// Local block directory when `keep_local_block` is set.
    pub local_dir: Option<PathBuf>,
    /// The block was already in the bucket for this tenant-day (written by another
    /// run) and was kept: nothing was uploaded, and it must never be discarded as
    /// this attempt's own.
    pub kept_existing: bool,
}

/// Removes leftovers of earlier runs in a work dir (call once at process start; plans
/// being built concurrently in the same process keep their own sub-directories).
pub fn clean_work_dir(work_dir: &Path) -> Result<(), BuildError> {
    for sub in ["plans", "blocks", "spill"] {
        let d = work_dir.join(sub);
        if d.exists() {
            std::fs::remove_dir_all(&d).map_err(|source| BuildError::Io {
                path: d.clone(),
                source,
            })?;
        }
    }
    std::fs::create_dir_all(work_dir).map_err(|source| BuildError::Io {
        path: work_dir.to_owned(),
        source,
    })
}

fn phase_done(phase: &'static str, since: Instant) {
    ::metrics::histogram!(metrics::PHASE_SECONDS, "phase" => phase)
        .record(since.elapsed().as_secs_f64());
}

/// Builds the block of one plan and uploads it (see the crate docs for the steps).
/// The report object is written on success and on failure.
pub async fn build_plan(
    plan: &PlanRef,
    stores: &ChunkStores,
    dest: &Destinations,
    cfg: &BuildConfig,
    progress: &Arc<BuildProgress>,
) -> Result<BuildOutcome, BuildError> {
    let gauges = Arc::new(metrics::PlanGauges::start());
    let mut report = PlanReport::new(&plan.location.describe(&plan.key), "", 0);
    let result = build_inner(plan, stores, dest, cfg, progress, &gauges, &mut report).await;
    let base = marker_base(dest, plan, &report);
    drop(gauges);
    progress.set_phase(Phase::Done);
    if let Err(e) = &result {
        report.status = PlanStatus::Failed;
        report.error = Some(e.to_string());
        report.block = None;
    }
    ::metrics::counter!(metrics::PLANS, "status" => report.status.as_str()).increment(1);
    let report_key = format!("{base}.report.json");
    if !matches!(result, Err(BuildError::Cancelled))
        && let Err(e) = dest.markers.put(&report_key, report.to_json()).await
    {
        tracing::error!(error = %e, "cannot write the plan report");
        if result.is_ok() {
            return Err(e.into());
        }
    }
    result.map(|mut o| {
        o.report = report;
        o
    })
}

/// Deletes a block [`build_plan`] uploaded for `plan` (meta.json first, then its files
/// and its `<base>.block.<ULID>` record): a worker that lost the plan's lease calls it
/// so a tenant-day never keeps two blocks (W7).
pub async fn discard_block(
    dest: &Destinations,
    plan: &PlanRef,
    outcome: &BuildOutcome,
) -> Result<(), StorageError> {
    if outcome.kept_existing {
        return Ok(());
    }
    let base = marker_base(dest, plan, &outcome.report);
    upload::discard_block(
        &dest.markers,
        &base,
        &dest.blocks,
        &outcome.report.user,
        &outcome.ulid,
    )
    .await
}

/// The base name of the plan's markers (see [`Destinations::base`]).
pub fn marker_base(dest: &Destinations, plan: &PlanRef, report: &PlanReport) -> String {
    match (&dest.base, report.user.is_empty()) {
        (Some(b), _) => b.clone(),
        (None, false) => format!("{}/{}", report.user, report.day_index),
        (None, true) => plan.base().to_owned(),
    }
}

async fn build_inner(
    plan: &PlanRef,
    stores: &ChunkStores,
    dest: &Destinations,
    cfg: &BuildConfig,
    progress: &Arc<BuildProgress>,
    gauges: &Arc<metrics::PlanGauges>,
    report: &mut PlanReport,
) -> Result<BuildOutcome, BuildError> {
    progress.set_phase(Phase::Validating);
    let started = Instant::now();
    let plans_dir = cfg.work_dir.join("plans");
    let (plan_path, downloaded) = match plan.location.local_root() {
        Some(root) => (root.join(&plan.key), false),
        None => {
            tokio::fs::create_dir_all(&plans_dir)
                .await
                .map_err(|source| BuildError::Io {
                    path: plans_dir.clone(),
                    source,
                })?;
            let path = plans_dir.join(format!(
                "{}-{}",
                ulid::Ulid::new(),
                plan.key.replace('/', "_")
            ));
            // Streamed to disk: a plan of any size costs a buffer, not its size in memory.
            let mut partial = RemoveOnDrop(Some(path.clone()));
            plan.location.download_to(&plan.key, &path).await?;
            partial.0 = None;
            (path, true)
        }
    };
    let _plan_guard = RemoveOnDrop(downloaded.then(|| plan_path.clone()));
    let size = std::fs::metadata(&plan_path)
        .map_err(|source| BuildError::Io {
            path: plan_path.clone(),
            source,
        })?
        .len();
    progress.plan_size.store(size, Ordering::Relaxed);
    gauges.plan_size(size);
    let name = plan.key.clone();
    let summary = {
        let (name, path) = (name.clone(), plan_path.clone());
        let spill_dir = cfg
            .work_dir
            .join("spill")
            .join(format!("validate-{}", ulid::Ulid::new()));
        let budget = cfg.memory_budget;
        blocking(move || pipeline::validate_plan(&name, &path, &spill_dir, budget)).await?
    };
    if let Some(reason) = cortex_index::tenant::tenant_id_problem(&summary.user)
        .or_else(|| cortex_index::tenant::day_index_problem(summary.day_index))
    {
        return Err(BuildError::NotATenantDay {
            plan: plan.location.describe(&plan.key),
            reason,
        });
    }
    if let Some(want) = &dest.expect
        && (summary.user != want.tenant || summary.day_index != want.day_index)
    {
        return Err(BuildError::NotItsKey {
            plan: plan.location.describe(&plan.key),
            header_tenant: summary.user.clone(),
            header_day: summary.day_index,
            key_tenant: want.tenant.clone(),
            key_day: want.day_index,
        });
    }
    report.user.clone_from(&summary.user);
    report.day_index = summary.day_index;
    report.plan_series = summary.series;
    report.plan_chunks = summary.chunks;
    report.repeated_entries = summary.repeated_entries;
    let day = cortex_index::tenant::day_range_ms(summary.day_index).ok_or_else(|| {
        BuildError::Internal(format!("day {} passed validation", summary.day_index))
    })?;
    if let Some(kept) = keep_existing_block(dest, plan, report, day).await? {
        return Ok(kept);
    }
    progress
        .series_total
        .store(summary.series, Ordering::Relaxed);
    gauges.plan_series(summary.series);
    ::metrics::gauge!(metrics::PLAN_START_TIME)
        .set((summary.day_index * cortex_index::DAY_MS / 1000) as f64);
    phase_done("validate", started);
    if progress.is_cancelled() {
        return Err(BuildError::Cancelled);
    }

    progress.set_phase(Phase::Converting);
    let started = Instant::now();
    let runtime = tokio::runtime::Handle::current();
    let local = {
        let (stores, cfg, plan_path, progress, gauges) = (
            stores.clone(),
            cfg.clone(),
            plan_path.clone(),
            Arc::clone(progress),
            Arc::clone(gauges),
        );
        let mut r = std::mem::replace(report, PlanReport::new("", "", 0));
        let (out, r) = tokio::task::spawn_blocking(move || {
            let input = pipeline::PlanInput {
                name: &name,
                plan_path: &plan_path,
                summary: &summary,
                stores: &stores,
                cfg: &cfg,
                progress: &progress,
                gauges: &gauges,
                runtime: &runtime,
            };
            let out = pipeline::convert_plan(&input, &mut r);
            (out.map(|b| (b, summary)), r)
        })
        .await
        .map_err(|e| BuildError::Internal(format!("conversion task failed: {e}")))?;
        *report = r;
        out
    };
    let (local, summary) = local?;
    let _block_guard = RemoveOnDrop((!cfg.keep_local_block).then(|| local.dir.clone()));
    phase_done("convert", started);
    if progress.is_cancelled() {
        return Err(BuildError::Cancelled);
    }
    let bad = report.bad_chunk_total();
    if bad > 0 && (bad as f64) > cfg.max_bad_chunk_fraction * summary.chunks as f64 {
        return Err(BuildError::TooManyBadChunks {
            plan: report.plan.clone(),
            bad,
            total: summary.chunks,
            max_fraction: cfg.max_bad_chunk_fraction,
        });
    }
    report.status = if bad > 0 || report.quarantined_total() > 0 {
        PlanStatus::FinishedWithGaps
    } else {
        PlanStatus::Complete
    };

    progress.set_phase(Phase::Uploading);
    // Another run may have finished this tenant-day while this one converted.
    if let Some(kept) = keep_existing_block(dest, plan, report, day).await? {
        return Ok(kept);
    }
    let started = Instant::now();
    let base = marker_base(dest, plan, report);
    let replaced =
        upload::remove_earlier_blocks(&dest.markers, &base, &dest.blocks, &summary.user).await?;
    if progress.is_cancelled() {
        return Err(BuildError::Cancelled);
    }
    let uploaded = upload::upload_block(
        &local,
        &summary.user,
        &dest.blocks,
        &dest.markers,
        &base,
        progress,
    )
    .await;
    let block_bytes = match uploaded {
        Ok(n) => n,
        Err(e) => {
            // Remove the partial upload now (the W7 record would let the next attempt
            // do it, but an operator should not find half a block meanwhile).
            let ulid = &local.meta.ulid;
            if let Err(d) =
                upload::discard_block(&dest.markers, &base, &dest.blocks, &summary.user, ulid).await
            {
                tracing::warn!(plan = %report.plan, block = %ulid, error = %d, "cannot remove a partial upload; the next attempt will");
            }
            return Err(e);
        }
    };
    ::metrics::counter!(metrics::BLOCK_SIZE).increment(block_bytes);
    ::metrics::counter!(metrics::WRITTEN_SAMPLES).increment(local.meta.stats.num_samples);
    phase_done("upload", started);
    report.block = Some(local.meta.ulid.clone());
    Ok(BuildOutcome {
        ulid: local.meta.ulid.clone(),
        meta: local.meta.clone(),
        report: report.clone(),
        block_bytes,
        replaced_blocks: replaced,
        local_dir: cfg.keep_local_block.then(|| local.dir.clone()),
        kept_existing: false,
    })
}

/// When the blocks bucket already holds a converted block of this tenant-day (not one
/// of this plan's own earlier attempts, which are removed and rebuilt as before, W7),
/// removes this plan's earlier blocks and answers with that block: never two blocks
/// for one tenant-day, whatever work dir or plans location built the first.
async fn keep_existing_block(
    dest: &Destinations,
    plan: &PlanRef,
    report: &mut PlanReport,
    day: (i64, i64),
) -> Result<Option<BuildOutcome>, BuildError> {
    let base = marker_base(dest, plan, report);
    let own = upload::recorded_blocks(&dest.markers, &base).await?;
    let Some(meta) = dest
        .existing
        .find(&dest.blocks, &report.user, day, &own)
        .await?
    else {
        return Ok(None);
    };
    let replaced =
        upload::remove_earlier_blocks(&dest.markers, &base, &dest.blocks, &report.user).await?;
    tracing::warn!(plan = %report.plan, block = %meta.ulid, "the blocks bucket already holds a converted block of this tenant-day; keeping it instead of writing a second one");
    ::metrics::counter!(metrics::KEPT_EXISTING_BLOCKS).increment(1);
    report.block = Some(meta.ulid.clone());
    report.kept_existing_block = true;
    report.series_written = meta.stats.num_series;
    report.samples_written = meta.stats.num_samples;
    report.status = PlanStatus::Complete;
    Ok(Some(BuildOutcome {
        ulid: meta.ulid.clone(),
        meta,
        report: report.clone(),
        block_bytes: 0,
        replaced_blocks: replaced,
        local_dir: None,
        kept_existing: true,
    }))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BuildError> + Send + 'static,
) -> Result<T, BuildError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BuildError::Internal(format!("blocking task failed: {e}")))?
}

struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(p)
            } else {
                std::fs::remove_file(p)
            };
        }
    }
}
