//! The conversion pipeline of one plan, on dedicated threads:
//!
//! ```text
//! plan reader ──tasks──▶ [async fetch stage, remote stores only] ──▶ N CPU workers
//!   (fetch local chunks, decode, normalise labels, merge, clip, snap, encode)
//!   ──results──▶ writer (reorders by plan position, hands each series' chunks to
//!   `tsdb_block::BlockWriter`) ──▶ segments, index, meta.json
//! ```
//!
//! Chunks land in the segment files in plan order and the index in label order, so the
//! block is identical for any thread count and any memory budget. Nothing is finished
//! unless the plan reader confirmed the footer (W18).

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;

use crate::fetch::{ChunkStores, FetchError, Fetched, LocalReader, safe_object_path};
use crate::labels::{LabelConflict, normalise, to_text};
use crate::merge::{MergeScratch, MergeStats, Run, merge_series};
use crate::report::{BadChunk, BadChunkKind, PlanReport, QuarantinedSeries};
use crate::snap::snap_timestamps;
use crate::{BuildConfig, BuildError, BuildProgress, metrics as m};
use cortex_chunk::encoding::decode_samples;
use cortex_chunk::{ChunkErrorKind, ChunkKey, LabelPairs, decode_object};
use futures::StreamExt;
use plan_format::{Compression, PlanReader};
use tsdb_block::meta::BlockMeta;
use tsdb_block::{BlockError, BlockWriter, BlockWriterOptions, EncodedSeries, encode_series};

/// What [`convert_plan`] produced: a finished local block and the report.
#[derive(Debug)]
pub struct LocalBlock {
    /// Block directory (`<work>/blocks/<ULID>`).
    pub dir: PathBuf,
    /// Its meta.
    pub meta: BlockMeta,
}

/// Consecutive series handed between threads in one message, so a thread wakes once
/// per batch rather than once per series (the wake-ups cost several percent of a
/// plan's CPU at ~10 chunks per series). A batch closes at whichever limit it
/// reaches first.
const BATCH_SERIES: usize = 64;
/// Chunk IDs per batch (see [`BATCH_SERIES`]).
const BATCH_CHUNKS: usize = 256;

struct Task {
    seq: u64,
    sid: String,
    ids: Vec<String>,
    fetched: Option<Result<Vec<Fetched>, FetchError>>,
}

struct SeriesOut {
    seq: u64,
    sid: String,
    labels: Option<LabelPairs>,
    encoded: EncodedSeries,
    samples: u64,
    stats: MergeStats,
    snapped: u64,
    bad: Vec<BadChunk>,
    quarantined: Option<QuarantinedSeries>,
    fetched_chunks: u64,
    fetched_bytes: u64,
}

/// Plan facts from the validation pass.
pub(crate) struct PlanSummary {
    pub user: String,
    pub day_index: i64,
    pub series: u64,
    pub chunks: u64,
    pub repeated_entries: u64,
    /// Hashes of series IDs that occur in more than one entry.
    repeated: HashSet<u64>,
}

fn sid_hash(sid: &str) -> u64 {
    // Fixed keys: the same plan always gives the same grouping.
    let mut h =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .build_hasher();
    h.write(sid.as_bytes());
    h.finish()
}

struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn open_plan<'a>(
    name: &str,
    path: &Path,
    counter: Option<Arc<AtomicU64>>,
) -> Result<PlanReader<'a>, BuildError> {
    let compression = Compression::from_name(name).unwrap_or(Compression::None);
    let file = std::fs::File::open(path).map_err(|source| BuildError::Io {
        path: path.to_owned(),
        source,
    })?;
    let reader: Box<dyn Read> = match counter {
        Some(count) => Box::new(CountingReader { inner: file, count }),
        None => Box::new(file),
    };
    Ok(PlanReader::open(name, reader, compression)?)
}

/// Pass 1: reads the whole plan, so a truncated or malformed plan fails before any
/// chunk is fetched, and finds series IDs that repeat (W11). The series-ID hashes go
/// through the external sort (spilling under `spill_dir` beyond `budget`), so memory
/// does not grow with the plan; only the repeated hashes are kept.
pub(crate) fn validate_plan(
    name: &str,
    path: &Path,
    spill_dir: &Path,
    budget: usize,
) -> Result<PlanSummary, BuildError> {
    let summary = summarise_plan(name, path, spill_dir, budget);
    let _ = std::fs::remove_dir_all(spill_dir);
    summary
}

