//! The all-in-one conversion behind `blocksconvert convert`: the scanner, the scheduler
//! and a pool of builders in one process, over the same code and the same bucket
//! markers as the three services.
//!
//! The scan writes its plans to a plans location (a local directory by default); the
//! scheduler serves them over gRPC on a loopback port to the builder loop of
//! `builder-service`, exactly as it would serve separate builder processes. Running the
//! real protocol rather than calling the builder directly keeps one code path for
//! leases, retries, quarantine and markers, so an interrupted local run resumes from
//! the same state a cluster would: the scan from its work-dir checkpoints, the
//! conversion from the markers (finished plans are never built again).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use block_builder::{BadChunkKind, BuildConfig, ChunkStores, PlanReport};
use builder_service::worker::{WorkerConfig, WorkerSummary};
use cortex_index::schema::SchemaConfig;
use index_scan::{ScanConfig, ScanError, ScanOutcome, ScanProgress};
use index_source::IndexSource;
use scheduler_service::queue::QueueOrder;
use scheduler_service::registry::{RegistryConfig, STATUS_NAMES, Status};
use scheduler_service::scheduler::{Scheduler, SchedulerConfig};
use storage::{StorageOptions, StoreLocation};

/// Settings of one conversion.
#[derive(Debug, Clone)]
pub struct ConvertConfig {
    /// Scanner settings (its `work_dir` holds the scan checkpoints).
    pub scan: ScanConfig,
    /// Where plans and their markers live.
    pub plans: StoreLocation,
    /// How the builders open plans (`plans` as a URL or absolute directory).
    pub plans_url: String,
    /// Chunk stores to read.
    pub stores: ChunkStores,
    /// Where blocks go (`<tenant>/<ULID>/`).
    pub blocks: StoreLocation,
    /// Builder settings (its `work_dir` is wiped at start).
    pub build: BuildConfig,
    /// Plans built at once.
    pub builders: usize,
    /// Attempts per plan before it is quarantined.
    pub max_attempts: u32,
    /// Options for opening plan URLs.
    pub storage: StorageOptions,
    /// The builders' worker name: unique to the (locked) work dir, so a restarted run
    /// takes back only its own dead leases.
    pub worker_name: String,
    /// The plans location belongs to this work dir (the default): a rerun then gives
    /// quarantined tenant-days a fresh set of attempts. A shared `--plans` keeps
    /// them (operators' cancels included) for `blocksconvert plans retry`.
    pub owns_plans: bool,
}

/// Where a conversion is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    /// Reading the index into plans.
    Scanning = 0,
    /// Building blocks.
    Converting = 1,
    /// Summing up.
    Done = 2,
}

/// One plan being built, for progress displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivePlan {
    /// `<tenant>/<day>`.
    pub plan: String,
    /// Build phase as last reported.
    pub phase: String,
    /// Series done.
    pub series_done: u64,
    /// Series in the plan.
    pub series_total: u64,
}

/// Plan counts and the plans being built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConvertStatus {
    /// Plans known.
    pub total: u64,
    /// Finished plans.
    pub finished: u64,
    /// Quarantined or invalid plans.
    pub failed: u64,
    /// Plans waiting for a retry.
    pub waiting: u64,
    /// Plans being built.
    pub active: Vec<ActivePlan>,
}

impl ConvertStatus {
    /// Plans not yet finished or given up on.
    pub fn pending(&self) -> u64 {
        self.total - self.finished - self.failed
    }
}

/// Live view of a conversion for progress bars.
#[derive(Default)]
pub struct ConvertProgress {
    /// The scan's counters.
    pub scan: Arc<ScanProgress>,
    stage: AtomicU8,
    scheduler: OnceLock<Arc<Scheduler>>,
}

impl ConvertProgress {
    /// Current stage.
    pub fn stage(&self) -> Stage {
        match self.stage.load(Ordering::Relaxed) {
            0 => Stage::Scanning,
            1 => Stage::Converting,
            _ => Stage::Done,
        }
    }

