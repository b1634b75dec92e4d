//! Offline shadow comparison: re-reads the chunk store for one tenant-day plan and
//! compares it with the blocks in the output bucket, sample for sample.
//!
//! The expected side is computed here from the chunk objects with a deliberately
//! plain algorithm (every sample of every replica chunk into one sorted list, first
//! replica by `(from, through, chunk ID)` wins on equal timestamps), not with the
//! builder's merge core, so a bug in the builder's hot path cannot hide itself. This
//! crate does not depend on the builder at all: it shares only the chunk-store access
//! (`chunk-store`), the format decoders and label normalisation (`cortex-chunk`) and
//! the timestamp snapping rule (`tsdb-block`), which are checked against Cortex's own
//! output elsewhere.
//!
//! A tenant-day is OK when every series the chunks hold is in the blocks with exactly
//! the same samples (timestamps and value bits), the blocks hold no other series, and
//! every block covering the day could be read completely, and exactly one block covers
//! it (two blocks with the same samples, e.g. from a second conversion, are an error).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chunk_store::{ChunkStores, FetchPolicy, Fetched};
use cortex_chunk::encoding::decode_samples;
use cortex_chunk::labels::{normalise, to_text};
use cortex_chunk::{ChunkKey, decode_object};
use cortex_index::DAY_MS;
use futures::StreamExt;
use plan_format::{Compression, PlanReader};
use storage::StoreLocation;
use tsdb_block::{BlockMeta, BlockReader};

/// Settings of a verification.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// The chunk stores the plans point into.
    pub stores: ChunkStores,
    /// The converted blocks (`<tenant>/<ULID>/`).
    pub blocks: StoreLocation,
    /// Scratch space for downloaded blocks.
    pub work_dir: PathBuf,
    /// Series whose chunks are fetched at once.
    pub fetch_concurrency: usize,
    /// The timestamp tolerance the blocks were built with (ms, 0 = off).
    pub timestamp_tolerance_ms: i64,
    /// Differences, missing and extra series listed per tenant-day (all are counted).
    pub max_listed: usize,
}

/// The verdict on one tenant-day.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DayReport {
    /// Tenant.
    pub tenant: String,
    /// Day index (days since the Unix epoch).
    pub day: i64,
    /// Blocks (ULIDs) covering the day.
    pub blocks: Vec<String>,
    /// Series with samples in the chunk store.
    pub series_expected: u64,
    /// Of those, identical in the blocks.
    pub series_matched: u64,
    /// Samples compared (expected side).
    pub samples_expected: u64,
    /// Series present on both sides with different samples.
    pub series_differing: u64,
    /// The first differences, one line per series.
    pub differences: Vec<String>,
    /// Series in the chunks but not in the blocks.
    pub series_missing: u64,
    /// Their labels (first few).
    pub missing: Vec<String>,
    /// Series in the blocks but not in the chunks.
    pub series_extra: u64,
    /// Their labels (first few).
    pub extra: Vec<String>,
    /// Chunk objects the index lists but the store does not have (absent on both sides).
    pub missing_chunks: u64,
    /// Chunk objects that cannot be decoded (absent on both sides).
    pub bad_chunks: u64,
    /// Series whose chunks disagree on their labels (left out by the builder too).
    pub quarantined_series: u64,
    /// Why the day could not be compared at all (unreadable block, no block…).
    pub errors: Vec<String>,
}

impl DayReport {
    /// Whether the blocks hold exactly the chunk store's samples.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
            && self.series_differing == 0
            && self.series_missing == 0
            && self.series_extra == 0
    }
}

/// Why a plan could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The plan file is unreadable or malformed.
    #[error("plan {plan}: {reason}")]
    Plan {
        /// The plan file.
        plan: String,
        /// What is wrong.
        reason: String,
    },
    /// Listing the blocks failed.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
}

/// The expected side of one series.
struct Expected {
    labels: Vec<(String, String)>,
    ts: Vec<i64>,
    vs: Vec<f64>,
}