fn summarise_plan(
    name: &str,
    path: &Path,
    spill_dir: &Path,
    budget: usize,
) -> Result<PlanSummary, BuildError> {
    let mut reader = open_plan(name, path, None)?;
    let mut hashes = external_sort::Sorter::new(spill_dir, "series-ids", budget);
    let (mut entries, mut chunks) = (0u64, 0u64);
    let mut rec = [0u8; 16];
    while let Some(e) = reader.next_entry()? {
        // The entry number keeps repeats apart (the sort drops identical records).
        rec[..8].copy_from_slice(&sid_hash(&e.sid).to_be_bytes());
        rec[8..].copy_from_slice(&entries.to_be_bytes());
        hashes.push(&rec).map_err(BlockError::from)?;
        entries += 1;
        chunks += e.chunks.len() as u64;
    }
    let mut sorted = hashes.into_sorted().map_err(BlockError::from)?;
    let (mut series, mut repeated, mut last) = (0u64, HashSet::new(), None);
    while let Some(r) = sorted.next_record().map_err(BlockError::from)? {
        let h = r
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes);
        if h == last {
            repeated.extend(h);
        } else {
            series += 1;
            last = h;
        }
    }
    // Entries sharing a hash are grouped exactly (by series ID) later; the counts here
    // only need to be exact for real repeats, which share the hash too.
    Ok(PlanSummary {
        user: reader.user().to_owned(),
        day_index: reader.day_index(),
        series,
        chunks,
        repeated_entries: entries - series,
        repeated,
    })
}

/// What one plan's conversion reads: the plan, where its chunks are, the settings and
/// where progress goes.
pub(crate) struct PlanInput<'a> {
    /// Plan name (for errors).
    pub name: &'a str,
    /// The validated local plan file.
    pub plan_path: &'a Path,
    /// What validation found in it.
    pub summary: &'a PlanSummary,
    /// Where its chunks are.
    pub stores: &'a ChunkStores,
    /// Build settings.
    pub cfg: &'a BuildConfig,
    /// Progress counters of this build.
    pub progress: &'a BuildProgress,
    /// This build's share of the plan gauges.
    pub gauges: &'a m::PlanGauges,
    /// The runtime the fetch stage runs on (remote stores only).
    pub runtime: &'a tokio::runtime::Handle,
}

/// Converts a validated local plan file into a local block under `work/blocks`.
pub(crate) fn convert_plan(
    input: &PlanInput<'_>,
    report: &mut PlanReport,
) -> Result<LocalBlock, BuildError> {
    let ulid = ulid::Ulid::new().to_string();
    let blocks_dir = input.cfg.work_dir.join("blocks");
    let spill_dir = input.cfg.work_dir.join("spill").join(&ulid);
    let target = BlockTarget {
        blocks_dir: &blocks_dir,
        ulid: &ulid,
        spill_dir: &spill_dir,
    };
    let result = convert_into(input, report, &target);
    let _ = std::fs::remove_dir_all(&spill_dir);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(blocks_dir.join(format!("{ulid}.tmp")));
    }
    result
}

/// Where the block of one plan is written.
struct BlockTarget<'a> {
    blocks_dir: &'a Path,
    ulid: &'a str,
    spill_dir: &'a Path,
}

/// Both ends of a bounded channel.
type Channel<T> = (async_channel::Sender<T>, async_channel::Receiver<T>);

/// A worker's results for one batch, in the batch's order.
type Results = Vec<Result<SeriesOut, BuildError>>;

/// The channels between the stages, each carrying batches of consecutive series:
/// plan reader → (fetch stage →) workers → writer. With local stores the workers
/// read the plan reader's channel directly.
struct Channels {
    tasks: Channel<Vec<Task>>,
    work: Channel<Vec<Task>>,
    out: Channel<Results>,
}

impl Channels {
    fn new(cfg: &BuildConfig, local: bool) -> Self {
        let workers = cfg.workers.max(1);
        let tasks = async_channel::bounded::<Vec<Task>>(workers * 2);
        let work = if local {
            tasks.clone()
        } else {
            async_channel::bounded::<Vec<Task>>(workers * 2)
        };
        Channels {
            tasks,
            work,
            out: async_channel::bounded(workers * 2),
        }
    }
}

