//! `blocksconvert convert`: the whole migration in one process (scan, schedule, build)
//! with progress bars and a closing summary; Ctrl-C stops it, rerunning resumes.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use all_in_one::{ConvertConfig, ConvertProgress, ConvertSummary, Stage};
use anyhow::{Context, bail};
use clap::Args;
use cortex_index::schema::{SchemaConfig, format_day};
use cortex_index::tenant::{DayRange, with_date};
use flags::{BuildFlags, IndexFlags, TenantFlags};
use index_scan::ScanConfig;
use index_scan::select::TableFilter;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use storage::StoreLocation;

use crate::human;

/// Flags of `blocksconvert convert`.
#[derive(Args)]
// The schema is optional for `build` (one plan) but needed here: say so in --help.
#[command(mut_arg("schema", |a| a.required(true)))]
pub struct ConvertArgs {
    #[command(flatten)]
    index: IndexFlags,
    #[command(flatten)]
    build: BuildFlags,
    #[command(flatten)]
    tenants: TenantFlags,
    /// Plans and their progress markers (default: <work-dir>/plans). Keep it: it is the
    /// conversion's memory of what is done.
    #[arg(
        long,
        env = "BLOCKSCONVERT_PLANS",
        alias = "blocksconvert.bucket-prefix"
    )]
    plans: Option<String>,
    /// Convert only days from this one on (YYYY-MM-DD, inclusive). Unlike the
    /// scanner's table-wide flag, a partly covered index table gives only the days in
    /// range; a later run with a wider range converts the rest.
    #[arg(long, env = "BLOCKSCONVERT_PERIOD_START", value_parser = index_scan::select::parse_day_arg)]
    period_start: Option<i64>,
    /// Convert only days before this one (YYYY-MM-DD, exclusive).
    #[arg(long, env = "BLOCKSCONVERT_PERIOD_END", value_parser = index_scan::select::parse_day_arg)]
    period_end: Option<i64>,
    /// Plans (tenant-days) converted at once; each uses --workers threads.
    #[arg(long, env = "BLOCKSCONVERT_BUILDERS", default_value_t = 1)]
    builders: usize,
    /// Attempts per tenant-day before it is given up on (and reported).
    #[arg(long, env = "BLOCKSCONVERT_MAX_ATTEMPTS", default_value_t = 3)]
    max_attempts: u32,
    /// Index segments read at once while scanning.
    #[arg(
        long = "scan.concurrency",
        env = "BLOCKSCONVERT_SCAN_CONCURRENCY",
        default_value_t = 4
    )]
    scan_concurrency: usize,
    /// Index rows buffered while scanning before sorted runs spill to the work dir.
    #[arg(long = "scan.memory-budget", env = "BLOCKSCONVERT_SCAN_MEMORY_BUDGET", default_value = "256MiB", value_parser = config_file::parse_size)]
    scan_memory_budget: usize,
    /// Write the process's metrics in Prometheus text format here at the end.
    #[arg(long, env = "BLOCKSCONVERT_METRICS_FILE")]
    metrics_file: Option<PathBuf>,
    #[command(flatten)]
    dry_run: DryRunArgs,
    /// No progress bars (a status line every 10 s instead).
    #[arg(long, short)]
    quiet: bool,
}

/// Flags of `convert --dry-run`.
#[derive(Args)]
pub struct DryRunArgs {
    /// Convert nothing: scan the index into scratch plans under the work dir and print
    /// the tenant-days, series, chunk objects, requests, bytes, their cost and the
    /// duration per number of builders. Bytes and samples come from a sample of the
    /// chunks (exact when it covers them all).
    #[arg(long = "dry-run", env = "BLOCKSCONVERT_DRY_RUN")]
    enabled: bool,
    /// Chunks the dry run fetches and decodes to measure bytes, samples and speed.
    #[arg(
        long = "dry-run.sample",
        env = "BLOCKSCONVERT_DRY_RUN_SAMPLE",
        default_value_t = 1000
    )]
    sample: usize,
    /// Price of 1,000 GET requests in the chunk store, in dollars (default: the list
    /// price of S3 Standard GETs and GCS class B operations).
    #[arg(
        long = "dry-run.price-per-1000-requests",
        env = "BLOCKSCONVERT_DRY_RUN_PRICE_PER_1000_REQUESTS",
        default_value_t = 0.0004
    )]
    price_per_1000: f64,
}

