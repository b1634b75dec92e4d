//! Dry-run estimates: what converting a set of plans will read, what the reads cost
//! and how long they take, before anything is converted.
//!
//! The counts come from the plans alone (written by a scan of the index into a scratch
//! directory): tenant-days, series, chunk objects and the requests that read them. Bytes
//! and samples cannot be known from the index, so a uniform sample of the chunks (a
//! fixed-seed reservoir, so reruns read the same objects) is fetched and decoded, and
//! the means are scaled to every chunk; when the sample covers every chunk the figures
//! are exact. The same sample times the store's requests and the decoder, which gives
//! the duration for a number of builders.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chunk_store::{ChunkStore, ChunkStores, FetchError, FetchPolicy, Fetched};
use cortex_chunk::{ChunkKey, decode_object, decode_samples};
use plan_format::{Compression, PlanReader};
use rand::{Rng, SeedableRng};

/// Rows of a Bigtable chunk table read per request (as the builder batches them).
pub const BIGTABLE_ROWS_PER_REQUEST: u64 = 500;

/// Requests in flight while the sample is fetched (the chunk store's per-batch
/// concurrency): the measured request rate is for this many at once.
const SAMPLE_IN_FLIGHT: f64 = 16.0;

/// Chunks fetched per batch of the sample (bounds the sample's memory).
const SAMPLE_BATCH: usize = 1024;

/// CPU time of a whole build per second of decoding: merging and writing the block
/// cost about as much again as decoding (decode 18 % against merge and encode 15 %
/// of the benchmark plan's profile, README "Performance").
const CPU_PER_DECODE_SECOND: f64 = 2.0;

/// An estimate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EstimateError {
    /// A plan or the plans directory could not be read.
    #[error("{path}: {reason}")]
    Plans {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A sampled chunk could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The decoding thread died.
    #[error("decoding the sampled chunks: {0}")]
    Decode(String),
}

/// What the plans say, exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanTotals {
    /// Plans (tenant-days).
    pub tenant_days: u64,
    /// Distinct tenants.
    pub tenants: u64,
    /// First and last day with a plan.
    pub days: Option<(i64, i64)>,
    /// Series.
    pub series: u64,
    /// Chunks listed (each one object read).
    pub chunks: u64,
    /// Of those, chunks kept in Bigtable tables (read in batches of rows).
    pub bigtable_chunks: u64,
    /// Chunk IDs that do not parse (the builder reports them; never fetched).
    pub bad_ids: u64,
}

impl PlanTotals {
    /// GET requests against object stores (one per chunk object).
    pub fn object_requests(&self) -> u64 {
        self.chunks
            .saturating_sub(self.bigtable_chunks)
            .saturating_sub(self.bad_ids)
    }

    /// ReadRows requests against Bigtable chunk tables (at least, one per batch).
    pub fn bigtable_requests(&self) -> u64 {
        self.bigtable_chunks.div_ceil(BIGTABLE_ROWS_PER_REQUEST)
    }
}

/// What a sample of the chunks measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChunkSample {
    /// Chunks asked for.
    pub asked: u64,
    /// Chunks the store did not have.
    pub missing: u64,
    /// Chunks fetched but not decodable (checksum, corrupt, unknown encoding).
    pub unreadable: u64,
    /// Bytes of the fetched chunks.
    pub bytes: u64,
    /// Samples decoded.
    pub samples: u64,
    /// Wall time of the fetches.
    pub fetch_time: Duration,
    /// CPU time of the decoding.
    pub decode_time: Duration,
}

/// The plans' totals and, with a chunk store, what a sample of their chunks measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Estimate {
    /// Exact counts from the plans.
    pub totals: PlanTotals,
    /// The sample, when a chunk store was given.
    pub sample: Option<ChunkSample>,
}

impl Estimate {
    /// Scale factor from the sample to every chunk.
    fn scale(&self) -> Option<f64> {
        let s = self.sample.as_ref()?;
        (s.asked > 0).then(|| self.totals.chunks as f64 / s.asked as f64)
    }

    /// Whether the sample read every chunk (the figures are then exact).
    pub fn exact(&self) -> bool {
        self.sample
            .as_ref()
            .is_some_and(|s| s.asked == self.totals.chunks)
    }

    /// Bytes every chunk holds (exact when [`Estimate::exact`]).
    pub fn bytes(&self) -> Option<u64> {
        Some((self.sample.as_ref()?.bytes as f64 * self.scale()?).round() as u64)
    }

    /// Samples every chunk holds.
    pub fn samples(&self) -> Option<u64> {
        Some((self.sample.as_ref()?.samples as f64 * self.scale()?).round() as u64)
    }

    /// Chunks missing from the store.
    pub fn missing(&self) -> Option<u64> {
        Some((self.sample.as_ref()?.missing as f64 * self.scale()?).round() as u64)
    }

