//! A synthetic but realistic Cortex chunks store, written with this project's encoders:
//! chunk objects under their external keys (`chunks/<tenant>/<fp>:<from>:<through>:<crc>`),
//! the index rows of schema v9/v10/v11 as a DynamoDB export (`dynamodb-export/`),
//! `schema.yaml`, and Cortex plan files (`plans/<tenant>/<day>.plan.snappy`).
//!
//! Every replica receives the same samples but cuts its chunks at its own
//! boundaries, as replicated ingesters do; chunks may cross midnight.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use cortex_chunk::encoding::{DoubleDeltaEncoder, encode_bigchunk, encode_prometheus_xor};
use cortex_chunk::{ChunkMetadata, Encoding, LabelPairs, STALE_NAN_BITS, encode_object};
use cortex_index::DAY_MS;
use cortex_index::dynamo_export::{ExportError, ExportWriter};
use cortex_index::entry::{IndexEntry, parse_chunk_row};
use cortex_index::schema::{PeriodConfig, PeriodicTableConfig, SchemaConfig, format_day};
use cortex_index::series_id::series_id;
use plan_format::Compression;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateConfig {
    /// Output directory.
    pub out: PathBuf,
    /// Number of tenants (named `tenant-0`, `tenant-1`, …).
    pub tenants: usize,
    /// Number of UTC days.
    pub days: usize,
    /// First day index (default 2020-11-18).
    pub start_day: i64,
    /// Series per tenant.
    pub series: usize,
    /// Samples per series per day.
    pub samples_per_series: usize,
    /// Scrape interval in ms.
    pub scrape_interval_ms: i64,
    /// Per-sample timestamp jitter, ± ms.
    pub jitter_ms: i64,
    /// Replication factor.
    pub replicas: usize,
    /// Encodings, rotated by (tenant + day + replica).
    pub encodings: Vec<Encoding>,
    /// Schema versions, rotated by day.
    pub schema_versions: Vec<String>,
    /// Chunks each replica cuts per series per day (before encoding-size overflow).
    pub chunks_per_day: usize,
    /// Random seed.
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
    /// Write only the index export and schema (no chunk objects, no plans): for scanner
    /// benchmarks with tens of millions of index rows.
    pub index_only: bool,
    /// What the sample values and timestamps look like.
    pub profile: DataProfile,
}

/// The shape of the generated samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DataProfile {
    /// Full-precision random walks with ± jitter on every timestamp: the worst case for
    /// XOR compression (about 6.5 bytes per sample).
    #[default]
    Random,
    /// What Prometheus scrapes look like: counters growing by small integers (or
    /// hundredths, as CPU seconds) with rare resets, gauges holding few distinct or
    /// rounded values that change now and then, sums of latencies, timestamps on the
    /// scrape grid except for an occasional millisecond of jitter, and stale markers
    /// where targets go away; it compresses to the 1.3–2 bytes per sample real
    /// Prometheus data does.
    Realistic,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        Self {
            out: PathBuf::from("store"),
            tenants: 1,
            days: 1,
            start_day: 18584,
            series: 100,
            samples_per_series: 5760,
            scrape_interval_ms: 15_000,
            jitter_ms: 12,
            replicas: 3,
            encodings: vec![Encoding::Bigchunk],
            schema_versions: vec!["v11".into()],
            chunks_per_day: 3,
            seed: 42,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            index_only: false,
            profile: DataProfile::Random,
        }
    }
}

/// Generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// Invalid parameters.
    #[error("invalid parameters: {0}")]
    Config(String),
    /// File-system failure.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Writing the index export failed.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// A chunk could not be encoded.
    #[error("encoding a chunk: {0}")]
    Encode(#[from] cortex_chunk::EncodingError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> GenerateError + '_ {
    move |source| GenerateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    /// Chunk objects written.
    pub chunk_objects: u64,
    /// Bytes of chunk objects.
    pub chunk_bytes: u64,
    /// Samples stored, counting every replica.
    pub input_samples: u64,
    /// Distinct samples (one replica's worth).
    pub distinct_samples: u64,
    /// Index rows exported.
    pub index_rows: u64,
    /// Plan files written.
    pub plans: u64,
}

