//! `blocksconvert-builder`: wires flags, the scheduler client, stores, metrics and
//! signals to [`builder_service::run`]. SIGTERM stops leasing, lets running builds finish
//! within `--grace-period`, then releases what is left; exit status 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use builder_service::WorkerConfig;
use clap::Parser;
use flags::{BuildFlags, ClientSecurityFlags};

/// Leases plans from the scheduler and turns each into an uploaded TSDB block.
#[derive(Parser, Debug)]
#[command(name = "blocksconvert-builder", version = daemon::VERSION)]
struct Args {
    /// YAML file whose keys are these flags' long names.
    #[arg(long = "config.file", env = "BLOCKSCONVERT_CONFIG_FILE")]
    config_file: Option<PathBuf>,
    /// Scheduler gRPC address (`host:port`, `http://host:port` or `https://host:port`).
    #[arg(
        long,
        env = "BLOCKSCONVERT_SCHEDULER",
        alias = "builder.scheduler-endpoint"
    )]
    scheduler: String,
    /// Worker identity shown by the scheduler (default: host name and process id).
    #[arg(long, env = "BLOCKSCONVERT_NAME", alias = "builder.name")]
    name: Option<String>,
    /// Plans built at once.
    #[arg(long, env = "BLOCKSCONVERT_CONCURRENCY", default_value_t = 1)]
    concurrency: usize,
    /// On SIGTERM, time running builds get to finish before their leases are released.
    #[arg(long, env = "BLOCKSCONVERT_GRACE_PERIOD", default_value = "2m", value_parser = humantime::parse_duration)]
    grace_period: Duration,
    /// Long-poll of one lease request.
    #[arg(long, env = "BLOCKSCONVERT_LEASE_WAIT", default_value = "10s", value_parser = humantime::parse_duration)]
    lease_wait: Duration,
    /// Serve /metrics on this address.
    #[arg(long = "metrics.listen", env = "BLOCKSCONVERT_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    security: ClientSecurityFlags,
    #[command(flatten)]
    build: BuildFlags,
    #[command(flatten)]
    log: daemon::LogFlags,
}

fn main() -> std::process::ExitCode {
    let args: Args = daemon::parse_args_or_exit();
    if let Err(e) = daemon::init_logging(&args.log, "info") {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(2);
    }
    daemon::exit_code(daemon::block_on(None, async move {
        run(args).await.map(|()| std::process::ExitCode::SUCCESS)
    }))
}

fn default_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "builder".into());
    format!("{host}-{}", std::process::id())
}

async fn run(a: Args) -> anyhow::Result<()> {
    let mut metrics = daemon::metrics_builder();
    if let Some(addr) = a.metrics_listen {
        metrics = metrics.with_http_listener(addr);
        metrics.install().context("--metrics.listen")?;
    } else {
        metrics
            .install_recorder()
            .context("installing the metrics recorder")?;
    }
    daemon::register_process_metrics("builder");
    block_builder::metrics::describe();
    builder_service::metric::describe();
    let cfg = WorkerConfig {
        name: a.name.clone().unwrap_or_else(default_name),
        concurrency: a.concurrency.max(1),
        grace_period: a.grace_period,
        lease_wait: a.lease_wait,
        storage: a.build.storage.options(),
    };
    let security = builder_service::SchedulerSecurity {
        tls: a.security.tls(a.scheduler.starts_with("https://"))?,
        token: a.security.token()?,
    };
    let client = builder_service::connect(&a.scheduler, security)?;
    let stop_rx = tokio_util::sync::CancellationToken::new();
    let stop_tx = stop_rx.clone();
    tokio::spawn(async move {
        daemon::wait_for_signal().await;
        tracing::info!("signal received: draining");
        stop_tx.cancel();
    });
    tracing::info!(worker = %cfg.name, scheduler = %a.scheduler, concurrency = cfg.concurrency, "builder starting");
    let build = a.build.build_config()?;
    let _lock = daemon::lock_work_dir(&build.work_dir)?;
    let (stores, blocks) = (a.build.chunk_stores()?, a.build.blocks()?);
    builder_service::preflight::builder(&stores, &blocks).await?;
    let summary = builder_service::run(cfg, client, stores, blocks, build, stop_rx).await?;
    tracing::info!(
        done = summary.done,
        failed = summary.failed,
        lost = summary.lost,
        released = summary.released,
        "builder stopped"
    );
    Ok(())
}