fn convert_into(
    input: &PlanInput<'_>,
    report: &mut PlanReport,
    target: &BlockTarget<'_>,
) -> Result<LocalBlock, BuildError> {
    let local = input.stores.all_local();
    let Channels { tasks, work, out } = Channels::new(input.cfg, local);
    let fetch_stage = (!local).then(|| spawn_fetch_stage(input, tasks.1.clone(), work.0.clone()));
    drop(work.0);
    let mut writer = open_writer(input, report, target)?;
    let (plan_result, write_result) = run_stages(input, tasks, work.1, out, &mut writer);
    if let Some(h) = fetch_stage {
        let _ = input.runtime.block_on(h);
    }
    // The plan's own error wins: a writer that stopped because the plan was cut
    // short must not hide that the plan is broken.
    plan_result?;
    write_result?;
    if !writer.pending.is_empty() {
        return Err(BuildError::Internal(format!(
            "{} series results never arrived in order",
            writer.pending.len()
        )));
    }
    writer.finish()
}

/// The fetch stage for remote stores: up to `--fetch-concurrency` series' chunks in
/// flight on the runtime, handed to the workers in plan order, in batches of the
/// series fetched so far (never waiting to fill a batch).
fn spawn_fetch_stage(
    input: &PlanInput<'_>,
    rx: async_channel::Receiver<Vec<Task>>,
    tx: async_channel::Sender<Vec<Task>>,
) -> tokio::task::JoinHandle<()> {
    let (stores, policy, conc) = (
        input.stores.clone(),
        input.cfg.fetch,
        input.cfg.fetch_concurrency.max(1),
    );
    let user: Arc<str> = Arc::from(input.summary.user.as_str());
    input.runtime.spawn(async move {
        let stores = &stores;
        let user = &user;
        let stream = rx
            .flat_map(futures::stream::iter)
            .map(|mut task| async move {
                // Invalid IDs and unsafe paths are fetched as nothing; the worker
                // reports them.
                let keys: Vec<Option<ChunkKey>> = task
                    .ids
                    .iter()
                    .map(|id| {
                        ChunkKey::parse_for_user(id, user)
                            .ok()
                            .filter(|k| safe_object_path(&k.object_path()))
                    })
                    .collect();
                task.fetched = Some(stores.fetch_chunks(&keys, policy).await);
                task
            })
            .buffered(conc)
            .ready_chunks(conc.min(BATCH_SERIES));
        futures::pin_mut!(stream);
        while let Some(t) = stream.next().await {
            if tx.send(t).await.is_err() {
                break;
            }
        }
    })
}

/// The block writer of this plan's day, wrapped with the report and progress.
fn open_writer<'a>(
    input: &PlanInput<'a>,
    report: &'a mut PlanReport,
    target: &BlockTarget<'_>,
) -> Result<Writer<'a>, BuildError> {
    let day_start = input.summary.day_index * cortex_index::DAY_MS;
    let block = BlockWriter::with_options(
        target.blocks_dir,
        target.ulid,
        &input.summary.user,
        day_start,
        day_start + cortex_index::DAY_MS,
        BlockWriterOptions {
            memory_budget: input.cfg.memory_budget,
            spill_dir: Some(target.spill_dir.to_owned()),
            max_segment_size: input.cfg.segment_size,
        },
    )?;
    Ok(Writer {
        block,
        pending: BTreeMap::new(),
        next_seq: 0,
        report,
        progress: input.progress,
        gauges: input.gauges,
    })
}