/// Per-series output sent to the writer thread.
struct SeriesOutput {
    tenant: usize,
    rows: Vec<IndexEntry>,
    chunk_objects: u64,
    chunk_bytes: u64,
    samples: u64,
    distinct: u64,
}

const METRICS: [(&str, bool); 8] = [
    ("node_cpu_seconds_total", true),
    ("node_memory_MemAvailable_bytes", false),
    ("node_network_receive_bytes_total", true),
    ("node_load1", false),
    ("http_requests_total", true),
    ("http_request_duration_seconds_sum", true),
    ("process_resident_memory_bytes", false),
    ("go_goroutines", false),
];

/// Tenant name for index `t`.
pub fn tenant_name(t: usize) -> String {
    format!("tenant-{t}")
}

fn series_labels(t: usize, i: usize) -> LabelPairs {
    let (metric, _) = METRICS[i % METRICS.len()];
    let target = i / METRICS.len();
    let mut labels = vec![
        ("__name__".to_string(), metric.to_string()),
        (
            "instance".to_string(),
            format!(
                "10.{}.{}.{}:9100",
                t % 256,
                (target / 256) % 256,
                target % 256
            ),
        ),
        (
            "job".to_string(),
            if target.is_multiple_of(5) {
                "api-server"
            } else {
                "node"
            }
            .to_string(),
        ),
        ("namespace".to_string(), format!("ns-{}", target % 7)),
    ];
    if metric.starts_with("node_cpu") {
        labels.push((
            "mode".to_string(),
            ["idle", "user", "system"][target % 3].to_string(),
        ));
    }
    labels.sort();
    labels
}

impl GenerateConfig {
    fn validate(&self) -> Result<(), GenerateError> {
        let bad = |m: &str| Err(GenerateError::Config(m.to_owned()));
        if self.tenants == 0 || self.days == 0 || self.series == 0 || self.replicas == 0 {
            return bad("tenants, days, series and replicas must be at least 1");
        }
        if self.samples_per_series == 0 || self.chunks_per_day == 0 {
            return bad("samples-per-series and chunks-per-day must be at least 1");
        }
        if self.encodings.is_empty() || self.schema_versions.is_empty() {
            return bad("at least one encoding and one schema version are needed");
        }
        if let Some(v) = self
            .schema_versions
            .iter()
            .find(|v| !matches!(v.as_str(), "v9" | "v10" | "v11"))
        {
            return Err(GenerateError::Config(format!(
                "schema {v:?}: only v9, v10 and v11 are convertible"
            )));
        }
        let interval = self.effective_interval();
        if interval <= 2 * self.jitter_ms {
            return bad(
                "scrape interval must exceed twice the jitter (samples would not fit in a day)",
            );
        }
        Ok(())
    }

    /// The scrape interval, shortened if the requested samples would not fit in a day.
    pub fn effective_interval(&self) -> i64 {
        self.scrape_interval_ms
            .min(DAY_MS / self.samples_per_series as i64)
    }

    /// The schema config: one period per run of days with the same version.
    pub fn schema(&self) -> SchemaConfig {
        let mut configs: Vec<PeriodConfig> = Vec::new();
        for d in 0..self.days {
            let v = &self.schema_versions[d % self.schema_versions.len()];
            if configs.last().is_some_and(|c| &c.schema == v) {
                continue;
            }
            // The first period starts well before the data, like a real cluster's.
            let from = if d == 0 {
                self.start_day - 30
            } else {
                self.start_day + d as i64
            };
            configs.push(PeriodConfig {
                from: format_day(from),
                store: "aws-dynamo".into(),
                object_store: Some("s3".into()),
                schema: v.clone(),
                index: PeriodicTableConfig {
                    prefix: "cortex_index_".into(),
                    period: Some("168h".into()),
                    tags: None,
                },
                chunks: None,
                row_shards: None,
            });
        }
        SchemaConfig { configs }
    }
}

