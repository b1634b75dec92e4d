//! `blocksconvert verify`: re-reads the chunk index and the chunk store and compares
//! every tenant-day with the converted blocks, sample for sample.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use cortex_index::schema::{SchemaConfig, format_day};
use flags::{ChunkStoreFlags, IndexFlags, StorageFlags, TenantFlags};
use index_scan::ScanConfig;
use index_scan::plans::ChangedPlans;
use indicatif::{ProgressBar, ProgressStyle};
use storage::StoreLocation;
use verify::{DayReport, VerifyConfig};

use crate::human;

/// Flags of `blocksconvert verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// Cortex schema config (the chunks storage's `-schema-config-file`).
    #[arg(long, env = "BLOCKSCONVERT_SCHEMA", alias = "schema-config-file")]
    schema: PathBuf,
    #[command(flatten)]
    index: IndexFlags,
    #[command(flatten)]
    chunks: ChunkStoreFlags,
    /// The converted blocks (`<blocks>/<tenant>/<ULID>/`).
    #[arg(long, env = "BLOCKSCONVERT_BLOCKS")]
    blocks: String,
    #[command(flatten)]
    tenants: TenantFlags,
    /// Only these days (YYYY-MM-DD or a day index; repeat or comma-separate).
    /// Default: every day.
    #[arg(long, value_delimiter = ',', value_parser = index_scan::select::parse_day_arg)]
    day: Vec<i64>,
    /// Scratch space: the index's plans and downloaded blocks (wiped at start;
    /// default: below the per-user state directory, never the current directory).
    #[arg(long, env = "BLOCKSCONVERT_VERIFY_WORK_DIR")]
    work_dir: Option<PathBuf>,
    /// Series whose chunks are fetched at once.
    #[arg(long, env = "BLOCKSCONVERT_FETCH_CONCURRENCY", default_value_t = 32)]
    fetch_concurrency: usize,
    /// The timestamp tolerance the blocks were built with.
    #[arg(long, env = "BLOCKSCONVERT_TIMESTAMP_TOLERANCE", default_value = "0ms", value_parser = humantime::parse_duration)]
    timestamp_tolerance: std::time::Duration,
    /// Differences, missing and extra series printed per tenant-day.
    #[arg(long, default_value_t = 5)]
    max_listed: usize,
    /// One JSON object per tenant-day instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    storage: StorageFlags,
}

/// The day of a plan key `<tenant>/<day>.plan…`.
fn plan_day(key: &str) -> Option<i64> {
    key.rsplit('/').next()?.split('.').next()?.parse().ok()
}

pub fn run(a: VerifyArgs) -> anyhow::Result<std::process::ExitCode> {
    daemon::block_on(Some(2), verify_main(&a))
}

async fn verify_main(a: &VerifyArgs) -> anyhow::Result<std::process::ExitCode> {
    let schema = SchemaConfig::load(&a.schema).context("--schema")?;
    let work_dir = match &a.work_dir {
        Some(d) => d.clone(),
        None => flags::state_dir()?.join("verify"),
    };
    let _lock = daemon::lock_work_dir(&work_dir)?;
    // Wiped at start (the lock file stays, held).
    storage::empty_work_dir(&work_dir)
        .map_err(|(p, e)| anyhow::anyhow!("cleaning --work-dir: {}: {e}", p.display()))?;
    let plans_dir = work_dir.join("plans");
    let plans = StoreLocation::local(&plans_dir, true).context("--work-dir")?;
    // The index is read afresh into plans: the comparison does not trust the plans the
    // conversion used (an index change since then shows up as a difference).
    let sources = a
        .index
        .config()
        .open(&a.storage.options(), &work_dir.join("downloads"))
        .await?;
    let scan_cfg = ScanConfig {
        work_dir: work_dir.join("scan"),
        tenants: a.tenants.filter()?,
        changed_plans: ChangedPlans::Replace,
        ..ScanConfig::default()
    };
    let progress = Arc::new(index_scan::ScanProgress::default());
    index_scan::scan(&sources, &schema, &plans, &scan_cfg, &progress)
        .await
        .context("reading the index")?;
    let mut files: Vec<PathBuf> = plans
        .list("")
        .await?
        .into_iter()
        .filter(|(k, _)| k.contains(".plan"))
        .filter(|(k, _)| a.day.is_empty() || plan_day(k).is_some_and(|d| a.day.contains(&d)))
        .map(|(k, _)| plans_dir.join(k))
        .collect();
    files.sort();

    let cfg = VerifyConfig {
        stores: a.chunks.open_beside_index(
            Some(schema),
            &a.storage.options(),
            a.index.config().bigtable(),
        )?,
        blocks: StoreLocation::open(&a.blocks, &a.storage.options(), false).context("--blocks")?,
        work_dir: work_dir.join("blocks"),
        fetch_concurrency: a.fetch_concurrency,
        timestamp_tolerance_ms: a.timestamp_tolerance.as_millis() as i64,
        max_listed: a.max_listed,
    };
    let bar = if a.json || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(files.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} tenant-days",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut checked, mut failed) = (0u64, 0u64);
    let mut catalog = verify::BlockCatalog::default();
    for file in &files {
        let report = verify::verify_plan(file, &cfg, &mut catalog).await?;
        bar.inc(1);
        checked += 1;
        if !report.ok() {
            failed += 1;
        }
        bar.suspend(|| print_report(&report, a.json));
    }
    bar.finish_and_clear();
    if checked == 0 {
        bail!("nothing to verify: the index has no series for the selected tenants and days");
    }
    if !a.json {
        println!(
            "verified {checked} tenant-days: {} OK, {failed} with differences",
            checked - failed
        );
    }
    Ok(if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

fn print_report(r: &DayReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
        return;
    }
    let verdict = if r.ok() { "OK  " } else { "FAIL" };
    let mut notes = Vec::new();
    if r.missing_chunks > 0 {
        notes.push(format!(
            "{} chunks missing from the store",
            r.missing_chunks
        ));
    }
    if r.bad_chunks > 0 {
        notes.push(format!("{} unreadable chunks", r.bad_chunks));
    }
    if r.quarantined_series > 0 {
        notes.push(format!(
            "{} series with conflicting labels",
            r.quarantined_series
        ));
    }
    println!(
        "{verdict} {} {}: {}/{} series, {} samples; blocks {}{}",
        r.tenant,
        format_day(r.day),
        human::count(r.series_matched),
        human::count(r.series_expected),
        human::count(r.samples_expected),
        if r.blocks.is_empty() {
            "-".to_owned()
        } else {
            r.blocks.join(",")
        },
        if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
        }
    );
    for e in &r.errors {
        println!("     error: {e}");
    }
    if r.series_differing > 0 {
        println!("     {} series differ:", r.series_differing);
        for d in &r.differences {
            println!("       {d}");
        }
    }
    if r.series_missing > 0 {
        println!("     {} series missing from the blocks:", r.series_missing);
        for m in &r.missing {
            println!("       {m}");
        }
    }
    if r.series_extra > 0 {
        println!(
            "     {} series in the blocks but not in the chunks:",
            r.series_extra
        );
        for m in &r.extra {
            println!("       {m}");
        }
    }
}