impl ConvertArgs {
    /// The scan's settings, with its checkpoints in `work_dir`.
    fn scan_config(&self, work_dir: PathBuf, days: DayRange) -> anyhow::Result<ScanConfig> {
        Ok(ScanConfig {
            work_dir,
            memory_budget: self.scan_memory_budget,
            concurrency: self.scan_concurrency.max(1),
            tenants: self.tenants.filter()?,
            tables: TableFilter {
                period_start: self.period_start,
                period_end: self.period_end,
                ..TableFilter::default()
            },
            days,
            ..ScanConfig::default()
        })
    }
}

/// The default work dir's name: one per (index, output) pair, so the same migration
/// finds its state from any current directory and two migrations never share plans.
fn default_work_dir_name(index: &str, output: &str) -> String {
    let canonical = |spec: &str| {
        if spec.contains("://") {
            spec.trim_end_matches('/').to_owned()
        } else {
            // Absolute, not canonical: the output may not exist before the first run.
            std::path::absolute(spec).map_or_else(|_| spec.to_owned(), |p| p.display().to_string())
        }
    };
    format!(
        "convert-{}",
        short_digest(&format!("{}\n{}", canonical(index), canonical(output)))
    )
}

/// The first 12 hex digits of the SHA-256 of `text`.
fn short_digest(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text);
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// Exit status of an interrupted run (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

pub fn run(a: ConvertArgs) -> anyhow::Result<std::process::ExitCode> {
    let recorder = daemon::metrics_builder()
        .install_recorder()
        .context("installing the metrics recorder")?;
    block_builder::metrics::describe();
    index_scan::metrics::describe();
    scheduler_service::metrics::describe();
    builder_service::metric::describe();
    let result = daemon::block_on(Some(2), convert_main(&a));
    if let Some(path) = &a.metrics_file {
        std::fs::write(path, recorder.render())
            .with_context(|| format!("writing metrics to {}", path.display()))?;
    }
    result
}

