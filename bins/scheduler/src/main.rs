//! `blocksconvert-scheduler`: wires flags, the plans location, the gRPC and HTTP
//! listeners and signals to [`scheduler_service::Scheduler`]. Everything it knows is in the
//! bucket, so it can be stopped, restarted or moved at any time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use flags::{ServerSecurityFlags, StorageFlags, TenantFlags};
use scheduler_service::{QueueOrder, RegistryConfig, Scheduler, SchedulerConfig};
use storage::StoreLocation;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Order {
    NewestFirst,
    OldestFirst,
}

/// Leases plans to builders over gRPC and tracks them with markers in the bucket.
#[derive(Parser, Debug)]
#[command(name = "blocksconvert-scheduler", version = daemon::VERSION)]
struct Args {
    /// YAML file whose keys are these flags' long names.
    #[arg(long = "config.file", env = "BLOCKSCONVERT_CONFIG_FILE")]
    config_file: Option<PathBuf>,
    /// Plans location written by the scanner (directory or object store URL).
    #[arg(
        long,
        env = "BLOCKSCONVERT_PLANS",
        alias = "blocksconvert.bucket-prefix"
    )]
    plans: String,
    /// Blocks bucket or directory the builders upload to: a completion is accepted
    /// only once its block's meta.json is there, for the plan's tenant and day.
    #[arg(long, env = "BLOCKSCONVERT_BLOCKS", alias = "output")]
    blocks: String,
    /// gRPC listen address (workers connect here).
    #[arg(
        long,
        env = "BLOCKSCONVERT_GRPC_LISTEN",
        default_value = "0.0.0.0:9095"
    )]
    grpc_listen: SocketAddr,
    /// HTTP listen address (/plans, /metrics, /ready, /healthz).
    #[arg(
        long,
        env = "BLOCKSCONVERT_HTTP_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    http_listen: SocketAddr,
    /// Tool served; requests from another tool are refused (builders and cleaners
    /// need separate schedulers and plan locations).
    #[arg(long, env = "BLOCKSCONVERT_TOOL", default_value = "builder")]
    tool: String,
    /// Period of full listings of the plans location (new plans, Cortex workers' markers).
    #[arg(long, env = "BLOCKSCONVERT_SCAN_INTERVAL", alias = "scheduler.scan-interval", default_value = "1m", value_parser = humantime::parse_duration)]
    scan_interval: Duration,
    /// A lease is lost when its worker sends no heartbeat for this long.
    #[arg(long, env = "BLOCKSCONVERT_LEASE_TTL", default_value = "2m", value_parser = humantime::parse_duration)]
    lease_ttl: Duration,
    /// Heartbeat period told to workers (well below --lease-ttl).
    #[arg(long, env = "BLOCKSCONVERT_HEARTBEAT", default_value = "15s", value_parser = humantime::parse_duration)]
    heartbeat: Duration,
    /// Lease lifetime of Cortex workers (they only rewrite progress files).
    #[arg(long, env = "BLOCKSCONVERT_LEGACY_LEASE_TTL", alias = "scheduler.max-progress-file-age", default_value = "30m", value_parser = humantime::parse_duration)]
    legacy_lease_ttl: Duration,
    /// Failed attempts before a plan is quarantined (`.error`).
    #[arg(long, env = "BLOCKSCONVERT_MAX_ATTEMPTS", default_value_t = 5)]
    max_attempts: u32,
    /// Wait before the first retry; doubles per failure.
    #[arg(long, env = "BLOCKSCONVERT_RETRY_BACKOFF", default_value = "30s", value_parser = humantime::parse_duration)]
    retry_backoff: Duration,
    /// Longest wait before a retry.
    #[arg(long, env = "BLOCKSCONVERT_RETRY_BACKOFF_MAX", default_value = "30m", value_parser = humantime::parse_duration)]
    retry_backoff_max: Duration,
    /// Hand-out order of days.
    #[arg(
        long,
        env = "BLOCKSCONVERT_ORDER",
        value_enum,
        default_value = "newest-first"
    )]
    order: Order,
    /// Take turns between tenants so one giant tenant does not starve the others.
    #[arg(long, env = "BLOCKSCONVERT_FAIR_TENANTS")]
    fair_tenants: bool,
    #[command(flatten)]
    tenants: TenantFlags,
    /// Longest long-poll of a Lease call.
    #[arg(long, env = "BLOCKSCONVERT_MAX_LEASE_WAIT", default_value = "20s", value_parser = humantime::parse_duration)]
    max_lease_wait: Duration,
    /// Serve /plans without the bearer token (it lists tenants, days and workers).
    #[arg(long = "plans-page-public", env = "BLOCKSCONVERT_PLANS_PAGE_PUBLIC")]
    plans_page_public: bool,
    #[command(flatten)]
    security: ServerSecurityFlags,
    #[command(flatten)]
    storage: StorageFlags,
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