/// Runs the plan reader and the CPU workers on threads of their own and writes their
/// results on this thread; returns the plan reader's and the writer's outcome.
fn run_stages(
    input: &PlanInput<'_>,
    tasks: Channel<Vec<Task>>,
    work_rx: async_channel::Receiver<Vec<Task>>,
    out: Channel<Results>,
    writer: &mut Writer<'_>,
) -> (Result<(), BuildError>, Result<(), BuildError>) {
    let (task_tx, task_rx) = tasks;
    let (out_tx, out_rx) = out;
    let cancel = AtomicBool::new(false);
    let counter = Arc::clone(&input.progress.plan_bytes_read);
    std::thread::scope(|scope| {
        let producer = {
            let (tx, cancel) = (task_tx, &cancel);
            std::thread::Builder::new()
                .name("plan-reader".into())
                .spawn_scoped(scope, move || {
                    let r = produce(
                        input.name,
                        input.plan_path,
                        input.summary,
                        counter,
                        input.gauges,
                        &tx,
                        cancel,
                    );
                    tx.close();
                    r
                })
        };
        let spawned = spawn_workers(scope, input, &work_rx, &out_tx, &cancel);
        drop(out_tx);
        drop(work_rx);
        let mut write_result = Ok(());
        'batches: while let Ok(batch) = out_rx.recv_blocking() {
            for msg in batch {
                if let Err(e) = msg.and_then(|o| writer.accept(o)) {
                    write_result = Err(e);
                    break 'batches;
                }
            }
        }
        if write_result.is_err() {
            cancel.store(true, Ordering::Relaxed);
            out_rx.close();
            task_rx.close();
        }
        // A worker that failed to spawn is a resource problem worth reporting.
        for s in spawned {
            match s {
                Ok(h) => {
                    let _ = h.join();
                }
                Err(e) if write_result.is_ok() => {
                    write_result = Err(BuildError::Internal(format!("cannot start worker: {e}")));
                }
                Err(_) => {}
            }
        }
        let plan_result = match producer {
            Ok(h) => h
                .join()
                .unwrap_or_else(|_| Err(BuildError::Internal("plan reader panicked".into()))),
            Err(e) => Err(BuildError::Internal(format!(
                "cannot start plan reader: {e}"
            ))),
        };
        (plan_result, write_result)
    })
}

/// Starts `--workers` CPU threads: decode, merge, encode one series at a time.
fn spawn_workers<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    input: &'env PlanInput<'env>,
    work_rx: &async_channel::Receiver<Vec<Task>>,
    out_tx: &async_channel::Sender<Results>,
    cancel: &'env AtomicBool,
) -> Vec<std::io::Result<std::thread::ScopedJoinHandle<'scope, ()>>> {
    let day_start = input.summary.day_index * cortex_index::DAY_MS;
    let day_end = day_start + cortex_index::DAY_MS;
    (0..input.cfg.workers.max(1))
        .map(|i| {
            let (rx, tx) = (work_rx.clone(), out_tx.clone());
            std::thread::Builder::new()
                .name(format!("convert-{i}"))
                .spawn_scoped(scope, move || {
                    let mut w = Worker::default();
                    while let Ok(batch) = rx.recv_blocking() {
                        let mut results = Vec::with_capacity(batch.len());
                        for task in batch {
                            if cancel.load(Ordering::Relaxed) {
                                return;
                            }
                            results.push(w.process(
                                task,
                                &input.summary.user,
                                input.stores,
                                input.cfg,
                                day_start,
                                day_end,
                            ));
                        }
                        if tx.send_blocking(results).is_err() {
                            break;
                        }
                    }
                })
        })
        .collect()
}

/// Pass 2: streams entries to the workers; repeated series are held back, merged and
/// sent last in series-ID order.
fn produce(
    name: &str,
    path: &Path,
    summary: &PlanSummary,
    counter: Arc<AtomicU64>,
    gauges: &m::PlanGauges,
    tx: &async_channel::Sender<Vec<Task>>,
    cancel: &AtomicBool,
) -> Result<(), BuildError> {
    let mut reader = open_plan(name, path, Some(Arc::clone(&counter)))?;
    let mut held: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seq = 0u64;
    let mut since_gauge = 0;
    let mut batch = Batch::default();
    let mut send = |task: Task| match batch.add(task) {
        Some(full) => tx.send_blocking(full).is_ok(),
        None => true,
    };
    while let Some(e) = reader.next_entry()? {
        if cancel.load(Ordering::Relaxed) {
            return Ok(());
        }
        since_gauge += 1;
        if since_gauge == 256 {
            since_gauge = 0;
            gauges.file_position(counter.load(Ordering::Relaxed));
        }
        if summary.repeated.contains(&sid_hash(&e.sid)) {
            let ids = held.entry(e.sid).or_default();
            for c in e.chunks {
                if !ids.contains(&c) {
                    ids.push(c);
                }
            }
            continue;
        }
        let task = Task {
            seq,
            sid: e.sid,
            ids: e.chunks,
            fetched: None,
        };
        seq += 1;
        if !send(task) {
            return Ok(());
        }
    }
    gauges.file_position(counter.load(Ordering::Relaxed));
    for (sid, ids) in held {
        let task = Task {
            seq,
            sid,
            ids,
            fetched: None,
        };
        seq += 1;
        if !send(task) {
            return Ok(());
        }
    }
    let last = batch.take();
    if !last.is_empty() {
        let _ = tx.send_blocking(last);
    }
    Ok(())
}