async fn convert_main(a: &ConvertArgs) -> anyhow::Result<std::process::ExitCode> {
    let b = &a.build;
    let Some(schema_path) = &b.schema else {
        bail!("--schema is required (the Cortex schema config, schema.yaml)");
    };
    let schema = SchemaConfig::load(schema_path).context("--schema")?;
    let days = DayRange {
        start: a.period_start,
        end: a.period_end,
    };
    if let (Some(s), Some(e)) = (days.start, days.end)
        && s >= e
    {
        bail!(
            "--period-start {} is not before --period-end {} (the end day is exclusive)",
            format_day(s),
            format_day(e)
        );
    }
    let root = match &b.work_dir {
        Some(d) => d.clone(),
        None => b.work_dir_or(&default_work_dir_name(
            &a.index.config().describe(),
            &b.output,
        ))?,
    };
    // One convert per work dir: its scheduler takes this work dir's open leases as a
    // dead run's.
    let _lock = daemon::lock_work_dir(&root)?;
    eprintln!("blocksconvert convert: state in {}", root.display());
    if !days.is_all() {
        eprintln!(
            "blocksconvert convert: days {} only (start inclusive, end exclusive)",
            days.describe()
        );
    }
    if a.dry_run.enabled {
        return dry_run(a, &schema, &root, days).await;
    }
    let plans_spec = match &a.plans {
        Some(p) => p.clone(),
        None => root.join("plans").display().to_string(),
    };
    let plans = StoreLocation::open(&plans_spec, &b.storage.options(), true).context("--plans")?;
    let plans_url =
        storage::shareable_url(&plans_spec).with_context(|| format!("--plans {plans_spec}"))?;
    let mut build = b.build_config()?;
    build.work_dir = root.join("build");
    let cfg = ConvertConfig {
        scan: a.scan_config(root.join("scan"), days)?,
        plans,
        plans_url,
        stores: b.chunk_stores_beside_index(a.index.config().bigtable())?,
        blocks: b.blocks()?,
        build,
        builders: a.builders.max(1),
        max_attempts: a.max_attempts.max(1),
        storage: b.storage.options(),
        worker_name: format!("convert-{}", &short_digest(&root.display().to_string())),
        owns_plans: a.plans.is_none(),
    };
    let sources = a
        .index
        .config()
        .open(&b.storage.options(), &root.join("scan").join("downloads"))
        .await?;

    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        daemon::wait_for_signal().await;
        eprintln!("signal received: stopping (running tenant-days are released; rerun to resume)");
        stop.cancel();
    });
    let progress = Arc::new(ConvertProgress::default());
    let display = Display::start(a.quiet, a.builders.max(1), Arc::clone(&progress));
    let output = b.output.clone();
    let result = all_in_one::run(sources, &schema, cfg, progress, shutdown).await;
    display.finish().await;
    let summary = result?;
    print_summary(&summary, &output, &root);
    Ok(if summary.interrupted {
        std::process::ExitCode::from(INTERRUPTED)
    } else if !summary.failed.is_empty()
        || !summary
            .scan
            .as_ref()
            .is_none_or(|s| s.conflicts().is_empty())
    {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

/// `convert --dry-run`: the scan into scratch plans, then the estimate.
async fn dry_run(
    a: &ConvertArgs,
    schema: &SchemaConfig,
    root: &std::path::Path,
    days: DayRange,
) -> anyhow::Result<std::process::ExitCode> {
    let b = &a.build;
    let scratch = root.join("dry-run");
    let plans_dir = scratch.join("plans");
    eprintln!(
        "blocksconvert convert --dry-run: nothing is converted; the index is scanned into {}",
        plans_dir.display()
    );
    let plans = StoreLocation::open(&plans_dir.display().to_string(), &b.storage.options(), true)
        .context("dry-run plans")?;
    let scan = a.scan_config(scratch.join("scan"), days)?;
    let stores = b.chunk_stores_beside_index(a.index.config().bigtable())?;
    let sources = a
        .index
        .config()
        .open(
            &b.storage.options(),
            &scratch.join("scan").join("downloads"),
        )
        .await?;
    let progress = Arc::new(ConvertProgress::default());
    let display = Display::start(a.quiet, 0, Arc::clone(&progress));
    let scan_progress = Arc::clone(&progress.scan);
    let on_signal = tokio::spawn(async move {
        daemon::wait_for_signal().await;
        eprintln!("signal received: stopping the dry run (rerun to resume its scan)");
        scan_progress.cancel();
    });
    let scanned = index_scan::scan(&sources, schema, &plans, &scan, &progress.scan).await;
    on_signal.abort();
    display.finish().await;
    match scanned {
        Ok(_) => {}
        Err(index_scan::ScanError::Cancelled) => {
            return Ok(std::process::ExitCode::from(INTERRUPTED));
        }
        Err(e) => return Err(e.into()),
    }
    let (sample_size, dir, for_plans) = (a.dry_run.sample, plans_dir.clone(), stores.clone());
    let (totals, keys) = tokio::task::spawn_blocking(move || {
        estimate::read_plans(&dir, Some(&for_plans), sample_size)
    })
    .await??;
    let sample = estimate::measure_sample(&stores, keys, b.build_config()?.fetch).await?;
    let e = estimate::Estimate {
        totals,
        sample: Some(sample),
    };
    let build = b.build_config()?;
    print_estimate(&e, a, build.workers, build.fetch_concurrency);
    Ok(std::process::ExitCode::SUCCESS)
}

fn print_estimate(e: &estimate::Estimate, a: &ConvertArgs, workers: usize, fetch: usize) {
    let t = &e.totals;
    println!("blocksconvert convert --dry-run: nothing was converted");
    let days = t.days.map_or("no days".to_owned(), |(first, last)| {
        format!("{} to {}", format_day(first), format_day(last))
    });
    println!(
        "  tenant-days  {} ({} tenants, {days})",
        t.tenant_days, t.tenants
    );
    println!("  series       {}", human::count(t.series));
    println!(
        "  chunks       {} objects: {} GET requests, {} Bigtable rows in {} ReadRows requests, {} unparseable IDs",
        human::count(t.chunks),
        human::count(t.object_requests()),
        human::count(t.bigtable_chunks),
        human::count(t.bigtable_requests()),
        human::count(t.bad_ids)
    );
    let how = match &e.sample {
        Some(s) if e.exact() => format!("exact: every chunk was read; {} missing", s.missing),
        Some(s) => format!(
            "estimated from {} sampled chunks, {} of them missing",
            human::count(s.asked),
            s.missing
        ),
        None => "no chunk store sampled".to_owned(),
    };
    if let (Some(bytes), Some(samples)) = (e.bytes(), e.samples()) {
        println!(
            "  bytes        {} ({} bytes; {how})",
            human::bytes(bytes),
            human::count(bytes)
        );
        println!("  samples      {}", human::count(samples));
        if let Some(missing) = e.missing() {
            println!("  missing      {} chunks", human::count(missing));
        }
    }
    println!(
        "  cost         ${:.4} for GET requests at ${} per 1,000 (--dry-run.price-per-1000-requests; transfer inside the region is free, Bigtable bills nodes, not requests)",
        e.request_cost(a.dry_run.price_per_1000),
        a.dry_run.price_per_1000
    );
    let mut counts: Vec<usize> = vec![1, 2, 4, 8, 16, 32, a.builders.max(1)];
    counts.sort_unstable();
    counts.dedup();
    let durations: Vec<String> = counts
        .iter()
        .filter_map(|&n| {
            Some(format!(
                "{n} builders {}",
                human::duration(e.duration(n, workers, fetch)?)
            ))
        })
        .collect();
    if !durations.is_empty() {
        println!(
            "  duration     {} (each with --workers {workers}, --fetch-concurrency {fetch})",
            durations.join(", ")
        );
    }
}

fn print_summary(s: &ConvertSummary, output: &str, root: &std::path::Path) {
    let state = if s.interrupted {
        "interrupted"
    } else if s.failed.is_empty() {
        "done"
    } else {
        "done with failures"
    };
    println!(
        "blocksconvert convert: {state} in {:.1}s",
        s.duration.as_secs_f64()
    );
    if s.interrupted && s.scan.is_none() {
        println!(
            "  interrupted while scanning the index; rerun the same command to resume from the checkpoints in {}",
            root.join("scan").display()
        );
        return;
    }
    if let Some(scan) = &s.scan {
        println!(
            "  index        {} tables, {} rows read by this run",
            scan.tables.len(),
            human::count(scan.rows_read_this_run())
        );
        for c in scan.conflicts() {
            println!("  conflict     {c}");
        }
    }
    println!(
        "  tenant-days  {} planned, {} converted ({} with gaps), {} failed, {} left",
        s.tenant_days,
        s.finished,
        s.with_gaps,
        s.failed.len(),
        s.pending
    );
    println!("  series       {}", human::count(s.series));
    println!("  samples      {}", human::count(s.samples));
    println!("  blocks       {} in {output}", human::bytes(s.block_bytes));
    println!(
        "  chunks       {} missing, {} unreadable; {} series quarantined (see the plans' .report.json)",
        s.missing_chunks, s.bad_chunks, s.quarantined_series
    );
    println!(
        "  this run     {} tenant-days built, {} failed attempts, {} released",
        s.builds.done, s.builds.failed, s.builds.released
    );
    if s.builds.kept > 0 {
        println!(
            "  kept         {} tenant-days already had their block in {output} (no second block written)",
            s.builds.kept
        );
    }
    if s.resumed > 0 || !s.retried.is_empty() {
        println!(
            "  resumed      {} tenant-days an earlier run was building, {} it had given up on",
            s.resumed,
            s.retried.len()
        );
    }
    for f in &s.failed {
        println!("  FAILED       {}: {}", with_date(&f.plan), f.reason);
    }
    for r in &s.unreadable_reports {
        println!("  no report    {r}");
    }
    if s.interrupted {
        println!(
            "  rerun the same command to resume (state in {})",
            root.display()
        );
    }
}

/// Progress bars on a terminal, a status line every 10 s otherwise.
struct Display {
    ticker: tokio::task::JoinHandle<()>,
    bars: MultiProgress,
}

impl Display {
    fn start(quiet: bool, builders: usize, p: Arc<ConvertProgress>) -> Self {
        let tty = !quiet && std::io::stderr().is_terminal();
        let bars = MultiProgress::with_draw_target(if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let style = |t: &str| {
            ProgressStyle::with_template(t).unwrap_or_else(|_| ProgressStyle::default_bar())
        };
        let main = bars.add(ProgressBar::new(0));
        main.set_style(style(
            "{spinner} [{elapsed_precise}] {prefix:10} {bar:30} {pos}/{len} {msg} (eta {eta})",
        ));
        let counting = style("    {prefix:32} {bar:30} {pos}/{len} series {per_sec} {msg}");
        // Before a plan is read its series are unknown: the phase alone, no "0/0".
        let reading = style("    {prefix:32} {msg}");
        let plans: Vec<ProgressBar> = (0..builders)
            .map(|_| {
                let b = bars.add(ProgressBar::new(0));
                b.set_style(reading.clone());
                b
            })
            .collect();
        let ticker = tokio::spawn(async move {
            let mut last_line = Instant::now();
            loop {
                let line = match p.stage() {
                    Stage::Scanning => {
                        let s = &p.scan;
                        main.set_prefix("scanning");
                        main.set_length(s.table_rows_expected.load(Ordering::Relaxed));
                        main.set_position(s.table_rows_read.load(Ordering::Relaxed));
                        let (done, total) = (
                            s.tables_done.load(Ordering::Relaxed),
                            s.tables_total.load(Ordering::Relaxed),
                        );
                        let tables = if total == 0 {
                            "listing tables".to_owned()
                        } else {
                            format!("table {}/{total}", (done + 1).min(total))
                        };
                        let msg = format!(
                            "rows; {tables}, {} plans written",
                            s.plans_done.load(Ordering::Relaxed)
                        );
                        main.set_message(msg.clone());
                        format!(
                            "scanning the index: {} rows read; {tables}, {} plans written",
                            s.rows_read.load(Ordering::Relaxed),
                            s.plans_done.load(Ordering::Relaxed)
                        )
                    }
                    Stage::Converting | Stage::Done => match p.status() {
                        None => "listing plans".to_owned(),
                        Some(st) => {
                            main.set_prefix("converting");
                            main.set_length(st.total);
                            main.set_position(st.finished + st.failed);
                            let msg = format!(
                                "tenant-days; {} building, {} waiting to retry, {} failed",
                                st.active.len(),
                                st.waiting,
                                st.failed
                            );
                            main.set_message(msg.clone());
                            for (i, bar) in plans.iter().enumerate() {
                                match st.active.get(i) {
                                    Some(a) => {
                                        bar.set_style(if a.series_total == 0 {
                                            reading.clone()
                                        } else {
                                            counting.clone()
                                        });
                                        bar.set_prefix(with_date(&a.plan));
                                        bar.set_length(a.series_total);
                                        bar.set_position(a.series_done);
                                        bar.set_message(a.phase.clone());
                                    }
                                    None => {
                                        bar.set_style(reading.clone());
                                        bar.set_prefix("idle");
                                        bar.set_length(0);
                                        bar.set_position(0);
                                        bar.set_message("");
                                    }
                                }
                            }
                            format!("converting: {}/{} {msg}", st.finished + st.failed, st.total)
                        }
                    },
                };
                if !tty && !quiet && last_line.elapsed() >= Duration::from_secs(10) {
                    eprintln!("{line}");
                    last_line = Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self { ticker, bars }
    }

    async fn finish(self) {
        self.ticker.abort();
        let _ = self.ticker.await;
        let _ = self.bars.clear();
    }
}