    /// Cost of the object-store GET requests at `price_per_1000` (currency units).
    pub fn request_cost(&self, price_per_1000: f64) -> f64 {
        self.totals.object_requests() as f64 / 1000.0 * price_per_1000
    }

    /// Time to convert everything with `builders` builders of `workers` CPU threads,
    /// each with `fetch_concurrency` series' chunks in flight: the slower of reading
    /// (the sample's request rate, scaled by the requests in flight) and computing
    /// (the sample's decode time per sample, plus merging and writing).
    pub fn duration(
        &self,
        builders: usize,
        workers: usize,
        fetch_concurrency: usize,
    ) -> Option<Duration> {
        let s = self.sample.as_ref()?;
        let fetched = s.asked.max(1) as f64;
        let request_rate = fetched / s.fetch_time.as_secs_f64().max(1e-6);
        let chunks_per_series = self.totals.chunks as f64 / self.totals.series.max(1) as f64;
        let in_flight =
            fetch_concurrency.max(1) as f64 * chunks_per_series.clamp(1.0, SAMPLE_IN_FLIGHT);
        let fetch_secs = self.totals.chunks as f64
            / (request_rate * in_flight / SAMPLE_IN_FLIGHT * builders.max(1) as f64);
        let per_sample = s.decode_time.as_secs_f64() / s.samples.max(1) as f64;
        let cpu_secs = self.samples()? as f64 * per_sample * CPU_PER_DECODE_SECOND
            / (builders.max(1) * workers.max(1)) as f64;
        Some(Duration::from_secs_f64(fetch_secs.max(cpu_secs)))
    }
}