/// The series the plan reader gathers for its next message.
#[derive(Default)]
struct Batch {
    tasks: Vec<Task>,
    chunks: usize,
}

impl Batch {
    /// Adds a task; returns the batch when it is full.
    fn add(&mut self, task: Task) -> Option<Vec<Task>> {
        self.chunks += task.ids.len();
        self.tasks.push(task);
        (self.chunks >= BATCH_CHUNKS || self.tasks.len() >= BATCH_SERIES).then(|| self.take())
    }

    fn take(&mut self) -> Vec<Task> {
        self.chunks = 0;
        std::mem::take(&mut self.tasks)
    }
}

#[derive(Default)]
struct Worker {
    ts: Vec<i64>,
    vs: Vec<f64>,
    runs: Vec<Run>,
    order: Vec<(i64, i64, usize)>,
    scratch: MergeScratch,
    out_t: Vec<i64>,
    out_v: Vec<f64>,
    local: LocalReader,
}

/// One chunk object as stored, or why the chunk is bad.
type ChunkObject<'r> = Result<(ChunkKey, String, ObjectBytes<'r>), (BadChunkKind, String)>;

/// A chunk object's bytes: from the fetch stage, or read into the worker's buffer.
enum ObjectBytes<'r> {
    Fetched(Bytes),
    Local(&'r [u8]),
}

impl std::ops::Deref for ObjectBytes<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Self::Fetched(b) => b,
            Self::Local(b) => b,
        }
    }
}

impl Worker {
    /// Decodes, merges and encodes one series.
    fn process(
        &mut self,
        task: Task,
        user: &str,
        stores: &ChunkStores,
        cfg: &BuildConfig,
        day_start: i64,
        day_end: i64,
    ) -> Result<SeriesOut, BuildError> {
        let Task {
            seq,
            sid,
            ids,
            fetched,
        } = task;
        let mut fetched = fetched.transpose()?;
        self.ts.clear();
        self.vs.clear();
        self.runs.clear();
        self.order.clear();
        let mut out = SeriesOut {
            seq,
            sid,
            labels: None,
            encoded: EncodedSeries::default(),
            samples: 0,
            stats: MergeStats::default(),
            snapped: 0,
            bad: Vec::new(),
            quarantined: None,
            fetched_chunks: 0,
            fetched_bytes: 0,
        };
        let conflict = self.decode_chunks(&ids, fetched.as_deref_mut(), user, stores, &mut out)?;
        if let Some(c) = conflict {
            out.labels = None;
            out.quarantined = Some(QuarantinedSeries {
                series_id: out.sid.clone(),
                reason: c.to_string(),
                chunk_ids: ids,
            });
            return Ok(out);
        }
        self.merge_and_encode(
            &ids,
            cfg.timestamp_tolerance_ms,
            day_start,
            day_end,
            &mut out,
        );
        // Keep the buffers from growing without bound after one huge series.
        const KEEP: usize = 1 << 20;
        if self.ts.capacity() > 4 * KEEP {
            self.ts = Vec::with_capacity(KEEP);
            self.vs = Vec::with_capacity(KEEP);
        }
        Ok(out)
    }