enum SeriesOutcome {
    Expected(Expected),
    /// No readable chunk, or no sample inside the day.
    Empty,
    Quarantined,
}

struct SeriesRead {
    outcome: SeriesOutcome,
    missing_chunks: u64,
    bad_chunks: u64,
}

/// Tenant, day index and chunk IDs per series ID of a plan.
type PlanContent = (String, i64, BTreeMap<String, Vec<String>>);

/// Block series by labels: (block index, entry) for each block holding them.
type SeriesByLabels = HashMap<Vec<(String, String)>, Vec<(usize, tsdb_block::index::SeriesEntry)>>;

/// Reads a local plan file completely: tenant, day and chunk IDs per series ID.
fn read_plan(path: &Path) -> Result<PlanContent, VerifyError> {
    let name = path.display().to_string();
    let bad = |reason: String| VerifyError::Plan {
        plan: name.clone(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let compression = Compression::from_name(&name).unwrap_or(Compression::None);
    let mut reader = PlanReader::open(&name, file, compression).map_err(|e| bad(e.to_string()))?;
    let mut series: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Some(e) = reader.next_entry().map_err(|e| bad(e.to_string()))? {
        series.entry(e.sid).or_default().extend(e.chunks);
    }
    Ok((reader.user().to_owned(), reader.day_index(), series))
}

/// Fetches and decodes one series' chunks and merges them the plain way.
async fn read_series(
    user: String,
    ids: Vec<String>,
    stores: ChunkStores,
    day_start: i64,
    tolerance_ms: i64,
) -> SeriesRead {
    let mut objects: Vec<(String, ChunkKey, _)> = Vec::with_capacity(ids.len());
    let (mut missing_chunks, mut bad_chunks) = (0, 0);
    let keys: Vec<Option<ChunkKey>> = ids
        .iter()
        .map(|id| ChunkKey::parse_for_user(id, &user).ok())
        .collect();
    bad_chunks += keys.iter().filter(|k| k.is_none()).count() as u64;
    // No retries: verify reads what the store answers now.
    let policy = FetchPolicy {
        retries: 0,
        ..FetchPolicy::default()
    };
    match stores.fetch_chunks(&keys, policy).await {
        Ok(fetched) => {
            for ((id, key), got) in ids.iter().zip(keys).zip(fetched) {
                let Some(key) = key else { continue };
                match got {
                    Fetched::Found(bytes) => objects.push((id.clone(), key, bytes)),
                    Fetched::Missing => missing_chunks += 1,
                }
            }
        }
        // A store failure is not a property of the data: report it as an error of
        // the series' chunks (counted as bad), the day then shows the series as
        // differing.
        Err(e) => {
            tracing::warn!(error = %e, "chunk fetch failed");
            bad_chunks += keys.iter().filter(|k| k.is_some()).count() as u64;
        }
    }
    // Replicas rank by (from, through, chunk ID); a chunk's metadata reproduces its
    // key's times (checked when decoding), so the key's times are the metadata's.
    objects.sort_by(|a, b| (a.1.from, a.1.through, &a.0).cmp(&(b.1.from, b.1.through, &b.0)));
    let merged = tokio::task::spawn_blocking(move || {
        let day_end = day_start + DAY_MS;
        // (timestamp, rank of the chunk, value bits): sorting puts the winning replica
        // first among equal timestamps.
        let mut samples: Vec<(i64, u32, u64)> = Vec::new();
        let mut labels: Option<Vec<(String, String)>> = None;
        let mut bad = 0u64;
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        for (rank, (id, key, bytes)) in objects.iter().enumerate() {
            let rank = rank as u32;
            let Ok(chunk) = decode_object(key, bytes) else {
                bad += 1;
                continue;
            };
            let mut l = chunk.metadata.labels.clone();
            if normalise(&mut l, id).is_err() {
                return (SeriesOutcome::Quarantined, bad);
            }
            match &labels {
                None => labels = Some(l),
                Some(first) if *first != l => return (SeriesOutcome::Quarantined, bad),
                Some(_) => {}
            }
            ts.clear();
            vs.clear();
            if decode_samples(chunk.encoding, chunk.data, &mut ts, &mut vs).is_err() {
                bad += 1;
                continue;
            }
            // A sample that does not advance inside its own chunk was written out of
            // order by Cortex and never served: it is not part of the series.
            let mut last = i64::MIN;
            for (&t, &v) in ts.iter().zip(&vs) {
                if t <= last {
                    continue;
                }
                last = t;
                if (day_start..day_end).contains(&t) {
                    samples.push((t, rank, v.to_bits()));
                }
            }
        }
        samples.sort();
        samples.dedup_by(|later, earlier| later.0 == earlier.0);
        let (Some(labels), false) = (labels, samples.is_empty()) else {
            return (SeriesOutcome::Empty, bad);
        };
        let mut ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
        let vs: Vec<f64> = samples.iter().map(|s| f64::from_bits(s.2)).collect();
        tsdb_block::snap::snap_timestamps(&mut ts, tolerance_ms, day_end);
        (SeriesOutcome::Expected(Expected { labels, ts, vs }), bad)
    })
    .await;
    match merged {
        Ok((outcome, bad)) => SeriesRead {
            outcome,
            missing_chunks,
            bad_chunks: bad_chunks + bad,
        },
        Err(e) => {
            tracing::error!(error = %e, "series decode task failed");
            SeriesRead {
                outcome: SeriesOutcome::Empty,
                missing_chunks,
                bad_chunks: bad_chunks + ids.len() as u64,
            }
        }
    }
}

/// The blocks of one tenant (meta.json and file names), listed once and reused for
/// all of the tenant's days: listing per day would cost days² requests.
#[derive(Debug, Default)]
pub struct BlockCatalog {
    tenant: Option<String>,
    blocks: Vec<(String, BlockMeta, Vec<String>)>,
    errors: Vec<String>,
}

impl BlockCatalog {
    async fn load(&mut self, cfg: &VerifyConfig, tenant: &str) -> Result<(), VerifyError> {
        if self.tenant.as_deref() == Some(tenant) {
            return Ok(());
        }
        self.blocks.clear();
        self.errors.clear();
        let objects = cfg.blocks.list(&format!("{tenant}/")).await?;
        let mut by_block: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, _) in &objects {
            let mut parts = key.splitn(3, '/');
            if let (Some(_), Some(ulid), Some(rest)) = (parts.next(), parts.next(), parts.next()) {
                by_block
                    .entry(ulid.to_owned())
                    .or_default()
                    .push(rest.to_owned());
            }
        }
        for (ulid, files) in by_block {
            if !files.iter().any(|f| f == "meta.json") {
                // An upload in progress or an abandoned attempt: meta.json goes last.
                continue;
            }
            let meta_key = format!("{tenant}/{ulid}/meta.json");
            match cfg.blocks.get(&meta_key).await {
                Ok(b) => match serde_json::from_slice::<BlockMeta>(&b) {
                    Ok(m) => self.blocks.push((ulid, m, files)),
                    Err(e) => self
                        .errors
                        .push(format!("{}: {e}", cfg.blocks.describe(&meta_key))),
                },
                Err(e) => self.errors.push(e.to_string()),
            }
        }
        self.tenant = Some(tenant.to_owned());
        Ok(())
    }
}

/// Downloads every block of the catalog's tenant overlapping `[day_start, day_start + 1 day)`.
async fn download_blocks(
    cfg: &VerifyConfig,
    catalog: &BlockCatalog,
    tenant: &str,
    day_start: i64,
    into: &Path,
    report: &mut DayReport,
) -> Vec<BlockReader> {
    report.errors.extend(catalog.errors.iter().cloned());
    let mut readers = Vec::new();
    for (ulid, meta, files) in &catalog.blocks {
        if meta.max_time <= day_start || meta.min_time >= day_start + DAY_MS {
            continue;
        }
        report.blocks.push(ulid.clone());
        let dir = into.join(ulid);
        let mut failed = None;
        for f in files {
            let key = format!("{tenant}/{ulid}/{f}");
            let target = dir.join(f);
            let written = match cfg.blocks.get(&key).await {
                Ok(bytes) => target
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::write(&target, &bytes))
                    .map_err(|e| format!("{}: {e}", target.display())),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = written {
                failed = Some(e);
                break;
            }
        }
        if let Some(e) = failed {
            report.errors.push(format!("block {ulid}: {e}"));
            continue;
        }
        match BlockReader::open(&dir) {
            Ok(r) => readers.push(r),
            Err(e) => report
                .errors
                .push(format!("block {ulid} is unreadable: {e}")),
        }
    }
    readers
}

/// Compares one tenant-day: the plan at `plan` (a local file) against the blocks.
/// Pass the same catalog for consecutive plans (plans sorted by tenant list each
/// tenant's blocks once).
pub async fn verify_plan(
    plan: &Path,
    cfg: &VerifyConfig,
    catalog: &mut BlockCatalog,
) -> Result<DayReport, VerifyError> {
    let (tenant, day, series) = read_plan(plan)?;
    let day_start = day * DAY_MS;
    let mut report = DayReport {
        tenant: tenant.clone(),
        day,
        ..DayReport::default()
    };
    std::fs::create_dir_all(&cfg.work_dir).map_err(|e| VerifyError::Plan {
        plan: plan.display().to_string(),
        reason: format!("work dir {}: {e}", cfg.work_dir.display()),
    })?;
    let scratch = tempfile::tempdir_in(&cfg.work_dir).map_err(|e| VerifyError::Plan {
        plan: plan.display().to_string(),
        reason: format!("work dir {}: {e}", cfg.work_dir.display()),
    })?;
    catalog.load(cfg, &tenant).await?;
    let blocks = download_blocks(
        cfg,
        catalog,
        &tenant,
        day_start,
        scratch.path(),
        &mut report,
    )
    .await;
    if report.blocks.len() > 1 {
        // Identical samples in two blocks would still compare equal: a second
        // conversion of the day (or any overlapping block) is an error of its own.
        report.errors.push(format!(
            "{} blocks of tenant {tenant} overlap day {}: {}; a converted tenant-day must have exactly one block",
            report.blocks.len(),
            cortex_index::schema::format_day(day),
            report.blocks.join(", ")
        ));
    }
    if report.blocks.is_empty() && report.errors.is_empty() {
        report.errors.push(format!(
            "no block of tenant {tenant} covers day {} in {}",
            cortex_index::schema::format_day(day),
            cfg.blocks.describe(&format!("{tenant}/"))
        ));
    }
    // Every block series by its labels; `true` once an expected series claimed it.
    let mut in_blocks: SeriesByLabels = HashMap::new();
    for (i, b) in blocks.iter().enumerate() {
        match b.series() {
            Ok(entries) => {
                for e in entries {
                    in_blocks.entry(e.labels.clone()).or_default().push((i, e));
                }
            }
            Err(e) => report
                .errors
                .push(format!("block {}: index unreadable: {e}", b.meta.ulid)),
        }
    }
    let blocks = Arc::new(blocks);
    let mut reads = futures::stream::iter(series.into_values().map(|ids| {
        read_series(
            tenant.clone(),
            ids,
            cfg.stores.clone(),
            day_start,
            cfg.timestamp_tolerance_ms,
        )
    }))
    .buffered(cfg.fetch_concurrency.max(1));
    let (mut ts, mut vs) = (Vec::new(), Vec::new());
    while let Some(read) = reads.next().await {
        report.missing_chunks += read.missing_chunks;
        report.bad_chunks += read.bad_chunks;
        let expected = match read.outcome {
            SeriesOutcome::Expected(e) => e,
            SeriesOutcome::Empty => continue,
            SeriesOutcome::Quarantined => {
                report.quarantined_series += 1;
                continue;
            }
        };
        report.series_expected += 1;
        report.samples_expected += expected.ts.len() as u64;
        let Some(found) = in_blocks.remove(&expected.labels) else {
            report.series_missing += 1;
            if report.missing.len() < cfg.max_listed {
                report.missing.push(to_text(&expected.labels));
            }
            continue;
        };
        ts.clear();
        vs.clear();
        let mut unreadable = None;
        for (b, entry) in &found {
            if let Err(e) = blocks[*b].read_samples(entry, &mut ts, &mut vs) {
                unreadable = Some(format!("block {}: {e}", blocks[*b].meta.ulid));
            }
        }
        if found.len() > 1 {
            // The same series in several blocks of the day: what a query would see.
            let mut pairs: Vec<(i64, u64)> = ts
                .iter()
                .zip(&vs)
                .map(|(&t, &v)| (t, v.to_bits()))
                .collect();
            pairs.sort();
            pairs.dedup_by_key(|p| p.0);
            ts = pairs.iter().map(|p| p.0).collect();
            vs = pairs.iter().map(|p| f64::from_bits(p.1)).collect();
        }
        let difference = match unreadable {
            Some(e) => Some(e),
            None => first_difference(&expected.ts, &expected.vs, &ts, &vs),
        };
        match difference {
            None => report.series_matched += 1,
            Some(d) => {
                report.series_differing += 1;
                if report.differences.len() < cfg.max_listed {
                    report
                        .differences
                        .push(format!("{}: {d}", to_text(&expected.labels)));
                }
            }
        }
    }
    let mut extra: Vec<String> = in_blocks.keys().map(|l| to_text(l)).collect();
    extra.sort();
    report.series_extra = extra.len() as u64;
    extra.truncate(cfg.max_listed);
    report.extra = extra;
    Ok(report)
}

fn show(t: i64, v: f64) -> String {
    format!("({t}, {v})")
}

/// The first place two sample lists differ, in words.
fn first_difference(et: &[i64], ev: &[f64], at: &[i64], av: &[f64]) -> Option<String> {
    let n = et.len().min(at.len());
    for i in 0..n {
        if et[i] != at[i] || ev[i].to_bits() != av[i].to_bits() {
            return Some(format!(
                "sample {i}: chunks have {}, block has {}",
                show(et[i], ev[i]),
                show(at[i], av[i])
            ));
        }
    }
    match et.len().cmp(&at.len()) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Greater => Some(format!(
            "block ends after {n} of {} samples; first missing {}",
            et.len(),
            show(et[n], ev[n])
        )),
        std::cmp::Ordering::Less => Some(format!(
            "block has {} samples, chunks {n}; first extra {}",
            at.len(),
            show(at[n], av[n])
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::first_difference;

    #[test]
    fn differences_are_named_at_the_first_sample() {
        assert_eq!(
            first_difference(&[1, 2], &[1.0, 2.0], &[1, 2], &[1.0, 2.0]),
            None
        );
        let d = first_difference(&[1, 2], &[1.0, 2.0], &[1, 2], &[1.0, 2.5]).unwrap_or_default();
        assert!(
            d.starts_with("sample 1: chunks have (2, 2), block has (2, 2.5)"),
            "{d}"
        );
        let d = first_difference(&[1, 2, 3], &[0.0; 3], &[1, 2], &[0.0; 2]).unwrap_or_default();
        assert!(d.contains("block ends after 2 of 3 samples"), "{d}");
        let d = first_difference(&[1], &[0.0], &[1, 5], &[0.0, 1.0]).unwrap_or_default();
        assert!(d.contains("first extra (5, 1)"), "{d}");
        // Stale markers and other NaNs are compared by their bits.
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        assert!(first_difference(&[1], &[stale], &[1], &[f64::NAN]).is_some());
        assert_eq!(first_difference(&[1], &[stale], &[1], &[stale]), None);
    }
}
