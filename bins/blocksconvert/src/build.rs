//! `blocksconvert build`: one plan → one uploaded block, locally, with a progress bar.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use block_builder::{
    BadChunkKind, BuildProgress, Destinations, PlanRef, build_plan, clean_work_dir,
};
use clap::Args;
use flags::BuildFlags;
use indicatif::{ProgressBar, ProgressStyle};
use storage::StoreLocation;

/// Flags of `blocksconvert build`.
#[derive(Args)]
pub struct BuildArgs {
    /// The plan: a file path or URL ending in .plan, .plan.gz or .plan.snappy.
    #[arg(long, env = "BLOCKSCONVERT_PLAN")]
    plan: String,
    /// Where the plan report and block marker go (default: next to the plan).
    #[arg(long, env = "BLOCKSCONVERT_MARKERS")]
    markers: Option<String>,
    /// Write the process's metrics in Prometheus text format here at the end
    /// (for node_exporter's textfile collector).
    #[arg(long, env = "BLOCKSCONVERT_METRICS_FILE")]
    metrics_file: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    build: BuildFlags,
}

pub fn run(a: BuildArgs) -> anyhow::Result<()> {
    let recorder = daemon::metrics_builder()
        .install_recorder()
        .context("installing the metrics recorder")?;
    block_builder::metrics::describe();
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
    let b = &a.build;
    let plan = PlanRef::open(&a.plan, &b.storage.options())?;
    let stores = b.chunk_stores()?;
    let blocks = b.blocks()?;
    // Markers sit next to the plan, or under --markers in Cortex's <user>/<day> layout.
    let (markers, base) = match &a.markers {
        Some(m) => (StoreLocation::open(m, &b.storage.options(), true)?, None),
        None => (plan.location.clone(), Some(plan.base().to_owned())),
    };
    let dest = Destinations {
        blocks: blocks.clone(),
        markers: markers.clone(),
        base,
        expect: None,
        existing: Default::default(),
    };
    let cfg = b.build_config()?;
    let _lock = daemon::lock_work_dir(&cfg.work_dir)?;
    clean_work_dir(&cfg.work_dir)?;
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
                    crate::human::bytes(p.bytes_fetched.load(Ordering::Relaxed)),
                    crate::human::bytes(p.bytes_uploaded.load(Ordering::Relaxed)),
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
        crate::human::bytes(o.block_bytes),
        r.count(BadChunkKind::Missing),
        r.bad_chunk_total() - r.count(BadChunkKind::Missing),
        r.quarantined_total(),
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
