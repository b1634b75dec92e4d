//! `blocksconvert-scanner`: wires flags, the index source, the plans location, metrics
//! and signals to [`index_scan::scan`]. Exit status: 0 when every plan is uploaded or already
//! present, 1 on errors, 2 when some plans were refused as conflicts.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use cortex_index::schema::SchemaConfig;
use flags::{IndexFlags, StorageFlags, TenantFlags};
use index_scan::plans::ChangedPlans;
use index_scan::select::TableFilter;
use index_scan::{ScanConfig, ScanError, ScanProgress};
use indicatif::{ProgressBar, ProgressStyle};
use plan_format::Compression;
use storage::StoreLocation;

/// Scans the Cortex chunk index once and uploads one plan per tenant and UTC day.
#[derive(Parser, Debug)]
#[command(name = "blocksconvert-scanner", version = daemon::VERSION)]
struct Args {
    /// YAML file whose keys are these flags' long names.
    #[arg(long = "config.file", env = "BLOCKSCONVERT_CONFIG_FILE")]
    config_file: Option<PathBuf>,

    /// Cortex schema config (the chunks storage's `-schema-config-file`).
    #[arg(long, env = "BLOCKSCONVERT_SCHEMA", alias = "schema-config-file")]
    schema: PathBuf,

    #[command(flatten)]
    index: IndexFlags,

    /// Where plans go: `<plans>/<tenant>/<day>.plan.snappy` (a directory or object store
    /// URL; a separate bucket or prefix keeps plans out of the tenants' namespace).
    #[arg(
        long,
        env = "BLOCKSCONVERT_PLANS",
        alias = "blocksconvert.bucket-prefix"
    )]
    plans: String,

    /// Local cache: checkpoints, sorted runs, plans before upload (default: below the
    /// per-user state directory). A kept work dir resumes a scan mid-table; which
    /// tables are done is recorded in the plans location itself.
    #[arg(long, env = "BLOCKSCONVERT_WORK_DIR", alias = "scanner.output-dir")]
    work_dir: Option<PathBuf>,

    #[command(flatten)]
    tenants: TenantFlags,

    /// Scan only tables whose time range ends after this day (YYYY-MM-DD, inclusive).
    #[arg(long, env = "BLOCKSCONVERT_PERIOD_START", alias = "scanner.scan-period-start", value_parser = index_scan::select::parse_day_arg)]
    period_start: Option<i64>,

    /// Scan only tables starting before this day (YYYY-MM-DD, exclusive).
    #[arg(long, env = "BLOCKSCONVERT_PERIOD_END", alias = "scanner.scan-period-end", value_parser = index_scan::select::parse_day_arg)]
    period_end: Option<i64>,

    /// Only these tables (comma-separated); every convertible index table when absent.
    #[arg(
        long,
        env = "BLOCKSCONVERT_TABLES",
        alias = "scanner.tables",
        value_delimiter = ','
    )]
    tables: Vec<String>,

    /// Only the newest N selected tables (0 = all).
    #[arg(
        long,
        env = "BLOCKSCONVERT_TABLES_LIMIT",
        alias = "scanner.tables-limit",
        default_value_t = 0
    )]
    tables_limit: usize,

    /// Segments read at once (threads).
    #[arg(
        long,
        env = "BLOCKSCONVERT_CONCURRENCY",
        alias = "scanner.concurrency",
        default_value_t = 4
    )]
    concurrency: usize,

    /// Buffered rows across all segments before spilling sorted runs to the work dir.
    #[arg(long, env = "BLOCKSCONVERT_MEMORY_BUDGET", default_value = "256MiB", value_parser = config_file::parse_size)]
    memory_budget: usize,

    /// Longest time between two checkpoints of a segment.
    #[arg(long, env = "BLOCKSCONVERT_CHECKPOINT_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    checkpoint_interval: Duration,

    /// Cap on rows read per second (all segments), to spare a live table's capacity.
    #[arg(long, env = "BLOCKSCONVERT_MAX_ROWS_PER_SECOND")]
    max_rows_per_second: Option<u64>,

    /// Plan file encoding.
    #[arg(long, env = "BLOCKSCONVERT_PLAN_COMPRESSION", value_enum, default_value_t = PlanCompression::Snappy)]
    plan_compression: PlanCompression,

    /// A plan whose content changed after the scheduler started its day: `refuse` keeps
    /// the old one and exits with status 2, `replace` uploads the new generation.
    #[arg(long, env = "BLOCKSCONVERT_CHANGED_PLANS", value_enum, default_value_t = ChangedPolicy::Refuse)]
    changed_plans: ChangedPolicy,

    /// Unparseable series-to-chunk entries tolerated per table.
    #[arg(long, env = "BLOCKSCONVERT_MAX_BAD_ENTRIES", default_value_t = 0)]
    max_bad_entries: u64,

    /// Keep local plan files after upload.
    #[arg(long, env = "BLOCKSCONVERT_KEEP_FILES", alias = "scanner.keep-files")]
    keep_files: bool,

    /// Scan tables again even if the work dir records them as done.
    #[arg(long, env = "BLOCKSCONVERT_RESCAN")]
    rescan: bool,

    #[command(flatten)]
    storage: StorageFlags,

    /// Serve Prometheus metrics on this address (`/metrics`) while scanning.
    #[arg(long = "metrics.listen", env = "BLOCKSCONVERT_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,

    /// Write the metrics in Prometheus text format here at the end (textfile collector).
    #[arg(long, env = "BLOCKSCONVERT_METRICS_FILE")]
    metrics_file: Option<PathBuf>,

    /// Upload nothing: write the plans under `<work-dir>/dry-run/plans` and print the
    /// tenant-days, series, chunk objects and GET requests a conversion will read
    /// (`blocksconvert convert --dry-run` adds bytes, cost and durations from the chunk
    /// store).
    #[arg(long = "dry-run", env = "BLOCKSCONVERT_DRY_RUN")]
    dry_run: bool,

    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    log: daemon::LogFlags,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PlanCompression {
    Snappy,
    Gzip,
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ChangedPolicy {
    Refuse,
    Replace,
}

fn main() -> std::process::ExitCode {
    let args: Args = daemon::parse_args_or_exit();
    if let Err(e) = daemon::init_logging(&args.log, "info") {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(2);
    }
    daemon::exit_code(run(args))
}

fn run(a: Args) -> anyhow::Result<std::process::ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let _guard = runtime.enter();
    let mut builder = daemon::metrics_builder();
    if let Some(addr) = a.metrics_listen {
        builder = builder.with_http_listener(addr);
    }
    let handle = if a.metrics_listen.is_some() {
        let (recorder, exporter) = builder.build().context("building the metrics exporter")?;
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).context("installing the metrics recorder")?;
        runtime.spawn(exporter);
        handle
    } else {
        builder
            .install_recorder()
            .context("installing the metrics recorder")?
    };
    daemon::register_process_metrics("scanner");
    index_scan::metrics::describe();
    let result = runtime.block_on(scan_main(&a));
    if let Some(path) = &a.metrics_file {
        std::fs::write(path, handle.render())
            .with_context(|| format!("writing metrics to {}", path.display()))?;
    }
    result
}