/// How workers open the plans: the URL as given, local directories made absolute.
async fn run(a: Args) -> anyhow::Result<()> {
    let recorder = daemon::metrics_builder()
        .install_recorder()
        .context("installing the metrics recorder")?;
    daemon::register_process_metrics("scheduler");
    scheduler_service::metrics::describe();
    if a.heartbeat * 2 > a.lease_ttl {
        anyhow::bail!(
            "--heartbeat {:?} must be at most half of --lease-ttl {:?}",
            a.heartbeat,
            a.lease_ttl
        );
    }
    let plans = StoreLocation::open(&a.plans, &a.storage.options(), true).context("--plans")?;
    let blocks = StoreLocation::open(&a.blocks, &a.storage.options(), false).context("--blocks")?;
    let security = scheduler_service::serve::Security {
        tls: a.security.tls()?,
        token: a.security.token()?,
        plans_public: a.plans_page_public,
    };
    let cfg = SchedulerConfig {
        tool: a.tool.clone(),
        registry: RegistryConfig {
            order: match a.order {
                Order::NewestFirst => QueueOrder::NewestFirst,
                Order::OldestFirst => QueueOrder::OldestFirst,
            },
            fair: a.fair_tenants,
            max_attempts: a.max_attempts.max(1),
            backoff_min: a.retry_backoff,
            backoff_max: a.retry_backoff_max,
            lease_ttl: a.lease_ttl,
            legacy_lease_ttl: a.legacy_lease_ttl,
        },
        heartbeat: a.heartbeat,
        scan_interval: a.scan_interval,
        max_wait: a.max_lease_wait,
        tenants: a.tenants.filter()?,
        days: Default::default(),
        recheck_finished: false,
    };
    let scheduler = Arc::new(Scheduler::new(
        cfg,
        plans,
        storage::shareable_url(&a.plans).with_context(|| format!("--plans {}", a.plans))?,
        blocks,
    ));
    let shutdown = tokio_util::sync::CancellationToken::new();

    let grpc = tokio::net::TcpListener::bind(a.grpc_listen)
        .await
        .with_context(|| format!("--grpc-listen {}", a.grpc_listen))?;
    let http = tokio::net::TcpListener::bind(a.http_listen)
        .await
        .with_context(|| format!("--http-listen {}", a.http_listen))?;
    let (tls, token) = (security.tls.is_some(), security.token.is_some());
    tracing::info!(plans = %a.plans, blocks = %a.blocks, grpc = %a.grpc_listen, http = %a.http_listen, tls, mutual_tls = security.tls.as_ref().is_some_and(|t| t.mutual), token, "scheduler starting");
    transport_security::warn_if_exposed("the scheduler's gRPC API", a.grpc_listen, tls, token);
    transport_security::warn_if_exposed(
        "the scheduler's HTTP admin API",
        a.http_listen,
        tls,
        token,
    );

    let render: scheduler_service::http::MetricsRender = Arc::new(move || recorder.render());
    let servers = scheduler_service::serve::serve(
        Arc::clone(&scheduler),
        grpc,
        Some(scheduler_service::serve::HttpListener {
            listener: http,
            metrics: render,
        }),
        security,
        shutdown.clone(),
    )?;

    daemon::wait_for_signal().await;
    tracing::info!("signal received: stopping (all state is in the bucket)");
    shutdown.cancel();
    servers.stopped(Duration::from_secs(10)).await;
    Ok(())
}