/// Writes the whole store; `progress(series_done)` is called as series finish.
pub fn generate(
    cfg: &GenerateConfig,
    progress: impl Fn(u64) + Sync,
) -> Result<GenerateSummary, GenerateError> {
    cfg.validate()?;
    let out = &cfg.out;
    std::fs::create_dir_all(out).map_err(io(out))?;
    let schema = cfg.schema();
    let schema_path = out.join("schema.yaml");
    std::fs::write(&schema_path, schema.to_yaml()).map_err(io(&schema_path))?;
    for t in 0..cfg.tenants {
        let dir = out.join("chunks").join(tenant_name(t));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    }

    let total = cfg.tenants * cfg.series;
    let threads = cfg.threads.clamp(1, 64);
    let (tx, rx) = mpsc::sync_channel::<Result<SeriesOutput, GenerateError>>(256);
    let mut summary = GenerateSummary::default();
    let export_root = out.join("dynamodb-export");
    std::thread::scope(|scope| -> Result<(), GenerateError> {
        for w in 0..threads {
            let tx = tx.clone();
            let schema = &schema;
            scope.spawn(move || {
                for n in (w..total).step_by(threads) {
                    let r = generate_series(cfg, schema, n / cfg.series, n % cfg.series);
                    let failed = r.is_err();
                    if tx.send(r).is_err() || failed {
                        return;
                    }
                }
            });
        }
        drop(tx);
        // Single writer: index export and plan grouping.
        let mut exports: BTreeMap<String, ExportWriter> = BTreeMap::new();
        let mut v11_rows: HashSet<(String, String)> = HashSet::new();
        let mut plans: HashMap<(usize, i64), BTreeMap<String, Vec<String>>> = HashMap::new();
        let mut done = 0u64;
        for r in rx {
            let s = r?;
            summary.chunk_objects += s.chunk_objects;
            summary.chunk_bytes += s.chunk_bytes;
            summary.input_samples += s.samples;
            summary.distinct_samples += s.distinct;
            for e in s.rows {
                if e.range.ends_with(b"\x009\x00")
                    && !v11_rows.insert((e.table.clone(), e.hash.clone()))
                {
                    continue; // the v11 label-names row is shared by every tenant and day
                }
                if !cfg.index_only
                    && let Some(row) = parse_chunk_row(&e.hash, &e.range)
                {
                    plans
                        .entry((s.tenant, row.day))
                        .or_default()
                        .entry(row.series_id)
                        .or_default()
                        .push(row.chunk_id);
                }
                if !exports.contains_key(&e.table) {
                    let id = format!(
                        "{:014}-{:08x}",
                        1_700_000_000_000u64 + exports.len() as u64,
                        cfg.seed as u32
                    );
                    exports.insert(
                        e.table.clone(),
                        ExportWriter::create(&export_root, &e.table, &id, 4)?,
                    );
                }
                if let Some(w) = exports.get_mut(&e.table) {
                    w.write(&e.hash, &e.range, e.value.as_deref())?;
                }
            }
            done += 1;
            progress(done);
        }
        for (_, w) in exports {
            summary.index_rows += w.finish()?;
        }
        for ((t, day), series) in plans {
            let dir = out.join("plans").join(tenant_name(t));
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            let path = dir.join(format!("{day}{}", Compression::Snappy.suffix()));
            let f = std::fs::File::create(&path).map_err(io(&path))?;
            let entries = series.iter().map(|(sid, cs)| (sid.as_str(), cs.as_slice()));
            plan_format::write_plan(f, Compression::Snappy, &tenant_name(t), day, entries)
                .map_err(io(&path))?;
            summary.plans += 1;
        }
        Ok(())
    })?;
    Ok(summary)
}

fn rng_for(seed: u64, parts: &[u64]) -> ChaCha8Rng {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    for p in parts {
        h.update(p.to_le_bytes());
    }
    ChaCha8Rng::from_seed(h.finalize().into())
}

/// The samples series `series` of tenant `tenant` gets under `cfg` (all days, before
/// replicas cut them into chunks): what the codec benchmarks decode.
pub fn samples_of_series(
    cfg: &GenerateConfig,
    tenant: usize,
    series: usize,
) -> (Vec<i64>, Vec<f64>) {
    series_samples(cfg, tenant, series, METRICS[series % METRICS.len()].1)
}

/// Samples of one series over all days, shared by every replica.
fn series_samples(cfg: &GenerateConfig, t: usize, i: usize, counter: bool) -> (Vec<i64>, Vec<f64>) {
    match cfg.profile {
        DataProfile::Random => random_samples(cfg, t, i, counter),
        DataProfile::Realistic => realistic_samples(cfg, t, i),
    }
}