    /// The object of chunk `i` (`id`): from the fetch stage's results, else read from
    /// its local store.
    fn chunk_object<'r>(
        i: usize,
        id: &str,
        fetched: Option<&mut [Fetched]>,
        local: &'r mut LocalReader,
        user: &str,
        stores: &ChunkStores,
    ) -> Result<ChunkObject<'r>, BuildError> {
        let key = match ChunkKey::parse_for_user(id, user) {
            Ok(k) => k,
            Err(e) => return Ok(Err((BadChunkKind::InvalidId, e.to_string()))),
        };
        let object = key.object_path();
        if !safe_object_path(&object) {
            return Ok(Err((
                BadChunkKind::InvalidId,
                format!("unsafe object path {object:?}"),
            )));
        }
        let store = stores.for_chunk(key.from);
        let got = match fetched {
            Some(v) => match std::mem::replace(&mut v[i], Fetched::Missing) {
                Fetched::Found(b) => Some(ObjectBytes::Fetched(b)),
                Fetched::Missing => None,
            },
            None => match store.local_root() {
                Some(root) => local.read(root, &object)?.map(ObjectBytes::Local),
                None => {
                    return Err(BuildError::Internal(
                        "remote chunk store without a fetch stage".into(),
                    ));
                }
            },
        };
        let Some(bytes) = got else {
            let table = stores.chunk_table(key.from);
            return Ok(Err((
                BadChunkKind::Missing,
                format!(
                    "object {} not found",
                    store.describe(&object, table.as_deref())
                ),
            )));
        };
        Ok(Ok((key, object, bytes)))
    }

    /// Decodes every chunk of a series into one run each, recording bad chunks in
    /// `out`; returns the first label conflict (the series is then quarantined).
    fn decode_chunks(
        &mut self,
        ids: &[String],
        mut fetched: Option<&mut [Fetched]>,
        user: &str,
        stores: &ChunkStores,
        out: &mut SeriesOut,
    ) -> Result<Option<LabelConflict>, BuildError> {
        let mut first_chunk = String::new();
        let mut conflict: Option<LabelConflict> = None;
        for (i, id) in ids.iter().enumerate() {
            let bad = |kind, reason: String| BadChunk {
                series_id: out.sid.clone(),
                chunk_id: id.clone(),
                kind,
                reason,
            };
            let (key, object, bytes) = match Self::chunk_object(
                i,
                id,
                fetched.as_deref_mut(),
                &mut self.local,
                user,
                stores,
            )? {
                Ok(found) => found,
                Err((kind, reason)) => {
                    out.bad.push(bad(kind, reason));
                    continue;
                }
            };
            out.fetched_chunks += 1;
            out.fetched_bytes += bytes.len() as u64;
            let mut chunk = match decode_object(&key, &bytes) {
                Ok(c) => c,
                Err(e) => {
                    let kind = match e.kind {
                        ChunkErrorKind::Checksum { .. } => BadChunkKind::Checksum,
                        ChunkErrorKind::Encoding(_) => BadChunkKind::Undecodable,
                        _ => BadChunkKind::Corrupt,
                    };
                    out.bad.push(bad(kind, e.to_string()));
                    continue;
                }
            };
            let mut labels = std::mem::take(&mut chunk.metadata.labels);
            if let Err(c) = normalise(&mut labels, id) {
                conflict.get_or_insert(c);
                continue;
            }
            match &out.labels {
                None => {
                    out.labels = Some(labels);
                    first_chunk.clone_from(id);
                }
                Some(first) if *first != labels => {
                    conflict.get_or_insert(LabelConflict::DifferentSeries {
                        first_chunk: first_chunk.clone(),
                        first: to_text(first),
                        other_chunk: id.clone(),
                        other: to_text(&labels),
                    });
                    continue;
                }
                Some(_) => {}
            }
            let start = self.ts.len();
            if let Err(e) = decode_samples(chunk.encoding, chunk.data, &mut self.ts, &mut self.vs) {
                let store = stores.for_chunk(key.from);
                out.bad.push(bad(
                    BadChunkKind::Undecodable,
                    format!("chunk {}: {e}", store.describe(&object, None)),
                ));
                continue;
            }
            self.order
                .push((chunk.metadata.from, chunk.metadata.through, i));
            self.runs.push(Run {
                start,
                end: self.ts.len(),
                rank: 0,
            });
        }
        Ok(conflict)
    }

    /// Merges the decoded runs into the day's samples (replicas deduplicated), snaps
    /// timestamps and encodes the result into `out`.
    fn merge_and_encode(
        &mut self,
        ids: &[String],
        tolerance_ms: i64,
        day_start: i64,
        day_end: i64,
        out: &mut SeriesOut,
    ) {
        // Rank chunks by (from, through, chunk ID): the documented tie-break.
        let mut ranked: Vec<usize> = (0..self.order.len()).collect();
        ranked.sort_by(|&a, &b| {
            let (fa, ta, ia) = self.order[a];
            let (fb, tb, ib) = self.order[b];
            (fa, ta, &ids[ia]).cmp(&(fb, tb, &ids[ib]))
        });
        for (rank, &k) in ranked.iter().enumerate() {
            self.runs[k].rank = rank as u32;
        }
        out.stats = merge_series(
            &self.runs,
            &mut self.ts,
            &mut self.vs,
            day_start,
            day_end,
            &mut self.scratch,
            &mut self.out_t,
            &mut self.out_v,
        );
        out.snapped = snap_timestamps(&mut self.out_t, tolerance_ms, day_end);
        out.samples = self.out_t.len() as u64;
        if !self.out_t.is_empty() {
            encode_series(&self.out_t, &self.out_v, &mut out.encoded);
        }
    }
}

