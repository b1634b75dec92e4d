//! `blocksconvert build`: one plan → one uploaded block, locally, with a progress bar.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use block_builder::{
    BadChunkKind, BuildConfig, BuildProgress, ChunkStores, Destinations, FetchPolicy, PlanRef,
    build_plan, clean_work_dir,
};
use clap::Args;
use cortex_index::schema::SchemaConfig;
use indicatif::{ProgressBar, ProgressStyle};
use storage::{StorageOptions, StoreLocation};

/// Flags of `blocksconvert build`.
#[derive(Args)]
pub struct BuildArgs {
    /// The plan: a file path or URL ending in .plan, .plan.gz or .plan.snappy.
    #[arg(long, env = "BLOCKSCONVERT_PLAN")]
    plan: String,
    /// Chunk store: directory or URL holding objects at their Cortex keys.
    #[arg(long, env = "BLOCKSCONVERT_CHUNKS")]
    chunks: String,
    /// Extra chunk store for periods whose schema `object_store` is TYPE (TYPE=URL);
    /// needs --schema. Periods without an entry use --chunks.
    #[arg(long = "chunks-store", value_name = "TYPE=URL")]
    chunks_store: Vec<String>,
    /// Blocks bucket or directory; the block lands at <output>/<tenant>/<ULID>/.
    #[arg(long, env = "BLOCKSCONVERT_OUTPUT")]
    output: String,
    /// Cortex schema config (selects the chunk store per period).
    #[arg(long, env = "BLOCKSCONVERT_SCHEMA")]
    schema: Option<PathBuf>,
    /// Where the plan report and block marker go (default: next to the plan).
    #[arg(long, env = "BLOCKSCONVERT_MARKERS")]
    markers: Option<String>,
    /// Scratch directory (cleaned on start).
    #[arg(
        long,
        env = "BLOCKSCONVERT_WORK_DIR",
        default_value = "blocksconvert-work"
    )]
    work_dir: PathBuf,
    /// CPU worker threads (default: all cores).
    #[arg(long, env = "BLOCKSCONVERT_WORKERS")]
    workers: Option<usize>,
    /// Series fetched ahead from remote chunk stores.
    #[arg(long, env = "BLOCKSCONVERT_FETCH_CONCURRENCY", default_value_t = 32)]
    fetch_concurrency: usize,
    /// Memory for series records before the sorter spills to disk (e.g. 64MiB).
    #[arg(long, env = "BLOCKSCONVERT_MEMORY_BUDGET", default_value = "64MiB", value_parser = config_file::parse_size)]
    memory_budget: usize,
    /// Largest fraction of missing or bad chunks with which a plan still finishes.
    #[arg(
        long,
        env = "BLOCKSCONVERT_MAX_BAD_CHUNK_FRACTION",
        default_value_t = 0.05
    )]
    max_bad_chunk_fraction: f64,
    /// Snap timestamps within this distance of a whole second (Cortex
    /// -builder.timestamp-tolerance; 0 = off).
    #[arg(long, env = "BLOCKSCONVERT_TIMESTAMP_TOLERANCE", default_value = "0ms", value_parser = humantime::parse_duration)]
    timestamp_tolerance: Duration,
    /// Keep the local block directory under the work dir after upload.
    #[arg(long)]
    keep_local_block: bool,
    /// Write the process's metrics in Prometheus text format here at the end
    /// (for node_exporter's textfile collector).
    #[arg(long, env = "BLOCKSCONVERT_METRICS_FILE")]
    metrics_file: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    storage: StorageOptions,
}

fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