/// How a realistic series moves from one scrape to the next.
#[derive(Debug, Clone, Copy)]
enum Movement {
    /// Counter of events: + 0..=max each scrape.
    Events(u32),
    /// CPU seconds: + hundredths close to the scrape interval.
    CpuSeconds,
    /// Sum of request latencies: + a few requests' worth of milliseconds.
    LatencySum,
    /// Bytes in pages of 4 KiB: now and then a few pages more or less.
    Pages,
    /// Load average: two decimals drifting.
    Load,
    /// A small count (goroutines): now and then one or two more or less.
    SmallCount,
}

fn movement(metric: &str, rng: &mut ChaCha8Rng) -> Movement {
    match metric {
        "node_cpu_seconds_total" => Movement::CpuSeconds,
        "http_request_duration_seconds_sum" => Movement::LatencySum,
        "node_memory_MemAvailable_bytes" | "process_resident_memory_bytes" => Movement::Pages,
        "node_load1" => Movement::Load,
        "go_goroutines" => Movement::SmallCount,
        _ => Movement::Events(*[3, 20, 500].get(rng.random_range(0..3)).unwrap_or(&20)),
    }
}

/// Realistic samples (see [`DataProfile::Realistic`]).
fn realistic_samples(cfg: &GenerateConfig, t: usize, i: usize) -> (Vec<i64>, Vec<f64>) {
    let mut rng = rng_for(cfg.seed, &[t as u64, i as u64, 0]);
    let interval = cfg.effective_interval();
    let n = cfg.samples_per_series * cfg.days;
    let phase = rng.random_range(cfg.jitter_ms..interval - cfg.jitter_ms);
    let start = cfg.start_day * DAY_MS + phase;
    let how = movement(METRICS[i % METRICS.len()].0, &mut rng);
    // Most series of a real server are quiet (error codes, idle handlers, rarely used
    // paths): the chance that a counter moves at a scrape, per series.
    let activity = [0.02, 0.02, 0.3, 1.0][rng.random_range(0..4)];
    let mut v: f64 = match how {
        Movement::Events(_) => rng.random_range(0..100_000) as f64,
        Movement::CpuSeconds => rng.random_range(0..10_000_000) as f64 / 100.0,
        Movement::LatencySum => rng.random_range(0..1_000_000) as f64 / 1000.0,
        Movement::Pages => rng.random_range(10_000..4_000_000) as f64 * 4096.0,
        Movement::Load => rng.random_range(0..400) as f64 / 100.0,
        Movement::SmallCount => rng.random_range(5..200) as f64,
    };
    let mut ts = Vec::with_capacity(n);
    let mut vs = Vec::with_capacity(n);
    for k in 0..n {
        let day = k / cfg.samples_per_series;
        let slot = (k % cfg.samples_per_series) as i64;
        // Prometheus aligns scrape timestamps to the grid within a tolerance: most
        // land exactly, a few a millisecond or two off.
        let jitter = if cfg.jitter_ms > 0 && rng.random_bool(0.05) {
            rng.random_range(-cfg.jitter_ms.min(2)..=cfg.jitter_ms.min(2))
        } else {
            0
        };
        ts.push(start + day as i64 * DAY_MS + slot * interval + jitter);
        v = match how {
            // A restarted target starts its counters again from zero.
            Movement::Events(_) | Movement::CpuSeconds | Movement::LatencySum
                if rng.random_bool(1.0 / 5000.0) =>
            {
                0.0
            }
            Movement::Events(_) | Movement::CpuSeconds | Movement::LatencySum
                if !rng.random_bool(activity) =>
            {
                v
            }
            Movement::Events(max) => v + f64::from(rng.random_range(1..=max.max(1))),
            Movement::CpuSeconds => {
                v + (interval as f64 / 10.0 * rng.random_range(0.0..1.0)).round() / 100.0
            }
            Movement::LatencySum => {
                v + f64::from(rng.random_range(1..5u32)) * rng.random_range(0.001..0.250)
            }
            Movement::Pages if rng.random_bool(0.2) => {
                (v + f64::from(rng.random_range(-64..=64i32)) * 4096.0).max(4096.0)
            }
            Movement::Load if rng.random_bool(0.5) => {
                ((v * 100.0 + f64::from(rng.random_range(-5..=5i32))).max(0.0)).round() / 100.0
            }
            Movement::SmallCount if rng.random_bool(0.1) => {
                (v + f64::from(rng.random_range(-2..=2i32))).max(1.0)
            }
            Movement::Pages | Movement::Load | Movement::SmallCount => v,
        };
        vs.push(v);
    }
    // One target in ten goes away at the end: a Prometheus stale marker.
    if i % 10 == 3 && n > 1 {
        vs[n - 1] = f64::from_bits(STALE_NAN_BITS);
    }
    (ts, vs)
}

