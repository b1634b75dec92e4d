//! `blocksconvert generate`: a synthetic Cortex chunk store for demos and benchmarks.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use cortex_chunk::Encoding;
use indicatif::{ProgressBar, ProgressStyle};
use synthetic_store::{DataProfile, GenerateConfig, generate};

#[derive(Args)]
pub struct GenerateArgs {
    /// Output directory (created).
    #[arg(long = "output", alias = "out", env = "BLOCKSCONVERT_GENERATE_OUT")]
    out: PathBuf,
    /// Number of tenants.
    #[arg(long, default_value_t = 1)]
    tenants: usize,
    /// Number of UTC days.
    #[arg(long, default_value_t = 1)]
    days: usize,
    /// First day, YYYY-MM-DD (UTC).
    #[arg(long, default_value = "2020-11-18")]
    start_day: String,
    /// Series per tenant.
    #[arg(long, default_value_t = 100)]
    series: usize,
    /// Samples per series per day.
    #[arg(long, default_value_t = 5760)]
    samples_per_series: usize,
    /// Scrape interval in milliseconds.
    #[arg(long, default_value_t = 15_000)]
    scrape_interval_ms: i64,
    /// Timestamp jitter, ± milliseconds.
    #[arg(long, default_value_t = 12)]
    jitter_ms: i64,
    /// Replication factor (replicas cut chunks at different boundaries).
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Chunk encodings, rotated by tenant+day+replica: bigchunk, xor, doubledelta.
    #[arg(long = "encoding", value_delimiter = ',', default_value = "bigchunk")]
    encodings: Vec<String>,
    /// Index schema versions, rotated by day: v9, v10, v11.
    #[arg(long = "schema", value_delimiter = ',', default_value = "v11")]
    schema_versions: Vec<String>,
    /// Chunks each replica cuts per series per day.
    #[arg(long, default_value_t = 3)]
    chunks_per_day: usize,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Only the index export and schema.yaml (no chunk objects, no plans): index
    /// datasets of tens of millions of rows for scanner benchmarks.
    #[arg(long)]
    index_only: bool,
    /// Sample shape: `random` (full-precision random walks, jitter on every timestamp:
    /// the worst case, ~6.5 bytes/sample) or `realistic` (counters, gauges and
    /// timestamps as Prometheus scrapes them: ~1.3–2 bytes/sample).
    #[arg(long, value_enum, default_value_t = Profile::Random)]
    profile: Profile,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Profile {
    Random,
    Realistic,
}

fn parse_encoding(s: &str) -> anyhow::Result<Encoding> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "bigchunk" => Encoding::Bigchunk,
        "xor" | "prometheusxorchunk" => Encoding::PrometheusXor,
        "doubledelta" => Encoding::DoubleDelta,
        other => bail!("--encoding {other:?}: expected bigchunk, xor or doubledelta"),
    })
}

pub fn run(a: GenerateArgs) -> anyhow::Result<()> {
    let start_day = cortex_index_day(&a.start_day)?;
    let cfg = GenerateConfig {
        out: a.out,
        tenants: a.tenants,
        days: a.days,
        start_day,
        series: a.series,
        samples_per_series: a.samples_per_series,
        scrape_interval_ms: a.scrape_interval_ms,
        jitter_ms: a.jitter_ms,
        replicas: a.replicas,
        encodings: a
            .encodings
            .iter()
            .map(|e| parse_encoding(e))
            .collect::<anyhow::Result<_>>()?,
        schema_versions: a.schema_versions,
        chunks_per_day: a.chunks_per_day,
        seed: a.seed,
        index_only: a.index_only,
        profile: match a.profile {
            Profile::Random => DataProfile::Random,
            Profile::Realistic => DataProfile::Realistic,
        },
        ..GenerateConfig::default()
    };
    let total = (cfg.tenants * cfg.series) as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{spinner} generating [{bar:40}] {pos}/{len} series ({per_sec}, eta {eta})",
        )
        .context("progress template")?
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let s = generate(&cfg, |done| bar.set_position(done))
        .with_context(|| format!("generating into {}", cfg.out.display()))?;
    bar.finish_and_clear();
    println!(
        "generated {} chunk objects ({:.1} MB), {} input samples ({} distinct), {} index rows, {} plans in {:.1}s → {}",
        s.chunk_objects,
        s.chunk_bytes as f64 / 1e6,
        s.input_samples,
        s.distinct_samples,
        s.index_rows,
        s.plans,
        started.elapsed().as_secs_f64(),
        cfg.out.display()
    );
    Ok(())
}

fn cortex_index_day(text: &str) -> anyhow::Result<i64> {
    synthetic_store::parse_day(text)
        .with_context(|| format!("--start-day {text:?} is not a YYYY-MM-DD date"))
}