struct Writer<'a> {
    block: BlockWriter,
    pending: BTreeMap<u64, SeriesOut>,
    next_seq: u64,
    report: &'a mut PlanReport,
    progress: &'a BuildProgress,
    gauges: &'a m::PlanGauges,
}

impl Writer<'_> {
    fn accept(&mut self, out: SeriesOut) -> Result<(), BuildError> {
        self.pending.insert(out.seq, out);
        while let Some(o) = self.pending.remove(&self.next_seq) {
            self.next_seq += 1;
            self.write(o)?;
        }
        Ok(())
    }

    fn write(&mut self, o: SeriesOut) -> Result<(), BuildError> {
        let r = &mut *self.report;
        r.samples_decoded += o.stats.input;
        r.samples_outside_day += o.stats.outside_window;
        r.duplicate_samples += o.stats.duplicates;
        r.conflicting_samples += o.stats.conflicts;
        r.out_of_order_samples += o.stats.out_of_order;
        r.snapped_timestamps += o.snapped;
        metrics::counter!(m::FETCHED_CHUNKS).increment(o.fetched_chunks);
        metrics::counter!(m::FETCHED_CHUNK_BYTES).increment(o.fetched_bytes);
        metrics::counter!(m::DECODED_SAMPLES).increment(o.stats.input);
        metrics::counter!(m::SERIES).increment(1);
        if o.stats.conflicts > 0 {
            metrics::counter!(m::CONFLICTING_SAMPLES).increment(o.stats.conflicts);
        }
        for b in &o.bad {
            metrics::counter!(m::BAD_CHUNKS, "kind" => b.kind.as_str()).increment(1);
            if b.kind == BadChunkKind::Missing {
                metrics::counter!(m::CHUNKS_NOT_FOUND).increment(1);
            }
            tracing::debug!(series = %b.series_id, chunk = %b.chunk_id, reason = %b.reason, "bad chunk");
        }
        for b in o.bad {
            r.add_bad_chunk(b);
        }
        if let Some(q) = o.quarantined {
            metrics::counter!(m::QUARANTINED_SERIES).increment(1);
            tracing::warn!(series = %q.series_id, reason = %q.reason, "series quarantined");
            r.add_quarantined(q);
        }
        let p = self.progress;
        p.series_done.fetch_add(1, Ordering::Relaxed);
        p.chunks_fetched
            .fetch_add(o.fetched_chunks, Ordering::Relaxed);
        p.bytes_fetched
            .fetch_add(o.fetched_bytes, Ordering::Relaxed);
        p.samples_decoded
            .fetch_add(o.stats.input, Ordering::Relaxed);
        p.samples_written.fetch_add(o.samples, Ordering::Relaxed);
        self.gauges.series_done();
        let Some(labels) = o.labels else {
            return Ok(());
        };
        // A series with nothing inside the day is left out (Cortex omits such series too).
        self.block.add_encoded(&labels, &o.encoded, o.samples)?;
        self.gauges
            .series_in_memory(self.block.series_in_memory() as u64);
        Ok(())
    }

    fn finish(self) -> Result<LocalBlock, BuildError> {
        let Writer { block, report, .. } = self;
        let written = block.finish()?;
        for labels in written.left_out {
            report.add_quarantined(QuarantinedSeries {
                series_id: String::new(),
                reason: format!(
                    "two series IDs normalise to {} with overlapping chunks; the second was left out",
                    to_text(&labels)
                ),
                chunk_ids: Vec::new(),
            });
        }
        metrics::counter!(m::SPILL_BYTES).increment(written.spilled_bytes);
        report.spill_bytes = written.spilled_bytes;
        report.series_written = written.meta.stats.num_series;
        report.samples_written = written.meta.stats.num_samples;
        Ok(LocalBlock {
            dir: written.dir,
            meta: written.meta,
        })
    }
}