/// Random-walk samples (see [`DataProfile::Random`]).
fn random_samples(cfg: &GenerateConfig, t: usize, i: usize, counter: bool) -> (Vec<i64>, Vec<f64>) {
    let mut rng = rng_for(cfg.seed, &[t as u64, i as u64, 0]);
    let interval = cfg.effective_interval();
    let n = cfg.samples_per_series * cfg.days;
    let phase = rng.random_range(cfg.jitter_ms..interval - cfg.jitter_ms);
    let start = cfg.start_day * DAY_MS + phase;
    let mut ts = Vec::with_capacity(n);
    let mut vs = Vec::with_capacity(n);
    let mut v: f64 = if counter {
        rng.random_range(0..1_000_000) as f64
    } else {
        rng.random_range(0.0..100.0)
    };
    for k in 0..n {
        let day = k / cfg.samples_per_series;
        let slot = (k % cfg.samples_per_series) as i64;
        let jitter = if cfg.jitter_ms > 0 {
            rng.random_range(-cfg.jitter_ms..=cfg.jitter_ms)
        } else {
            0
        };
        ts.push(start + day as i64 * DAY_MS + slot * interval + jitter);
        v = if counter {
            v + rng.random_range(0..100) as f64
        } else {
            (v + rng.random_range(-1.0..1.0)).abs()
        };
        vs.push(v);
    }
    // One series in 97 loses its target at the end: a Prometheus stale marker.
    if i % 97 == 5 && n > 1 {
        vs[n - 1] = f64::from_bits(STALE_NAN_BITS);
    }
    (ts, vs)
}

/// Chunk boundaries of one replica: `chunks_per_day` per day, each boundary shifted
/// by up to a quarter chunk so replicas disagree (and chunks cross midnight).
fn replica_cuts(cfg: &GenerateConfig, rng: &mut ChaCha8Rng, n: usize) -> Vec<usize> {
    let total_chunks = cfg.chunks_per_day * cfg.days;
    let len = n / total_chunks;
    let mut cuts = vec![0];
    for k in 1..total_chunks {
        let shift = if len >= 8 {
            rng.random_range(-(len as i64) / 4..=(len as i64) / 4)
        } else {
            0
        };
        let c = (k as i64 * len as i64 + shift)
            .clamp(*cuts.last().unwrap_or(&0) as i64 + 1, n as i64 - 1) as usize;
        if c > *cuts.last().unwrap_or(&0) && c < n {
            cuts.push(c);
        }
    }
    cuts.push(n);
    cuts
}