async fn scan_main(a: &Args) -> anyhow::Result<std::process::ExitCode> {
    let schema = SchemaConfig::load(&a.schema).context("--schema")?;
    let work_dir = match &a.work_dir {
        Some(d) => d.clone(),
        None => flags::state_dir()?.join("scanner"),
    };
    let _lock = daemon::lock_work_dir(&work_dir)?;
    let dry_run_plans = work_dir.join("dry-run").join("plans");
    let plans = if a.dry_run {
        eprintln!(
            "dry run: nothing is uploaded to --plans; plans go to {}",
            dry_run_plans.display()
        );
        StoreLocation::open(
            &dry_run_plans.display().to_string(),
            &a.storage.options(),
            true,
        )
        .context("dry-run plans")?
    } else {
        let plans = StoreLocation::open(&a.plans, &a.storage.options(), true).context("--plans")?;
        // Fail in seconds on a wrong URL or missing credentials, not after the scan.
        plans
            .probe_writable(std::time::Duration::from_secs(30))
            .await
            .with_context(|| format!("preflight: --plans {plans} is not writable"))?;
        plans
    };
    // A dry run keeps its scan state apart, so a later real scan starts afresh.
    let scan_dir = if a.dry_run {
        work_dir.join("dry-run").join("scan")
    } else {
        work_dir.clone()
    };
    let sources = a
        .index
        .config()
        .open(&a.storage.options(), &scan_dir.join("downloads"))
        .await?;
    let cfg = ScanConfig {
        work_dir: scan_dir.clone(),
        memory_budget: a.memory_budget,
        concurrency: a.concurrency.max(1),
        checkpoint_interval: a.checkpoint_interval,
        max_rows_per_second: a.max_rows_per_second,
        tenants: a.tenants.filter()?,
        tables: TableFilter {
            tables: a.tables.clone(),
            period_start: a.period_start,
            period_end: a.period_end,
            tables_limit: a.tables_limit,
        },
        compression: match a.plan_compression {
            PlanCompression::Snappy => Compression::Snappy,
            PlanCompression::Gzip => Compression::Gzip,
            PlanCompression::None => Compression::None,
        },
        changed_plans: match a.changed_plans {
            ChangedPolicy::Refuse => ChangedPlans::Refuse,
            ChangedPolicy::Replace => ChangedPlans::Replace,
        },
        max_bad_entries: a.max_bad_entries,
        keep_files: a.keep_files,
        rescan: a.rescan,
        ..ScanConfig::default()
    };
    let progress = Arc::new(ScanProgress::default());
    {
        let p = Arc::clone(&progress);
        tokio::spawn(async move {
            daemon::wait_for_signal().await;
            tracing::warn!("signal received: checkpointing and stopping");
            p.cancel();
        });
    }
    let bar = progress_bar(a.quiet, &progress);
    let result = index_scan::scan(&sources, &schema, &plans, &cfg, &progress).await;
    bar.finish_and_clear();
    let outcome = match result {
        Ok(o) => o,
        Err(ScanError::Cancelled) => {
            eprintln!(
                "stopped; rerun the same command to resume from the checkpoints in {}",
                scan_dir.display()
            );
            return Ok(std::process::ExitCode::from(130));
        }
        Err(e) => return Err(e.into()),
    };
    for t in &outcome.tables {
        if t.already_done {
            println!(
                "table {}: already done (recorded in the plans location), skipped",
                t.table
            );
            continue;
        }
        println!(
            "table {}: {} rows read ({} this run), {} series-to-chunk kept, {} ignored (tenant), {} ignored (schema), {} bad; {} plans ({} series): {} uploaded, {} unchanged, {} conflicts",
            t.table,
            t.counts.rows_read,
            t.rows_read_this_run,
            t.counts.kept,
            t.counts.ignored_tenant,
            t.counts.ignored_schema,
            t.counts.bad,
            t.plans,
            t.series,
            t.uploaded,
            t.unchanged,
            t.conflicts.len()
        );
    }
    println!(
        "scanned {} tables, {} rows read by this run",
        outcome.tables.len(),
        outcome.rows_read_this_run()
    );
    if a.dry_run {
        let dir = dry_run_plans.clone();
        let (t, _) =
            tokio::task::spawn_blocking(move || estimate::read_plans(&dir, None, 0)).await??;
        println!(
            "dry run: {} tenant-days of {} tenants, {} series, {} chunk objects ({} unparseable IDs): one GET per object from an object store, or {} rows per ReadRows from Bigtable",
            t.tenant_days,
            t.tenants,
            t.series,
            t.chunks,
            t.bad_ids,
            estimate::BIGTABLE_ROWS_PER_REQUEST
        );
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let conflicts = outcome.conflicts();
    if !conflicts.is_empty() {
        for c in &conflicts {
            eprintln!("conflict: {c}");
        }
        return Ok(std::process::ExitCode::from(2));
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn progress_bar(quiet: bool, p: &Arc<ScanProgress>) -> ProgressBar {
    let bar = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} rows {msg} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (b, p) = (bar.clone(), Arc::clone(p));
    tokio::spawn(async move {
        loop {
            let table = p.table.lock().map(|t| t.clone()).unwrap_or_default();
            b.set_length(p.table_rows_expected.load(Ordering::Relaxed));
            b.set_position(p.table_rows_read.load(Ordering::Relaxed));
            b.set_message(format!(
                "table {table} ({}/{} tables), segments {}/{}, plans {}",
                p.tables_done.load(Ordering::Relaxed),
                p.tables_total.load(Ordering::Relaxed),
                p.segments_done.load(Ordering::Relaxed),
                p.segments_total.load(Ordering::Relaxed),
                p.plans_done.load(Ordering::Relaxed),
            ));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    bar
}
