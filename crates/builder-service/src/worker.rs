//! The builder service loop: lease → build → upload → complete, with heartbeats.
//!
//! Safety rules (a crash at any instant leaves nothing a retry cannot repair):
//! * the block is uploaded under a ULID recorded first in `<base>.block.<ULID>`, so the
//!   next attempt removes it (block-builder's W7 guard);
//! * a worker that loses a lease (the scheduler says so, or no heartbeat was
//!   acknowledged for ¾ of the TTL: it fences itself before the scheduler re-queues the
//!   plan) cancels the build and deletes any block it uploaded, so only the attempt that
//!   the scheduler marks finished keeps a block;
//! * every call about a lease carries the lease's token (handed out by Lease), so no
//!   other caller can complete, fail, release or adopt it;
//! * completion and failure reports are retried until the scheduler answers; a
//!   completion refused because the lease is gone (FailedPrecondition) discards the
//!   block, since another attempt owns the plan now; any other refusal (the block did
//!   not check out, a credential problem) keeps it and reports the attempt failed:
//!   the next attempt removes it through its `<base>.block.<ULID>` record;
//! * on shutdown it stops leasing, lets running builds finish within the grace period,
//!   then cancels the rest and releases their leases so another builder starts at once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use block_builder::{
    BuildConfig, BuildError, BuildOutcome, BuildProgress, ChunkStores, Destinations, PlanIdentity,
    PlanRef, build_plan, discard_block,
};
use blocksconvert_proto as pb;
use pb::scheduler_client::SchedulerClient;
use storage::{StorageOptions, StoreLocation};
use tokio::task::JoinSet;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig};
use transport_security::{AttachToken, BearerToken};

use crate::events::{BlockDiscarded, LeaseEnded, SchedulerCallFailed};
use crate::metric;

/// A scheduler client that attaches the bearer token to every call.
pub type SchedulerConn = SchedulerClient<InterceptedService<Channel, AttachToken>>;

/// Service settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Identity sent to the scheduler.
    pub name: String,
    /// Plans built at once.
    pub concurrency: usize,
    /// On shutdown, how long running builds may take before they are released.
    pub grace_period: Duration,
    /// Long-poll of one lease request.
    pub lease_wait: Duration,
    /// Options for opening plan URLs.
    pub storage: StorageOptions,
}

/// Why the service stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The scheduler address is unusable.
    #[error("--scheduler {0}: {1}")]
    BadScheduler(String, String),
    /// A credential or certificate could not be loaded.
    #[error(transparent)]
    Security(#[from] transport_security::SecurityError),
    /// The work dir cannot be prepared.
    #[error("{0}: {1}")]
    WorkDir(PathBuf, std::io::Error),
}

/// Counts of a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerSummary {
    /// Plans finished with a block built by this run.
    pub done: u64,
    /// Plans finished with a block of their tenant-day already in the bucket.
    pub kept: u64,
    /// Attempts reported failed.
    pub failed: u64,
    /// Leases lost (expired or taken away).
    pub lost: u64,
    /// Leases released on shutdown.
    pub released: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Kept,
    Failed,
    Lost,
    Released,
}

impl WorkerSummary {
    fn record(&mut self, o: Outcome) {
        let n = match o {
            Outcome::Done => &mut self.done,
            Outcome::Kept => &mut self.kept,
            Outcome::Failed => &mut self.failed,
            Outcome::Lost => &mut self.lost,
            Outcome::Released => &mut self.released,
        };
        *n += 1;
    }
}

impl Outcome {
    /// The `outcome` label of `…_plans_total`.
    fn label(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Kept => "kept",
            Outcome::Failed => "failed",
            Outcome::Lost => "lost",
            Outcome::Released => "released",
        }
    }
}

/// A running lease: identity and the handles its build shares (cheap to clone, so
/// loops copy them out of the map instead of working under its lock).
#[derive(Clone)]
struct ActiveLease {
    plan: String,
    attempt: u32,
    token: String,
    progress: Arc<BuildProgress>,
    lost: Arc<AtomicBool>,
    releasing: Arc<AtomicBool>,
    granted: Instant,
    ttl: Duration,
    heartbeat: Duration,
}