pub fn run(a: BuildArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    block_builder::metrics::describe();
    if !(0.0..=1.0).contains(&a.max_bad_chunk_fraction) {
        bail!(
            "--max-bad-chunk-fraction {}: must be between 0 and 1",
            a.max_bad_chunk_fraction
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(build(&a));
    if let Some(path) = &a.metrics_file {
        std::fs::write(path, recorder.render())
            .with_context(|| format!("writing metrics to {}", path.display()))?;
    }
    result
}

async fn build(a: &BuildArgs) -> anyhow::Result<()> {
    let plan = PlanRef::open(&a.plan, &a.storage)?;
    let schema = a
        .schema
        .as_deref()
        .map(SchemaConfig::load)
        .transpose()
        .context("--schema")?;
    let mut stores = ChunkStores::new(
        StoreLocation::open(&a.chunks, &a.storage, false)?,
        schema.clone(),
    );
    for spec in &a.chunks_store {
        let Some((kind, url)) = spec.split_once('=') else {
            bail!("--chunks-store {spec:?}: expected TYPE=URL");
        };
        if schema.is_none() {
            bail!("--chunks-store needs --schema to know which periods use {kind:?}");
        }
        stores = stores.with_store(kind, StoreLocation::open(url, &a.storage, false)?);
    }
    let blocks = StoreLocation::open(&a.output, &a.storage, true)?;
    // Markers sit next to the plan, or under --markers in Cortex's <user>/<day> layout.
    let (markers, base) = match &a.markers {
        Some(m) => (StoreLocation::open(m, &a.storage, true)?, None),
        None => (plan.location.clone(), Some(plan.base().to_owned())),
    };
    let dest = Destinations {
        blocks: blocks.clone(),
        markers: markers.clone(),
        base,
    };
    clean_work_dir(&a.work_dir)?;
    let cfg = BuildConfig {
        work_dir: a.work_dir.clone(),
        workers: a.workers.unwrap_or_else(|| BuildConfig::default().workers),
        fetch_concurrency: a.fetch_concurrency,
        memory_budget: a.memory_budget,
        max_bad_chunk_fraction: a.max_bad_chunk_fraction,
        timestamp_tolerance_ms: a.timestamp_tolerance.as_millis() as i64,
        fetch: FetchPolicy {
            retries: a.storage.max_retries,
            timeout: a.storage.request_timeout,
            ..FetchPolicy::default()
        },
        keep_local_block: a.keep_local_block,
        ..BuildConfig::default()
    };
    let progress = Arc::new(BuildProgress::default());
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} series {msg} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let ticker = {
        let (bar, p) = (bar.clone(), Arc::clone(&progress));
        tokio::spawn(async move {
            loop {
                bar.set_length(p.series_total.load(Ordering::Relaxed));
                bar.set_position(p.series_done.load(Ordering::Relaxed));
                bar.set_message(format!(
                    "{:?}: {} samples, {} chunks read, {} uploaded",
                    p.phase(),
                    p.samples_written.load(Ordering::Relaxed),
                    human_bytes(p.bytes_fetched.load(Ordering::Relaxed)),
                    human_bytes(p.bytes_uploaded.load(Ordering::Relaxed)),
                ));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let started = Instant::now();
    let result = build_plan(&plan, &stores, &dest, &cfg, &progress).await;
    ticker.abort();
    bar.finish_and_clear();
    let o = match result {
        Ok(o) => o,
        Err(e) => {
            let report_at = markers.describe(&format!(
                "{}.report.json",
                dest.base.as_deref().unwrap_or("<user>/<day>")
            ));
            return Err(anyhow::Error::new(e).context(format!(
                "plan {} failed (report: {report_at})",
                plan.location.describe(&plan.key)
            )));
        }
    };
    let r = &o.report;
    let report_at = markers.describe(&format!(
        "{}.report.json",
        block_builder::marker_base(&dest, &plan, r)
    ));
    let status = r.status.as_str().replace('_', " ");
    println!(
        "built {}/{}/ ({status}): tenant {} day {} ({}), {} series, {} samples from {} decoded, {} chunks, {}; \
         {} missing and {} bad chunks, {} quarantined series; {:.2}s; report {report_at}",
        blocks,
        format_args!("{}/{}", r.user, o.ulid),
        r.user,
        r.day_index,
        cortex_index::schema::format_day(r.day_index),
        o.meta.stats.num_series,
        o.meta.stats.num_samples,
        r.samples_decoded,
        o.meta.stats.num_chunks,
        human_bytes(o.block_bytes),
        r.count(BadChunkKind::Missing),
        r.bad_chunks.len() - r.count(BadChunkKind::Missing),
        r.quarantined_series.len(),
        started.elapsed().as_secs_f64(),
    );
    if !o.replaced_blocks.is_empty() {
        println!(
            "replaced blocks of earlier attempts of this plan: {}",
            o.replaced_blocks.join(", ")
        );
    }
    Ok(())
}