/// Every plan file under `dir` (`<tenant>/<day>.plan[.gz|.snappy]`).
fn plan_files(dir: &Path) -> Result<Vec<PathBuf>, EstimateError> {
    let err = |path: &Path, e: std::io::Error| EstimateError::Plans {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let mut out = Vec::new();
    let tenants = match std::fs::read_dir(dir) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(err(dir, e)),
    };
    for tenant in tenants {
        let tenant = tenant.map_err(|e| err(dir, e))?.path();
        // The scanner's own records live in a dot directory.
        let hidden = tenant
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden || !tenant.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&tenant).map_err(|e| err(&tenant, e))? {
            let file = file.map_err(|e| err(&tenant, e))?.path();
            if Compression::from_name(&file.to_string_lossy()).is_some() {
                out.push(file);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads every plan under `dir` (plans written by the scanner, which never repeats a
/// series within a plan) and keeps a uniform sample of up to `sample_size` chunk keys.
/// `stores` tells which chunks live in Bigtable tables.
pub fn read_plans(
    dir: &Path,
    stores: Option<&ChunkStores>,
    sample_size: usize,
) -> Result<(PlanTotals, Vec<ChunkKey>), EstimateError> {
    let mut totals = PlanTotals::default();
    let mut tenants = BTreeSet::new();
    let mut sample: Vec<ChunkKey> = Vec::with_capacity(sample_size.min(1 << 16));
    let mut seen_keys: u64 = 0;
    // A fixed seed: the same plans give the same sample, so reruns agree.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x0b10_c4c0);
    for path in plan_files(dir)? {
        let name = path.to_string_lossy().into_owned();
        let plan_err = |reason: String| EstimateError::Plans {
            path: path.clone(),
            reason,
        };
        let compression = Compression::from_name(&name).unwrap_or(Compression::None);
        let file = std::fs::File::open(&path).map_err(|e| plan_err(e.to_string()))?;
        let mut reader =
            PlanReader::open(&name, file, compression).map_err(|e| plan_err(e.to_string()))?;
        let user = reader.user().to_owned();
        let day = reader.day_index();
        totals.tenant_days += 1;
        tenants.insert(user.clone());
        totals.days = Some(match totals.days {
            None => (day, day),
            Some((a, b)) => (a.min(day), b.max(day)),
        });
        while let Some(entry) = reader.next_entry().map_err(|e| plan_err(e.to_string()))? {
            totals.series += 1;
            for id in &entry.chunks {
                totals.chunks += 1;
                let Ok(key) = ChunkKey::parse_for_user(id, &user) else {
                    totals.bad_ids += 1;
                    continue;
                };
                if let Some(s) = stores
                    && matches!(s.for_chunk(key.from), ChunkStore::Bigtable(_))
                {
                    totals.bigtable_chunks += 1;
                }
                // Reservoir sampling (Algorithm R).
                seen_keys += 1;
                if sample.len() < sample_size {
                    sample.push(key);
                } else if sample_size > 0 {
                    let j = rng.random_range(0..seen_keys);
                    if let Some(slot) = sample.get_mut(j as usize) {
                        *slot = key;
                    }
                }
            }
        }
    }
    totals.tenants = tenants.len() as u64;
    Ok((totals, sample))
}

/// Fetches the sampled chunks from `stores` and decodes them, timing both.
pub async fn measure_sample(
    stores: &ChunkStores,
    keys: Vec<ChunkKey>,
    policy: FetchPolicy,
) -> Result<ChunkSample, EstimateError> {
    let mut sample = ChunkSample::default();
    for batch in keys.chunks(SAMPLE_BATCH) {
        let wanted: Vec<Option<ChunkKey>> = batch.iter().cloned().map(Some).collect();
        let started = Instant::now();
        let fetched = stores.fetch_chunks(&wanted, policy).await?;
        sample.fetch_time += started.elapsed();
        sample.asked += batch.len() as u64;
        let pairs: Vec<(ChunkKey, Fetched)> = batch.iter().cloned().zip(fetched).collect();
        // Decoding is CPU work: off the runtime's threads.
        sample = tokio::task::spawn_blocking(move || {
            decode_batch(&pairs, &mut sample);
            sample
        })
        .await
        .map_err(|e| EstimateError::Decode(e.to_string()))?;
    }
    Ok(sample)
}

/// Decodes fetched chunks, counting bytes, samples and unreadable objects.
fn decode_batch(pairs: &[(ChunkKey, Fetched)], sample: &mut ChunkSample) {
    let (mut ts, mut vs) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for (key, fetched) in pairs {
        let bytes = match fetched {
            Fetched::Found(b) => b,
            Fetched::Missing => {
                sample.missing += 1;
                continue;
            }
        };
        sample.bytes += bytes.len() as u64;
        ts.clear();
        vs.clear();
        let decoded = decode_object(key, bytes)
            .ok()
            .and_then(|c| decode_samples(c.encoding, c.data, &mut ts, &mut vs).ok());
        match decoded {
            Some(n) => sample.samples += n as u64,
            None => sample.unreadable += 1,
        }
    }
    sample.decode_time += started.elapsed();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(chunks: u64, series: u64, sample: ChunkSample) -> Estimate {
        Estimate {
            totals: PlanTotals {
                tenant_days: 1,
                tenants: 1,
                days: Some((18585, 18585)),
                series,
                chunks,
                bigtable_chunks: 0,
                bad_ids: 0,
            },
            sample: Some(sample),
        }
    }

    #[test]
    fn a_sample_scales_to_every_chunk() {
        let e = estimate(
            1000,
            100,
            ChunkSample {
                asked: 100,
                missing: 2,
                unreadable: 0,
                bytes: 200_000,
                samples: 12_000,
                fetch_time: Duration::from_secs(1),
                decode_time: Duration::from_millis(10),
            },
        );
        assert!(!e.exact());
        assert_eq!(e.bytes(), Some(2_000_000));
        assert_eq!(e.samples(), Some(120_000));
        assert_eq!(e.missing(), Some(20));
        assert!((e.request_cost(0.4) - 0.4).abs() < 1e-9);
        // 100 requests/s at 16 in flight; one builder with 1 series × 10 chunks in
        // flight reads 62.5 chunks/s: 1000 chunks in 16 s, far above the CPU time.
        let one = e.duration(1, 2, 1).expect("duration");
        assert_eq!(one.as_secs(), 16);
        // Twice the builders, half the time.
        assert_eq!(e.duration(2, 2, 1).expect("duration").as_secs(), 8);
    }

    #[test]
    fn plans_are_counted_and_sampled_the_same_way_twice() {
        let dir = tempfile::tempdir().expect("tmp");
        let tenant = dir.path().join("acme");
        std::fs::create_dir_all(&tenant).expect("mkdir");
        std::fs::create_dir_all(dir.path().join(".blocksconvert-scanner")).expect("mkdir");
        let from = 18585 * cortex_index::DAY_MS;
        let chunk = |fp: u64, i: i64| {
            format!(
                "acme/{fp:x}:{:x}:{:x}:{:x}",
                from + i * 1000,
                from + i * 1000 + 999,
                i
            )
        };
        let file = std::fs::File::create(tenant.join("18585.plan")).expect("plan");
        let mut w = plan_format::PlanWriter::new(file, Compression::None, "acme", 18585, "")
            .expect("writer");
        for s in 0..10u64 {
            let chunks: Vec<String> = (0..5).map(|i| chunk(s, i)).collect();
            w.entry(&format!("series-{s}"), &chunks).expect("entry");
        }
        w.entry("bad", &["not-a-chunk-id".to_owned()])
            .expect("entry");
        w.finish().expect("finish");
        let (totals, sample) = read_plans(dir.path(), None, 7).expect("read");
        assert_eq!(totals.tenant_days, 1);
        assert_eq!(totals.tenants, 1);
        assert_eq!(totals.series, 11);
        assert_eq!(totals.chunks, 51);
        assert_eq!(totals.bad_ids, 1);
        assert_eq!(totals.object_requests(), 50);
        assert_eq!(sample.len(), 7);
        let (_, again) = read_plans(dir.path(), None, 7).expect("read");
        assert_eq!(sample, again, "a fixed seed samples the same chunks");
        let (_, all) = read_plans(dir.path(), None, 1000).expect("read");
        assert_eq!(all.len(), 50);
    }
}