    fn set_stage(&self, s: Stage) {
        self.stage.store(s as u8, Ordering::Relaxed);
    }

    /// Plan counts once the conversion stage has started.
    pub fn status(&self) -> Option<ConvertStatus> {
        let scheduler = self.scheduler.get()?;
        if !scheduler.is_ready() {
            return None;
        }
        // Counts are kept per status and leases in their own set: this poll (several
        // times a second) costs O(leases) under the registry lock, not O(plans).
        Some(scheduler.with_registry(|reg| {
            let count = |name: &str| {
                STATUS_NAMES
                    .iter()
                    .position(|n| *n == name)
                    .map_or(0, |i| reg.counts()[i])
            };
            ConvertStatus {
                total: reg.counts().iter().sum(),
                finished: count("finished"),
                failed: count("error") + count("invalid"),
                waiting: count("waiting"),
                active: reg
                    .leases()
                    .map(|(r, l)| ActivePlan {
                        plan: r.base.clone(),
                        phase: l.progress.phase.clone(),
                        series_done: l.progress.series_done,
                        series_total: l.progress.series_total,
                    })
                    .collect(),
            }
        }))
    }
}

/// A plan that did not convert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedPlan {
    /// `<tenant>/<day>`.
    pub plan: String,
    /// Why (the scheduler's record).
    pub reason: String,
}

/// The result of a conversion (this run and earlier runs over the same plans).
#[derive(Debug, Clone, Default)]
pub struct ConvertSummary {
    /// The scan's outcome (tables, rows).
    pub scan: Option<ScanOutcome>,
    /// Tenant-days planned.
    pub tenant_days: u64,
    /// Tenant-days converted (with or without gaps).
    pub finished: u64,
    /// Of those, converted with missing/bad chunks or quarantined series.
    pub with_gaps: u64,
    /// Tenant-days that failed for good.
    pub failed: Vec<FailedPlan>,
    /// Tenant-days left unconverted because the run was interrupted.
    pub pending: u64,
    /// Series written.
    pub series: u64,
    /// Samples written.
    pub samples: u64,
    /// Bytes of the finished blocks.
    pub block_bytes: u64,
    /// Chunks listed by the index but absent from the chunk store.
    pub missing_chunks: u64,
    /// Chunks present but unreadable (checksum, corrupt, undecodable, bad ID).
    pub bad_chunks: u64,
    /// Series left out because their chunks disagree on the labels.
    pub quarantined_series: u64,
    /// Finished plans whose report could not be read (their figures are not summed).
    pub unreadable_reports: Vec<String>,
    /// Builder counts of this run.
    pub builds: WorkerSummary,
    /// Tenant-days an earlier, killed run was building (queued again, no failure
    /// counted).
    pub resumed: u64,
    /// Tenant-days an earlier run gave up on, retried by this run.
    pub retried: Vec<String>,
    /// Wall time of this run.
    pub duration: Duration,
    /// Stopped by a signal before the end.
    pub interrupted: bool,
}