type ActiveMap = Arc<Mutex<HashMap<(String, u32), ActiveLease>>>;

fn lock(m: &ActiveMap) -> std::sync::MutexGuard<'_, HashMap<(String, u32), ActiveLease>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Ctx {
    cfg: WorkerConfig,
    client: SchedulerConn,
    stores: ChunkStores,
    blocks: StoreLocation,
    build: BuildConfig,
    active: ActiveMap,
    /// Metas of the blocks already in the bucket, shared by every lease.
    existing: block_builder::ExistingBlocks,
}

/// How to reach the scheduler securely.
#[derive(Debug, Clone, Default)]
pub struct SchedulerSecurity {
    /// TLS (CA, optional client certificate); `None` = plain TCP.
    pub tls: Option<ClientTlsConfig>,
    /// Bearer token sent with every call.
    pub token: Option<BearerToken>,
}

/// Connects lazily to the scheduler at `addr` (`host:port`, `http://…` or `https://…`;
/// TLS settings make a bare `host:port` an `https://` address).
pub fn connect(addr: &str, security: SchedulerSecurity) -> Result<SchedulerConn, WorkerError> {
    let bad = |e: String| WorkerError::BadScheduler(addr.to_owned(), e);
    let url = if addr.contains("://") {
        addr.to_owned()
    } else if security.tls.is_some() {
        format!("https://{addr}")
    } else {
        format!("http://{addr}")
    };
    if url.starts_with("https://") && security.tls.is_none() {
        return Err(bad(
            "an https:// scheduler needs --scheduler.tls-ca-file".into()
        ));
    }
    let mut endpoint = Channel::from_shared(url)
        .map_err(|e| bad(e.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_keepalive(Some(Duration::from_secs(30)));
    if let Some(tls) = security.tls {
        endpoint = endpoint.tls_config(tls).map_err(|e| bad(e.to_string()))?;
    }
    Ok(SchedulerClient::with_interceptor(
        endpoint.connect_lazy(),
        AttachToken::new(security.token.as_ref()),
    ))
}

/// Runs the service until `shutdown` turns true, then drains (see the module docs).
pub async fn run(
    cfg: WorkerConfig,
    client: SchedulerConn,
    stores: ChunkStores,
    blocks: StoreLocation,
    build: BuildConfig,
    shutdown: CancellationToken,
) -> Result<WorkerSummary, WorkerError> {
    // Leftovers of a crashed run are useless: their leases are re-built from scratch.
    // The `lock` file (held by the binary for the whole run) stays.
    let root = build.work_dir.clone();
    storage::empty_work_dir(&root).map_err(|(p, e)| WorkerError::WorkDir(p, e))?;
    let ctx = Arc::new(Ctx {
        cfg,
        client,
        stores,
        blocks,
        build,
        active: Arc::new(Mutex::new(HashMap::new())),
        existing: Default::default(),
    });
    // Heartbeats stop when this function returns, on every path.
    let hb_stop = CancellationToken::new();
    let hb_stop_on_return = hb_stop.clone().drop_guard();
    let heartbeats = tokio::spawn(heartbeat_loop(Arc::clone(&ctx), hb_stop));
    let mut tasks: JoinSet<Outcome> = JoinSet::new();
    let mut summary = WorkerSummary::default();
    let mut lease_backoff = scheduler_backoff();
    while !shutdown.is_cancelled() {
        while let Some(r) = tasks.try_join_next() {
            if let Ok(o) = r {
                summary.record(o);
            }
        }
        let free = ctx.cfg.concurrency.saturating_sub(tasks.len());
        if free == 0 {
            tokio::select! {
                r = tasks.join_next() => if let Some(Ok(o)) = r { summary.record(o) },
                _ = shutdown.cancelled() => {}
            }
            continue;
        }
        let mut req = tonic::Request::new(pb::LeaseRequest {
            worker: ctx.cfg.name.clone(),
            capacity: free as u32,
            tool: pb::TOOL_BUILDER.into(),
            wait_ms: ctx.cfg.lease_wait.as_millis() as u32,
        });
        req.set_timeout(ctx.cfg.lease_wait + Duration::from_secs(10));
        // The call is not abandoned on shutdown: a lease granted meanwhile is released
        // below instead of being left to expire.
        match ctx.client.clone().lease(req).await {
            Ok(resp) => {
                lease_backoff = scheduler_backoff();
                for lease in resp.into_inner().leases {
                    let c = Arc::clone(&ctx);
                    let releasing = shutdown.is_cancelled();
                    tasks.spawn(async move { run_lease(c, lease, releasing).await });
                }
            }
            Err(status) => {
                let wait = lease_backoff.next().unwrap_or(MAX_SCHEDULER_BACKOFF);
                SchedulerCallFailed {
                    rpc: "lease",
                    plan: None,
                    status: &status,
                    retry_in: Some(wait),
                }
                .emit();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
    }
    tracing::info!(running = tasks.len(), grace = ?ctx.cfg.grace_period, "shutting down: no new leases; waiting for running builds");
    let drain = async {
        while let Some(r) = tasks.join_next().await {
            if let Ok(o) = r {
                summary.record(o);
            }
        }
    };
    if tokio::time::timeout(ctx.cfg.grace_period, drain)
        .await
        .is_err()
    {
        let running: Vec<ActiveLease> = lock(&ctx.active).values().cloned().collect();
        for a in &running {
            a.releasing.store(true, Ordering::SeqCst);
            a.progress.cancel();
        }
        let n = running.len();
        tracing::warn!(leases = n, "grace period over: cancelling and releasing");
        while let Some(r) = tasks.join_next().await {
            if let Ok(o) = r {
                summary.record(o);
            }
        }
    }
    drop(hb_stop_on_return);
    let _ = heartbeats.await;
    Ok(summary)
}

fn sanitize(plan: &str) -> String {
    plan.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

async fn run_lease(ctx: Arc<Ctx>, lease: pb::Lease, releasing_now: bool) -> Outcome {
    let progress = Arc::new(BuildProgress::default());
    let lost = Arc::new(AtomicBool::new(false));
    let releasing = Arc::new(AtomicBool::new(releasing_now));
    let key = (lease.plan.clone(), lease.attempt);
    lock(&ctx.active).insert(
        key.clone(),
        ActiveLease {
            plan: lease.plan.clone(),
            attempt: lease.attempt,
            token: lease.lease_token.clone(),
            progress: Arc::clone(&progress),
            lost: Arc::clone(&lost),
            releasing: Arc::clone(&releasing),
            granted: Instant::now(),
            ttl: Duration::from_millis(lease.ttl_ms.max(1000)),
            heartbeat: Duration::from_millis(lease.heartbeat_ms.max(100)),
        },
    );
    ::metrics::gauge!(metric::ACTIVE).increment(1.0);
    tracing::info!(plan = %lease.plan, attempt = lease.attempt, "leased");
    let outcome = if releasing_now {
        release(&ctx, &lease, "worker shutting down").await
    } else {
        build_and_report(&ctx, &lease, &progress, &lost, &releasing).await
    };
    lock(&ctx.active).remove(&key);
    ::metrics::gauge!(metric::ACTIVE).decrement(1.0);
    LeaseEnded {
        plan: &lease.plan,
        outcome: outcome.label(),
    }
    .emit();
    outcome
}

async fn build_and_report(
    ctx: &Ctx,
    lease: &pb::Lease,
    progress: &Arc<BuildProgress>,
    lost: &AtomicBool,
    releasing: &AtomicBool,
) -> Outcome {
    let started = Instant::now();
    let plan = match PlanRef::open(&lease.plan_url, &ctx.cfg.storage) {
        Ok(p) => p,
        Err(e) => {
            return report_failure(
                ctx,
                lease,
                false,
                &format!("plan URL {}: {e}", lease.plan_url),
                lost,
            )
            .await;
        }
    };
    let dest = Destinations {
        blocks: ctx.blocks.clone(),
        markers: plan.location.clone(),
        base: Some(plan.base().to_owned()),
        // The scheduler derived these from the plan's key.
        expect: Some(PlanIdentity {
            tenant: lease.tenant.clone(),
            day_index: i64::from(lease.day_index),
        }),
        existing: ctx.existing.clone(),
    };
    let mut cfg = ctx.build.clone();
    cfg.work_dir = ctx
        .build
        .work_dir
        .join(format!("{}-{}", sanitize(&lease.plan), lease.attempt));
    let result = build_plan(&plan, &ctx.stores, &dest, &cfg, progress).await;
    if let Err(e) = std::fs::remove_dir_all(&cfg.work_dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %cfg.work_dir.display(), error = %e, "cannot clean a lease's work dir");
    }
    match result {
        Ok(outcome) => {
            if lost.load(Ordering::SeqCst) {
                discard(&dest, &plan, &outcome, lease).await;
                return Outcome::Lost;
            }
            complete(ctx, lease, &dest, &plan, &outcome, started.elapsed(), lost).await
        }
        Err(BuildError::Cancelled) if lost.load(Ordering::SeqCst) => Outcome::Lost,
        Err(BuildError::Cancelled) if releasing.load(Ordering::SeqCst) => {
            release(ctx, lease, "worker shutting down: grace period over").await
        }
        Err(e) => report_failure(ctx, lease, e.is_retriable(), &e.to_string(), lost).await,
    }
}

async fn discard(dest: &Destinations, plan: &PlanRef, outcome: &BuildOutcome, lease: &pb::Lease) {
    BlockDiscarded {
        plan: &lease.plan,
        attempt: lease.attempt,
        block: &outcome.ulid,
    }
    .emit();
    if let Err(e) = discard_block(dest, plan, outcome).await {
        // Still recorded in <base>.block.<ULID>: the attempt that rebuilds the plan
        // removes it before uploading its own.
        tracing::error!(plan = %lease.plan, block = %outcome.ulid, error = %e, "cannot delete the block of a lost lease; the next attempt will");
    }
}

/// Calls the scheduler until it answers; `None` when the lease is gone.
async fn until_answered<T, F, Fut>(
    rpc: &'static str,
    lease: &pb::Lease,
    lost: &AtomicBool,
    mut call: F,
) -> Option<Result<T, tonic::Status>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let mut backoff = scheduler_backoff();
    loop {
        match call().await {
            Ok(r) => return Some(Ok(r.into_inner())),
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::FailedPrecondition
                        | tonic::Code::InvalidArgument
                        | tonic::Code::NotFound
                        | tonic::Code::PermissionDenied
                        | tonic::Code::Unauthenticated
                ) =>
            {
                SchedulerCallFailed {
                    rpc,
                    plan: Some(&lease.plan),
                    status: &s,
                    retry_in: None,
                }
                .emit();
                return Some(Err(s));
            }
            Err(s) => {
                if lost.load(Ordering::SeqCst) {
                    SchedulerCallFailed {
                        rpc,
                        plan: Some(&lease.plan),
                        status: &s,
                        retry_in: None,
                    }
                    .emit();
                    return None;
                }
                let wait = backoff.next().unwrap_or(MAX_SCHEDULER_BACKOFF);
                SchedulerCallFailed {
                    rpc,
                    plan: Some(&lease.plan),
                    status: &s,
                    retry_in: Some(wait),
                }
                .emit();
                tokio::time::sleep(wait).await;
            }
        }
    }
}

async fn complete(
    ctx: &Ctx,
    lease: &pb::Lease,
    dest: &Destinations,
    plan: &PlanRef,
    outcome: &BuildOutcome,
    took: Duration,
    lost: &AtomicBool,
) -> Outcome {
    let r = &outcome.report;
    let req = pb::CompleteRequest {
        worker: ctx.cfg.name.clone(),
        plan: lease.plan.clone(),
        attempt: lease.attempt,
        block_ulid: outcome.ulid.clone(),
        lease_token: lease.lease_token.clone(),
        stats: Some(pb::BuildStats {
            series: r.series_written,
            samples: r.samples_written,
            chunks: r.plan_chunks,
            bad_chunks: r.bad_chunk_total(),
            block_bytes: outcome.block_bytes,
            duration_ms: took.as_millis() as u64,
            status: r.status.as_str().to_owned(),
        }),
    };
    let answer = until_answered("complete", lease, lost, || {
        let mut c = ctx.client.clone();
        let req = req.clone();
        async move { c.complete(req).await }
    })
    .await;
    match answer {
        Some(Ok(_)) => {
            tracing::info!(plan = %lease.plan, attempt = lease.attempt, block = %outcome.ulid, series = r.series_written, samples = r.samples_written, took = ?took, kept_existing = outcome.kept_existing, "plan finished");
            if outcome.kept_existing {
                Outcome::Kept
            } else {
                Outcome::Done
            }
        }
        // The lease is gone: another attempt owns the plan, this block must go.
        Some(Err(s)) if s.code() == tonic::Code::FailedPrecondition => {
            tracing::warn!(plan = %lease.plan, error = %s.message(), "completion refused: lease lost");
            discard(dest, plan, outcome, lease).await;
            Outcome::Lost
        }
        // Refused for another reason (the block did not check out, credentials): the
        // block stays (the next attempt removes it via its W7 record) and the attempt
        // is reported failed so the plan is retried, not left to expire.
        Some(Err(s)) => {
            tracing::error!(plan = %lease.plan, code = ?s.code(), error = %s.message(), block = %outcome.ulid, "completion refused");
            report_failure(
                ctx,
                lease,
                true,
                &format!(
                    "completion of block {} refused: {}",
                    outcome.ulid,
                    s.message()
                ),
                lost,
            )
            .await
        }
        None => {
            discard(dest, plan, outcome, lease).await;
            Outcome::Lost
        }
    }
}

async fn report_failure(
    ctx: &Ctx,
    lease: &pb::Lease,
    retriable: bool,
    error: &str,
    lost: &AtomicBool,
) -> Outcome {
    tracing::error!(plan = %lease.plan, attempt = lease.attempt, retriable, error, "plan failed");
    let req = pb::FailRequest {
        worker: ctx.cfg.name.clone(),
        plan: lease.plan.clone(),
        attempt: lease.attempt,
        retriable,
        error: error.to_owned(),
        lease_token: lease.lease_token.clone(),
    };
    let answer = until_answered("fail", lease, lost, || {
        let mut c = ctx.client.clone();
        let req = req.clone();
        async move { c.fail(req).await }
    })
    .await;
    match answer {
        Some(Ok(r)) if r.quarantined => {
            tracing::error!(plan = %lease.plan, failures = r.failures, "plan quarantined by the scheduler");
            Outcome::Failed
        }
        Some(Ok(_)) => Outcome::Failed,
        _ => Outcome::Lost,
    }
}

async fn release(ctx: &Ctx, lease: &pb::Lease, reason: &str) -> Outcome {
    let req = pb::ReleaseRequest {
        worker: ctx.cfg.name.clone(),
        plan: lease.plan.clone(),
        attempt: lease.attempt,
        reason: reason.to_owned(),
        lease_token: lease.lease_token.clone(),
    };
    // A few tries only: an unreleased lease still expires and is retried.
    for _ in 0..3 {
        let mut c = ctx.client.clone();
        let mut r = tonic::Request::new(req.clone());
        r.set_timeout(Duration::from_secs(5));
        match c.release(r).await {
            Ok(_) => {
                tracing::info!(plan = %lease.plan, attempt = lease.attempt, "lease released");
                return Outcome::Released;
            }
            Err(s) if s.code() == tonic::Code::FailedPrecondition => return Outcome::Lost,
            Err(s) => {
                let wait = Duration::from_millis(300);
                SchedulerCallFailed {
                    rpc: "release",
                    plan: Some(&lease.plan),
                    status: &s,
                    retry_in: Some(wait),
                }
                .emit();
                tokio::time::sleep(wait).await;
            }
        }
    }
    Outcome::Released
}

/// Sends every held lease's progress each heartbeat period; cancels leases the
/// scheduler says are lost, and fences itself when no heartbeat was acknowledged for
/// ¾ of a lease's TTL (the scheduler re-queues it at the full TTL).
/// Longest wait between failed scheduler calls.
const MAX_SCHEDULER_BACKOFF: Duration = Duration::from_secs(5);

/// Waits between failed scheduler calls: from 200 ms doubling up to 5 s, with jitter,
/// so the builders that lost a restarting scheduler together do not all come back in
/// the same instant; never gives up (the scheduler coming back is the way out).
fn scheduler_backoff() -> backon::ExponentialBackoff {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(MAX_SCHEDULER_BACKOFF)
        .with_jitter()
        .without_max_times()
        .build()
}

async fn heartbeat_loop(ctx: Arc<Ctx>, stop: CancellationToken) {
    let mut last_ack = Instant::now();
    loop {
        // A copy of the handles, taken under the lock; logging, metrics, cancelling
        // and the RPC happen after it is released.
        let held: Vec<ActiveLease> = lock(&ctx.active).values().cloned().collect();
        let period = held
            .iter()
            .map(|a| a.heartbeat)
            .min()
            .unwrap_or(Duration::from_millis(500));
        let (mut done, mut total) = (0, 0);
        let items: Vec<pb::LeaseProgress> = held
            .iter()
            .map(|a| {
                let d = a.progress.series_done.load(Ordering::Relaxed);
                let t = a.progress.series_total.load(Ordering::Relaxed);
                done += d;
                total += t;
                pb::LeaseProgress {
                    plan: a.plan.clone(),
                    attempt: a.attempt,
                    phase: format!("{:?}", a.progress.phase()).to_lowercase(),
                    series_done: d,
                    series_total: t,
                    lease_token: a.token.clone(),
                }
            })
            .collect();
        ::metrics::gauge!(metric::SERIES_DONE).set(done as f64);
        ::metrics::gauge!(metric::SERIES_TOTAL).set(total as f64);
        if !items.is_empty() {
            let sent = Instant::now();
            let mut req = tonic::Request::new(pb::HeartbeatRequest {
                worker: ctx.cfg.name.clone(),
                leases: items,
            });
            req.set_timeout(period.max(Duration::from_secs(1)));
            match ctx.client.clone().heartbeat(req).await {
                Ok(resp) => {
                    last_ack = sent;
                    for l in resp.into_inner().lost {
                        if let Some(a) = held
                            .iter()
                            .find(|a| a.plan == l.plan && a.attempt == l.attempt)
                        {
                            tracing::warn!(plan = %l.plan, attempt = l.attempt, reason = %l.reason, "lease lost: cancelling the build");
                            a.lost.store(true, Ordering::SeqCst);
                            a.progress.cancel();
                        }
                    }
                }
                Err(s) => {
                    SchedulerCallFailed {
                        rpc: "heartbeat",
                        plan: None,
                        status: &s,
                        retry_in: Some(period),
                    }
                    .emit();
                }
            }
            for a in &held {
                let since = last_ack.max(a.granted);
                if since.elapsed() >= a.ttl * 3 / 4 && !a.lost.swap(true, Ordering::SeqCst) {
                    tracing::error!(plan = %a.plan, attempt = a.attempt, silent = ?since.elapsed(), "no heartbeat acknowledged for 3/4 of the lease TTL: giving the plan up");
                    a.progress.cancel();
                }
            }
        }
        if tokio::time::timeout(period, stop.cancelled()).await.is_ok() {
            return;
        }
    }
}

#[cfg(test)]
mod backoff_tests {
    use super::*;

    #[test]
    fn scheduler_backoff_is_jittered_bounded_and_endless() {
        let firsts: std::collections::BTreeSet<Duration> = (0..50)
            .map(|_| scheduler_backoff().next().expect("a delay"))
            .collect();
        assert!(
            firsts.len() > 1,
            "builders would retry in lockstep: {firsts:?}"
        );
        let delays: Vec<Duration> = scheduler_backoff().take(100).collect();
        assert_eq!(delays.len(), 100, "it never gives up");
        for d in &delays {
            assert!(*d >= Duration::from_millis(200), "{d:?}");
            assert!(*d <= 2 * MAX_SCHEDULER_BACKOFF, "{d:?}");
        }
    }
}