fn generate_series(
    cfg: &GenerateConfig,
    schema: &SchemaConfig,
    t: usize,
    i: usize,
) -> Result<SeriesOutput, GenerateError> {
    let tenant = tenant_name(t);
    let labels = series_labels(t, i);
    let counter = METRICS[i % METRICS.len()].1;
    let (ts, vs) = series_samples(cfg, t, i, counter);
    let sid = series_id(&labels);
    let fingerprint = u64::from_be_bytes(
        Sha256::digest(sid.as_bytes())[..8]
            .try_into()
            .unwrap_or([0; 8]),
    );
    let mut out = SeriesOutput {
        tenant: t,
        rows: Vec::new(),
        chunk_objects: 0,
        chunk_bytes: 0,
        samples: 0,
        distinct: ts.len() as u64,
    };
    let mut seen_keys = HashSet::new();
    let mut seen_rows = HashSet::new();
    let dir = cfg.out.join("chunks");
    for r in 0..cfg.replicas {
        let mut rng = rng_for(cfg.seed, &[t as u64, i as u64, 1 + r as u64]);
        let cuts = replica_cuts(cfg, &mut rng, ts.len());
        for w in cuts.windows(2) {
            let (a, b) = (w[0], w[1]);
            let day = (ts[a].div_euclid(DAY_MS) - cfg.start_day) as usize;
            let enc = cfg.encodings[(t + day + r) % cfg.encodings.len()];
            for (from, to, data) in encode_range(enc, &ts[a..b], &vs[a..b])? {
                let meta = ChunkMetadata {
                    fingerprint,
                    user_id: tenant.clone(),
                    from: ts[a + from],
                    through: ts[a + to - 1],
                    labels: labels.clone(),
                    encoding: enc.to_byte(),
                };
                let (bytes, key) = encode_object(&meta, &data);
                out.samples += (to - from) as u64;
                if !seen_keys.insert(key.clone()) {
                    continue; // two replicas cut the identical chunk: one object
                }
                if !cfg.index_only {
                    let path = dir.join(key.object_path());
                    std::fs::write(&path, &bytes).map_err(io(&path))?;
                }
                out.chunk_objects += 1;
                out.chunk_bytes += bytes.len() as u64;
                for e in schema.chunk_entries(
                    &tenant,
                    &labels,
                    &key.external_key(),
                    key.from,
                    key.through,
                ) {
                    if seen_rows.insert((e.table.clone(), e.hash.clone(), e.range.clone())) {
                        out.rows.push(e);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Encodes samples into one or more chunks of `enc` (fixed-size encodings overflow
/// into new chunks); returns `(start, end, data)` index ranges.
fn encode_range(
    enc: Encoding,
    ts: &[i64],
    vs: &[f64],
) -> Result<Vec<(usize, usize, Vec<u8>)>, GenerateError> {
    let mut out = Vec::new();
    match enc {
        Encoding::Bigchunk => out.push((0, ts.len(), encode_bigchunk(ts, vs)?)),
        Encoding::PrometheusXor => {
            for start in (0..ts.len()).step_by(65_535) {
                let end = (start + 65_535).min(ts.len());
                out.push((
                    start,
                    end,
                    encode_prometheus_xor(&ts[start..end], &vs[start..end])?,
                ));
            }
        }
        Encoding::DoubleDelta => {
            let mut e = DoubleDeltaEncoder::new();
            let mut start = 0;
            for (k, (&t, &v)) in ts.iter().zip(vs).enumerate() {
                if !e.try_push(t, v) {
                    out.push((start, k, e.finish()));
                    e = DoubleDeltaEncoder::new();
                    start = k;
                    if !e.try_push(t, v) {
                        return Err(GenerateError::Config(
                            "a sample does not fit an empty DoubleDelta chunk".into(),
                        ));
                    }
                }
            }
            if !e.is_empty() {
                out.push((start, ts.len(), e.finish()));
            }
        }
        Encoding::Varbit => {
            return Err(GenerateError::Config(
                "the generator has no Varbit encoder; use bigchunk, xor or doubledelta".into(),
            ));
        }
    }
    Ok(out)
}

/// Parses a `YYYY-MM-DD` day (re-exported for the CLI).
pub fn parse_day(text: &str) -> Option<i64> {
    cortex_index::schema::parse_day(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XOR-encoded bytes per sample over one day of every metric kind, 120-sample
    /// chunks as Prometheus cuts them.
    fn bytes_per_sample(profile: DataProfile) -> f64 {
        let cfg = GenerateConfig {
            profile,
            ..GenerateConfig::default()
        };
        let (mut bytes, mut samples) = (0usize, 0usize);
        for i in 0..METRICS.len() * 4 {
            let (ts, vs) = series_samples(&cfg, 0, i, METRICS[i % METRICS.len()].1);
            for (t, v) in ts.chunks(120).zip(vs.chunks(120)) {
                bytes += encode_prometheus_xor(t, v).expect("encode").len();
                samples += t.len();
            }
        }
        bytes as f64 / samples as f64
    }

    #[test]
    fn the_realistic_profile_compresses_like_prometheus_data() {
        let realistic = bytes_per_sample(DataProfile::Realistic);
        assert!(
            (1.0..=2.0).contains(&realistic),
            "realistic data: {realistic:.2} bytes/sample"
        );
        eprintln!("realistic data: {realistic:.2} bytes/sample");
        let random = bytes_per_sample(DataProfile::Random);
        eprintln!("random data: {random:.2} bytes/sample");
        assert!(random > 5.0, "random data: {random:.2} bytes/sample");
    }
}