/// Why a conversion stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The scan failed.
    #[error("scan: {0}")]
    Scan(#[from] ScanError),
    /// The plans location could not be listed.
    #[error("listing plans: {0}")]
    Scheduler(#[from] scheduler_service::error::SchedulerError),
    /// The builder loop could not start.
    #[error("builders: {0}")]
    Worker(#[from] builder_service::worker::WorkerError),
    /// The loopback gRPC port.
    #[error("loopback gRPC listener: {0}")]
    Listen(std::io::Error),
    /// The in-process scheduler's servers.
    #[error("in-process scheduler: {0}")]
    Serve(#[from] scheduler_service::serve::ServeError),
    /// A location is not usable with the credentials at hand (checked before any work).
    #[error(transparent)]
    Preflight(#[from] builder_service::preflight::PreflightError),
}

/// Checks, before any scanning, that the plans and blocks locations are writable and
/// every chunk store readable (see [`builder_service::preflight`]).
pub async fn preflight(cfg: &ConvertConfig) -> Result<(), ConvertError> {
    builder_service::preflight::writable("--plans", &cfg.plans).await?;
    builder_service::preflight::builder(&cfg.stores, &cfg.blocks).await?;
    Ok(())
}

/// Lease settings for builders in the same process: heartbeats cannot be lost on the
/// way, so a short TTL only matters after a crash (plans left leased by a killed run
/// are re-leased this long after the restart).
const LEASE_TTL: Duration = Duration::from_secs(10);
const HEARTBEAT: Duration = Duration::from_secs(2);

/// Runs scan → schedule → build to the end, or until `shutdown` turns true (then
/// running builds are cancelled and their plans released, and the summary says
/// `interrupted`; rerunning resumes).
pub async fn run(
    sources: Vec<Arc<dyn IndexSource>>,
    schema: &SchemaConfig,
    cfg: ConvertConfig,
    progress: Arc<ConvertProgress>,
    shutdown: CancellationToken,
) -> Result<ConvertSummary, ConvertError> {
    let started = Instant::now();
    let mut summary = ConvertSummary::default();

    preflight(&cfg).await?;
    progress.set_stage(Stage::Scanning);
    let cancel_scan = {
        let (p, sd) = (Arc::clone(&progress.scan), shutdown.clone());
        tokio::spawn(async move {
            sd.cancelled().await;
            p.cancel();
        })
    };
    let scanned = index_scan::scan(&sources, schema, &cfg.plans, &cfg.scan, &progress.scan).await;
    cancel_scan.abort();
    match scanned {
        Ok(o) => summary.scan = Some(o),
        Err(ScanError::Cancelled) => {
            summary.interrupted = true;
            summary.duration = started.elapsed();
            return Ok(summary);
        }
        Err(e) => return Err(e.into()),
    }

    progress.set_stage(Stage::Converting);
    let scheduler = Arc::new(Scheduler::new(
        SchedulerConfig {
            tool: blocksconvert_proto::TOOL_BUILDER.into(),
            registry: RegistryConfig {
                max_attempts: cfg.max_attempts.max(1),
                backoff_min: Duration::from_secs(1),
                backoff_max: Duration::from_secs(30),
                lease_ttl: LEASE_TTL,
                legacy_lease_ttl: LEASE_TTL,
                order: QueueOrder::NewestFirst,
                fair: false,
            },
            heartbeat: HEARTBEAT,
            scan_interval: Duration::from_secs(60),
            max_wait: Duration::from_secs(2),
            tenants: cfg.scan.tenants.clone(),
            days: cfg.scan.days,
            recheck_finished: true,
        },
        cfg.plans.clone(),
        cfg.plans_url.clone(),
        cfg.blocks.clone(),
    ));
    scheduler.sync_with_bucket().await?;
    // Leases held under this work dir's worker name are a dead run's (the caller
    // holds the work dir's lock): its death does not count against them. Tenant-days
    // given up on by an earlier run get a fresh set of attempts when the plans are
    // this work dir's own: a rerun converts everything it can.
    let reclaimed = scheduler
        .reclaim_leases(&cfg.worker_name, "the convert process that held it is gone")
        .await;
    let retried = if cfg.owns_plans {
        scheduler.retry_all_failed().await?
    } else {
        Vec::new()
    };
    if !reclaimed.is_empty() || !retried.is_empty() {
        tracing::warn!(
            reclaimed = reclaimed.len(),
            retried = retried.len(),
            "resuming: tenant-days of an earlier run queued again"
        );
    }
    summary.resumed = reclaimed.len() as u64;
    summary.retried = retried;
    let _ = progress.scheduler.set(Arc::clone(&scheduler));

    let services_shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(ConvertError::Listen)?;
    let addr = listener.local_addr().map_err(ConvertError::Listen)?;
    // Loopback only, and a fresh random token per run: another local user who finds
    // the port still cannot lease, complete or fail this conversion's plans.
    let token = transport_security::BearerToken::generate();
    let servers = scheduler_service::serve::serve(
        Arc::clone(&scheduler),
        listener,
        None,
        scheduler_service::serve::Security {
            token: Some(token.clone()),
            ..Default::default()
        },
        services_shutdown.clone(),
    )?;

    // The builders stop when every plan is finished or given up on, or on a signal.
    let builders_shutdown = CancellationToken::new();
    let watcher = {
        let (p, sd, stop_builders) = (
            Arc::clone(&progress),
            shutdown.clone(),
            builders_shutdown.clone(),
        );
        tokio::spawn(async move {
            loop {
                if tokio::time::timeout(Duration::from_millis(250), sd.cancelled())
                    .await
                    .is_ok()
                {
                    stop_builders.cancel();
                    return true;
                }
                if p.status().is_some_and(|s| s.pending() == 0) {
                    stop_builders.cancel();
                    return false;
                }
            }
        })
    };
    let client = builder_service::worker::connect(
        &addr.to_string(),
        builder_service::SchedulerSecurity {
            tls: None,
            token: Some(token),
        },
    )?;
    let worker = builder_service::worker::run(
        WorkerConfig {
            name: cfg.worker_name.clone(),
            concurrency: cfg.builders.max(1),
            // On a signal, running builds are released at once: rerunning resumes them.
            grace_period: Duration::ZERO,
            // Short polls: the loop notices the end of the work within half a second.
            lease_wait: Duration::from_millis(500),
            storage: cfg.storage.clone(),
        },
        client,
        cfg.stores.clone(),
        cfg.blocks.clone(),
        cfg.build.clone(),
        builders_shutdown,
    )
    .await;
    summary.interrupted = watcher.await.unwrap_or(true);
    services_shutdown.cancel();
    servers.stopped(Duration::from_secs(10)).await;
    summary.builds = worker?;

    progress.set_stage(Stage::Done);
    sum_up(&scheduler, &cfg, &mut summary).await;
    summary.duration = started.elapsed();
    Ok(summary)
}

/// Fills the summary from the scheduler's registry, the plans' reports and the blocks.
async fn sum_up(scheduler: &Scheduler, cfg: &ConvertConfig, summary: &mut ConvertSummary) {
    let mut finished: BTreeMap<String, String> = BTreeMap::new();
    scheduler.with_registry(|reg| {
        for r in reg.plans() {
            summary.tenant_days += 1;
            match &r.status {
                Status::Finished { id } => {
                    finished.insert(r.base.clone(), format!("{}/{id}/", r.tenant));
                }
                Status::Error { reason } | Status::Invalid { reason } => {
                    summary.failed.push(FailedPlan {
                        plan: r.base.clone(),
                        reason: reason.clone(),
                    });
                }
                _ => summary.pending += 1,
            }
        }
    });
    summary.finished = finished.len() as u64;
    for (base, block) in &finished {
        let report_key = format!("{base}.report.json");
        let report = match cfg.plans.get(&report_key).await {
            Ok(bytes) => serde_json::from_slice::<PlanReport>(&bytes).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match report {
            Ok(r) => {
                if r.status != block_builder::PlanStatus::Complete {
                    summary.with_gaps += 1;
                }
                summary.series += r.series_written;
                summary.samples += r.samples_written;
                let missing = r.count(BadChunkKind::Missing);
                summary.missing_chunks += missing;
                summary.bad_chunks += r.bad_chunk_total() - missing;
                summary.quarantined_series += r.quarantined_total();
            }
            Err(e) => summary
                .unreadable_reports
                .push(format!("{}: {e}", cfg.plans.describe(&report_key))),
        }
        match cfg.blocks.list(block).await {
            Ok(objects) => summary.block_bytes += objects.iter().map(|(_, m)| m.size).sum::<u64>(),
            Err(e) => {
                tracing::warn!(block = %cfg.blocks.describe(block), error = %e, "cannot list block")
            }
        }
    }
}
