//! The scheduler: leases plans to workers and keeps the bucket's markers (the source of
//! truth) and its in-memory [`Registry`] in step on every request.
//!
//! Lease protocol, per hand-out of plan `<base>` as attempt `n`:
//! 1. `<base>.attempt.<n>` is created *if absent*. Two schedulers (a restart that
//!    overlaps the old process, a mis-deployed second replica) can never both lease
//!    attempt `n`: the loser treats the plan as held elsewhere.
//! 2. `<base>.starting.<ts>` (Cortex's progress file) is written, then the lease is
//!    answered. Heartbeats replace it by `<base>.inprogress.<ts>` every third of the
//!    lease TTL, so a restarted scheduler finds every live lease in the bucket and never
//!    hands it out again (W4); it judges the lease's age by the marker's LastModified
//!    against the store's own clock, not by timestamps of other hosts (W2/W5).
//! 3. Completion writes `<base>.finished.<ULID>`; a failure writes `<base>.failed.<n>`
//!    (history) and, once fatal or after `max_attempts`, `<base>.error` (quarantine,
//!    W1); an expired lease is a retriable failure, not an error (W2). Progress files
//!    are deleted last, so a crash in between leaves an outcome that the next listing
//!    still reads correctly.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use cortex_index::schema::format_day;
use cortex_index::tenant::{DayRange, TenantFilter, with_date};
use serde::Serialize;
use storage::StoreLocation;
use tokio::sync::Notify;

use crate::block_check;
use crate::error::SchedulerError;
use crate::lease_token::{LeaseProof, LeaseToken};
use crate::markers::{self, Marker};
use crate::metrics as m;
use crate::registry::{
    FailureOutcome, FailureRecord, Handout, Lease, LeaseError, Millis, PlanRecord, Registry,
    RegistryConfig, Status, UNKNOWN_WORKER, WorkProgress, ms,
};

/// Directory (under the plans location) of the scheduler's own objects; it matches no
/// plan name, so Cortex tools ignore it.
pub const STATE_DIR: &str = ".blocksconvert-scheduler";

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Tool served (`builder`); requests naming another tool are refused (W15).
    pub tool: String,
    /// Queue, retry and lease policies.
    pub registry: RegistryConfig,
    /// Heartbeat period told to workers (keep it well below the lease TTL).
    pub heartbeat: Duration,
    /// Period of full listings (new plans, markers written by Cortex workers).
    pub scan_interval: Duration,
    /// Longest long-poll a worker may ask for.
    pub max_wait: Duration,
    /// Tenants whose plans are served.
    pub tenants: TenantFilter,
    /// Days whose plans are served (`convert --period-*`); every day by default.
    pub days: DayRange,
    /// Drop the finished markers of tenants without any block in the blocks bucket
    /// (see `drop_finished_without_block`): on for `convert`, whose output may be new
    /// or emptied; off for a long-lived scheduler next to a live blocks bucket.
    pub recheck_finished: bool,
}

/// A lease handed to a worker.
#[derive(Debug, Clone)]
pub struct GrantedLease {
    /// Plan key relative to the plans location.
    pub plan: String,
    /// Full URL of the plan.
    pub plan_url: String,
    /// Cortex-style progress file (relative to the plans location).
    pub progress_key: String,
    /// Attempt number.
    pub attempt: u32,
    /// Tenant.
    pub tenant: String,
    /// Day index.
    pub day: i32,
    /// The lease's secret; every later call about the lease must present it.
    pub token: LeaseToken,
}

/// A caller's claim to a lease: the plan, the attempt, its worker name and the
/// lease's token (the proof; the other three are public on `/plans`).
#[derive(Clone, Copy)]
pub struct LeaseRef<'a> {
    /// Worker name.
    pub worker: &'a str,
    /// Plan key or base.
    pub plan: &'a str,
    /// Attempt.
    pub attempt: u32,
    /// The token handed out with the lease.
    pub token: &'a str,
}

impl std::fmt::Debug for LeaseRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseRef")
            .field("worker", &self.worker)
            .field("plan", &self.plan)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// What a worker reports about a lease in its heartbeat.
#[derive(Debug, Clone)]
pub struct HeartbeatItem {
    /// Plan key or base.
    pub plan: String,
    /// Attempt.
    pub attempt: u32,
    /// The lease's token.
    pub token: String,
    /// Progress.
    pub progress: WorkProgress,
}

/// Statistics of a finished plan (logged with the completion).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompletionStats {
    /// Series written.
    pub series: u64,
    /// Samples written.
    pub samples: u64,
    /// Chunks in the plan.
    pub chunks: u64,
    /// Missing or bad chunks.
    pub bad_chunks: u64,
    /// Block bytes.
    pub block_bytes: u64,
    /// Build time.
    pub duration_ms: u64,
    /// complete / finished_with_gaps.
    pub status: String,
}

/// The scheduler service (shared by the gRPC and HTTP servers).
pub struct Scheduler {
    cfg: SchedulerConfig,
    plans: StoreLocation,
    plans_url: String,
    blocks: StoreLocation,
    reg: Mutex<Registry>,
    wake: Notify,
    ready: AtomicBool,
    epoch: Instant,
    scanning: tokio::sync::Mutex<()>,
    /// The status page's copy of every plan's line (see [`crate::status::StatusView`]).
    status_view: Mutex<crate::status::StatusView>,
    /// When the last [`RECENT_COMPLETIONS`] plans finished (the status page's rate
    /// and ETA).
    recent_completions: Mutex<std::collections::VecDeque<Instant>>,
}

/// Plans looked at per registry lock when the admin retries plans in bulk.
const RETRY_SLICE: usize = 1024;
/// Listed plans merged per registry lock when the bucket is listed again.
const SYNC_SLICE: usize = 1024;
/// Completions remembered for the status page's rate.
const RECENT_COMPLETIONS: usize = 1024;
/// The window of the status page's completion rate.
const RATE_WINDOW: Duration = Duration::from_secs(15 * 60);

thread_local! {
    /// Set while this thread holds the registry lock (see [`Scheduler::reg`]).
    static IN_REGISTRY: Cell<bool> = const { Cell::new(false) };
}

/// Clears [`IN_REGISTRY`] however the closure ends.
struct RegistryEntry;

impl RegistryEntry {
    fn enter() -> Self {
        // Re-entry would deadlock on the std mutex: fail loudly in the one request
        // instead of freezing every RPC, the status page and signal handling.
        assert!(
            !IN_REGISTRY.with(Cell::get),
            "the scheduler registry was locked again by the thread holding it"
        );
        IN_REGISTRY.with(|c| c.set(true));
        Self
    }
}

impl Drop for RegistryEntry {
    fn drop(&mut self) {
        IN_REGISTRY.with(|c| c.set(false));
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The plan base of a key or base (`acme/18584.plan.snappy` → `acme/18584`).
pub fn plan_base(plan: &str) -> &str {
    for suffix in markers::PLAN_SUFFIXES {
        if let Some(b) = plan.strip_suffix(suffix) {
            return b;
        }
    }
    plan
}

/// Why a plan's key cannot name a tenant-day (Cortex's tenant rules, a sane UTC day).
fn key_problem(rec: &PlanRecord) -> Option<String> {
    let why = match rec.day {
        None => Some("the key does not end in a day index".to_owned()),
        Some(day) => cortex_index::tenant::tenant_id_problem(&rec.tenant)
            .or_else(|| cortex_index::tenant::day_index_problem(i64::from(day))),
    };
    why.map(|w| format!("plan {} is not a tenant-day: {w}", rec.base))
}

#[derive(Default)]
struct BaseFiles {
    plans: Vec<String>,
    progress: Vec<(String, i64)>,
    finished: Vec<String>,
    error: Option<String>,
    attempts: u32,
    /// Attempt, key and LastModified (ms) of each failure record.
    failed: Vec<(u32, String, i64)>,
    retried: u32,
}

impl Scheduler {
    /// A scheduler over the plans at `plans` (`plans_url` is how workers open it)
    /// whose builders upload to `blocks` (completions are checked there).
    pub fn new(
        cfg: SchedulerConfig,
        plans: StoreLocation,
        plans_url: String,
        blocks: StoreLocation,
    ) -> Self {
        Self {
            reg: Mutex::new(Registry::new(cfg.registry.clone())),
            cfg,
            plans,
            plans_url: plans_url.trim_end_matches('/').to_owned(),
            blocks,
            wake: Notify::new(),
            ready: AtomicBool::new(false),
            epoch: Instant::now(),
            scanning: tokio::sync::Mutex::new(()),
            status_view: Mutex::default(),
            recent_completions: Mutex::default(),
        }
    }

    /// Settings.
    pub fn config(&self) -> &SchedulerConfig {
        &self.cfg
    }

    /// Whether the first listing is done (before that, nothing is handed out: W4).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn now(&self) -> Millis {
        self.epoch.elapsed().as_millis() as Millis
    }

    /// The only way to the registry. The guard lives inside this call, so it can
    /// never outlive the statement: not across an `.await`, not through a `match` or
    /// `if let` whose arms lock again (the shape that once deadlocked `complete`).
    /// `f` is pure registry work; I/O and calls into other components happen outside.
    fn reg<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        let _entry = RegistryEntry::enter();
        // A panic while holding the lock is a bug; the state itself stays consistent
        // enough to keep serving (every change is a single set_status).
        let mut guard = self.reg.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Runs `f` on the registry (status page, tests, benchmarks).
    pub fn with_registry<T>(&self, f: impl FnOnce(&Registry) -> T) -> T {
        self.reg(|r| f(r))
    }

    /// Sets the plan gauges (the registry is read under its lock, published after).
    pub fn publish_gauges(&self) {
        self.reg(|r| m::GaugeReading::read(r)).publish();
    }

    fn check_ready(&self) -> Result<(), SchedulerError> {
        if self.is_ready() {
            Ok(())
        } else {
            Err(SchedulerError::NotReady)
        }
    }

    fn check_tool(&self, tool: &str) -> Result<(), SchedulerError> {
        if tool.is_empty() || tool == self.cfg.tool {
            return Ok(());
        }
        ::metrics::counter!(m::WRONG_TOOL).increment(1);
        Err(SchedulerError::WrongTool {
            asked: tool.to_owned(),
            serves: self.cfg.tool.clone(),
        })
    }

    /// The object store's current time in Unix ms: a probe object's LastModified, so
    /// ages of markers are differences of the store's own timestamps (W2/W5).
    async fn store_now(&self) -> Result<i64, SchedulerError> {
        let key = format!("{STATE_DIR}/clock");
        let what = "reading the object store's clock";
        self.plans
            .put(&key, unix_now().to_string().into_bytes())
            .await
            .map_err(SchedulerError::storage(what))?;
        let meta = self
            .plans
            .head(&key)
            .await
            .map_err(SchedulerError::storage(what))?;
        Ok(meta.last_modified.timestamp_millis())
    }

    /// Lists the whole plans location and merges it into the registry (new plans,
    /// markers written by other tools, leases after a restart). Hand-outs go on
    /// meanwhile; changes they make are newer than the listing and are kept (W3).
    pub async fn sync_with_bucket(&self) -> Result<(), SchedulerError> {
        let _one_at_a_time = self.scanning.lock().await;
        let started = Instant::now();
        let scan_version = self.reg(|r| r.generation());
        let store_now = self.store_now().await?;
        let now = self.now();
        let listing = self
            .plans
            .list("")
            .await
            .map_err(SchedulerError::storage("listing the plans"))?;
        let mut bases: HashMap<String, BaseFiles> = HashMap::new();
        for (key, meta) in listing {
            if key.starts_with(STATE_DIR) {
                continue;
            }
            let lm = meta.last_modified.timestamp_millis();
            let marker = Marker::classify(&key);
            let base = match &marker {
                Marker::Plan { base }
                | Marker::Progress { base, .. }
                | Marker::Finished { base, .. }
                | Marker::Error { base }
                | Marker::Attempt { base, .. }
                | Marker::Failed { base, .. }
                | Marker::Retried { base, .. } => base.clone(),
                Marker::Other => continue,
            };
            let tenant = base.rsplit_once('/').map_or("", |(t, _)| t);
            if !self.cfg.tenants.accepts(tenant) || !self.cfg.days.contains_plan(&base) {
                continue;
            }
            let files = bases.entry(base).or_default();
            match marker {
                Marker::Plan { .. } => files.plans.push(key),
                Marker::Progress { .. } => files.progress.push((key, lm)),
                Marker::Finished { id, .. } => files.finished.push(id),
                Marker::Error { .. } => files.error = Some(key),
                Marker::Attempt { n, .. } => files.attempts = files.attempts.max(n),
                Marker::Failed { n, .. } => files.failed.push((n, key, lm)),
                Marker::Retried { n, .. } => files.retried = files.retried.max(n),
                Marker::Other => {}
            }
        }
        self.drop_finished_without_block(&mut bases).await;
        let mut records = Vec::with_capacity(bases.len());
        for (base, files) in bases {
            records.push(self.derive(base, files, store_now, now).await);
        }
        // Merged slice by slice: leases, heartbeats and completions go on in between
        // (each record's merge keeps what changed after the listing), so a bucket of
        // millions of plans never holds the registry for long.
        let listed: std::collections::HashSet<String> =
            records.iter().map(|r| r.base.clone()).collect();
        let mut records = records.into_iter();
        loop {
            let slice: Vec<PlanRecord> = records.by_ref().take(SYNC_SLICE).collect();
            if slice.is_empty() {
                break;
            }
            self.reg(|r| r.merge_listed(slice, scan_version));
        }
        let mut cursor: Option<String> = None;
        while let Some(next) = self
            .reg(|r| r.drop_unlisted_after(cursor.as_deref(), SYNC_SLICE, &listed, scan_version))
        {
            cursor = Some(next);
        }
        self.publish_gauges();
        self.ready.store(true, Ordering::Release);
        self.wake.notify_waiters();
        ::metrics::counter!(m::SCANS).increment(1);
        ::metrics::gauge!(m::SCAN_SECONDS).set(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// With [`SchedulerConfig::recheck_finished`] (`convert`, whose output may be new or
    /// emptied): the finished markers of a tenant that has no block at all in the blocks
    /// bucket no longer count, so its tenant-days are built again. A tenant with blocks
    /// keeps its markers even when one block is gone: Cortex's compactor and retention
    /// remove converted blocks in a live bucket, and those days must not come back
    /// (`blocksconvert plans rebuild` redoes one by hand). Each tenant is checked once
    /// per process. A finished plan that also has an `.error` marker (a crash between
    /// the two writes; a finished marker is only written after its block checked out)
    /// is finished: the error marker goes.
    async fn drop_finished_without_block(&self, bases: &mut HashMap<String, BaseFiles>) {
        use futures::StreamExt;
        if self.cfg.recheck_finished {
            let tenants: std::collections::BTreeSet<String> = bases
                .iter()
                .filter(|(b, f)| {
                    f.finished.len() == 1 && !self.reg(|r| r.finished_with(b, &f.finished[0]))
                })
                .filter_map(|(b, _)| b.rsplit_once('/').map(|(t, _)| t.to_owned()))
                .collect();
            let listed: Vec<(String, Result<usize, storage::StorageError>)> =
                futures::stream::iter(tenants)
                    .map(|tenant| async move {
                        let n = self.blocks.list_dirs(&tenant).await.map(|d| d.len());
                        (tenant, n)
                    })
                    .buffer_unordered(16)
                    .collect()
                    .await;
            for (tenant, blocks) in listed {
                match blocks {
                    Ok(0) => {
                        let prefix = format!("{tenant}/");
                        for (base, f) in bases.iter_mut() {
                            if !base.starts_with(&prefix) || base[prefix.len()..].contains('/') {
                                continue;
                            }
                            for id in std::mem::take(&mut f.finished) {
                                let key = markers::finished(base, &id);
                                ::metrics::counter!(m::FINISHED_WITHOUT_BLOCK).increment(1);
                                tracing::warn!(plan = %base, block = %id, blocks = %self.blocks, "finished, but the tenant has no block in the blocks bucket (new or emptied output); building it again");
                                if let Err(e) = self.plans.delete(&key).await {
                                    tracing::warn!(marker = %key, error = %e, "cannot delete a stale finished marker");
                                }
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(%tenant, error = %e, "cannot list the tenant's blocks; keeping its finished plans");
                    }
                }
            }
        }
        for (base, f) in bases.iter_mut() {
            if f.finished.len() == 1
                && let Some(key) = f.error.take()
            {
                tracing::warn!(plan = %base, marker = %key, "plan has both finished and error markers; it is finished, removing the error marker");
                if let Err(e) = self.plans.delete(&key).await {
                    tracing::warn!(marker = %key, error = %e, "cannot delete a stale error marker");
                }
            }
        }
    }

    /// Turns one base's files into a record (Cortex's status rules, §4, then ours).
    async fn derive(&self, base: String, f: BaseFiles, store_now: i64, now: Millis) -> PlanRecord {
        let plan_key = f.plans.first().cloned().unwrap_or_default();
        let mut rec = PlanRecord::new(&base, &plan_key);
        let known = self.reg(|r| r.get(&base).cloned());
        rec.reset_after = f.retried;
        rec.last_attempt = f
            .attempts
            .max(f.retried)
            .max(f.failed.iter().map(|(n, _, _)| *n).max().unwrap_or(0));
        let mut failed = f.failed;
        failed.sort();
        for (n, key, _) in &failed {
            let cached = known
                .as_ref()
                .and_then(|k| k.failures.iter().find(|x| x.attempt == *n).cloned());
            let record = match cached {
                Some(c) => c,
                None => match self.plans.get(key).await {
                    Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| FailureRecord {
                        attempt: *n,
                        worker: "?".into(),
                        retriable: true,
                        error: format!("unreadable failure record {key}: {e}"),
                        at_unix: 0,
                    }),
                    Err(e) => FailureRecord {
                        attempt: *n,
                        worker: "?".into(),
                        retriable: true,
                        error: format!("failure record {key} could not be read: {e}"),
                        at_unix: 0,
                    },
                },
            };
            rec.failures.push(record);
        }
        let to_local = |lm: i64| now - (store_now - lm).max(0);
        let key_problem = key_problem(&rec);
        rec.status = if let Some(reason) = key_problem {
            // Never handed out: no lease, no markers, no block.
            Status::Invalid { reason }
        } else if f.plans.len() != 1
            || f.finished.len() > 1
            || (f.finished.len() == 1 && f.error.is_some())
        {
            let reason = if f.plans.is_empty() {
                "markers without a plan".to_owned()
            } else if f.plans.len() > 1 {
                format!("several plan files: {}", f.plans.join(", "))
            } else if f.finished.len() > 1 {
                format!("several finished markers: {}", f.finished.join(", "))
            } else {
                "both finished and error markers exist".to_owned()
            };
            Status::Invalid { reason }
        } else if let Some(id) = f.finished.first() {
            Status::Finished { id: id.clone() }
        } else if let Some(key) = &f.error {
            let reason = match known.map(|k| k.status) {
                Some(Status::Error { reason }) => reason,
                _ => match self.plans.get(key).await {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) => format!("(the error marker could not be read: {e})"),
                },
            };
            Status::Error { reason }
        } else {
            let attempt_ended =
                failed.iter().any(|(n, _, _)| *n == f.attempts) || f.attempts <= f.retried;
            let newest = f.progress.iter().map(|(_, lm)| *lm).max();
            match newest {
                Some(lm) if !(attempt_ended && f.attempts > 0) => {
                    let legacy = f.attempts == 0;
                    let (worker, proof) = if legacy {
                        (UNKNOWN_WORKER.to_owned(), None)
                    } else {
                        self.lease_holder(&base, f.attempts, known.as_ref()).await
                    };
                    let ttl = if legacy {
                        self.cfg.registry.legacy_lease_ttl
                    } else {
                        self.cfg.registry.lease_ttl
                    };
                    Status::Leased(Lease {
                        worker,
                        adoptable: true,
                        proof,
                        attempt: f.attempts,
                        legacy,
                        granted: to_local(lm),
                        last_heartbeat: to_local(lm),
                        ttl,
                        progress: WorkProgress::default(),
                        markers: f.progress.iter().map(|(k, _)| k.clone()).collect(),
                        marker_written: to_local(lm),
                        closing: false,
                    })
                }
                _ => {
                    rec.stale_markers = f.progress.iter().map(|(k, _)| k.clone()).collect();
                    let counted = rec.counted_failures();
                    if counted >= self.cfg.registry.max_attempts {
                        Status::Error {
                            reason: format!(
                                "plan {base} gave up after {counted} failed attempts (its .error marker was not written)"
                            ),
                        }
                    } else if counted > 0 {
                        // Failure markers are never rewritten: the newest one's
                        // LastModified (already listed) is the time of the last failure.
                        let since = failed.last().map_or(now, |(_, _, lm)| to_local(*lm));
                        Status::Waiting {
                            until: since + ms(self.cfg.registry.backoff(counted)),
                        }
                    } else {
                        Status::New
                    }
                }
            }
        };
        rec
    }

    /// Who holds attempt `attempt` of a lease found in the bucket: the registry's
    /// own record when it has one, else the attempt marker (worker name and the
    /// SHA-256 of the lease token). A marker without a proof (written by an older
    /// version) leaves the lease unprovable: it expires and the plan is retried.
    async fn lease_holder(
        &self,
        base: &str,
        attempt: u32,
        known: Option<&PlanRecord>,
    ) -> (String, Option<LeaseProof>) {
        if let Some(Status::Leased(l)) = known.map(|k| &k.status)
            && l.attempt == attempt
            && l.proof.is_some()
        {
            return (l.worker.clone(), l.proof);
        }
        let key = markers::attempt(base, attempt);
        let body = match self.plans.get(&key).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(marker = %key, error = %e, "cannot read an attempt marker; its lease can only expire");
                return (UNKNOWN_WORKER.into(), None);
            }
        };
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let worker = v["worker"]
            .as_str()
            .map_or_else(|| UNKNOWN_WORKER.to_owned(), str::to_owned);
        let proof = v[markers::LEASE_PROOF_FIELD]
            .as_str()
            .and_then(LeaseProof::from_hex);
        (worker, proof)
    }

    async fn delete_markers(&self, keys: &[String]) {
        for key in keys {
            if let Err(e) = self.plans.delete(key).await {
                ::metrics::counter!(m::STORE_ERRORS, "op" => "delete").increment(1);
                tracing::warn!(marker = %key, error = %e, "cannot delete an old progress marker (harmless: the plan's outcome marker decides)");
            }
        }
    }

    /// Hands out one plan: attempt marker (create-if-absent), starting marker, lease.
    async fn hand_out(
        &self,
        worker: &str,
        legacy: bool,
    ) -> Result<Option<GrantedLease>, SchedulerError> {
        loop {
            let now = self.now();
            let Some(h) = self.reg(|r| r.take_next(now)) else {
                return Ok(None);
            };
            let token = LeaseToken::generate();
            // Cortex workers never present a token: their leases are judged by the
            // progress files they rewrite, and no RPC of ours can close them.
            let proof = (!legacy).then(|| token.proof());
            match self.write_handout(&h, worker, proof).await {
                Ok(progress_key) => {
                    let now = self.now();
                    let marker = progress_key.clone();
                    self.reg(|r| r.grant(&h, worker, legacy, proof, marker, now));
                    ::metrics::counter!(m::LEASES_GRANTED, "api" => if legacy { "next_plan" } else { "lease" })
                        .increment(1);
                    tracing::info!(plan = %h.base, attempt = h.attempt, worker, "leased");
                    return Ok(Some(GrantedLease {
                        plan_url: format!("{}/{}", self.plans_url, h.plan_key),
                        plan: h.plan_key,
                        progress_key,
                        attempt: h.attempt,
                        tenant: h.tenant,
                        day: h.day,
                        token,
                    }));
                }
                Err(e) if matches!(&e, SchedulerError::Storage { source, .. } if source.is_already_exists()) =>
                {
                    ::metrics::counter!(m::ATTEMPT_CONFLICTS).increment(1);
                    tracing::warn!(plan = %h.base, attempt = h.attempt, "attempt already taken by another scheduler; treating the plan as held");
                    let now = self.now();
                    self.reg(|r| r.attempt_taken(&h, now));
                }
                Err(e) => {
                    ::metrics::counter!(m::STORE_ERRORS, "op" => "lease").increment(1);
                    self.reg(|r| r.abort_handout(&h));
                    return Err(e);
                }
            }
        }
    }

    async fn write_handout(
        &self,
        h: &Handout,
        worker: &str,
        proof: Option<LeaseProof>,
    ) -> Result<String, SchedulerError> {
        self.delete_markers(&h.stale_markers).await;
        let body =
            serde_json::json!({ "worker": worker, "attempt": h.attempt, "at_unix": unix_now() });
        let mut attempt_body = body.clone();
        if let Some(p) = proof {
            attempt_body[markers::LEASE_PROOF_FIELD] = p.to_hex().into();
        }
        let attempt_key = markers::attempt(&h.base, h.attempt);
        self.plans
            .put_if_absent(&attempt_key, attempt_body.to_string().into_bytes())
            .await
            .map_err(SchedulerError::storage(format!("creating {attempt_key}")))?;
        let progress_key = markers::starting(&h.base, unix_now());
        self.plans
            .put(&progress_key, body.to_string().into_bytes())
            .await
            .map_err(SchedulerError::storage(format!("writing {progress_key}")))?;
        Ok(progress_key)
    }

    /// Leases up to `capacity` plans, waiting up to `wait` for the first one.
    pub async fn lease(
        &self,
        worker: &str,
        capacity: u32,
        tool: &str,
        wait: Duration,
    ) -> Result<Vec<GrantedLease>, SchedulerError> {
        self.check_tool(tool)?;
        if worker.is_empty() {
            return Err(SchedulerError::BadRequest(
                "a lease needs a worker name".into(),
            ));
        }
        let deadline = Instant::now() + wait.min(self.cfg.max_wait);
        loop {
            if self.is_ready() {
                let mut out = Vec::new();
                while out.len() < capacity.max(1) as usize {
                    match self.hand_out(worker, false).await {
                        Ok(Some(l)) => out.push(l),
                        Ok(None) => break,
                        Err(e) if out.is_empty() => return Err(e),
                        Err(_) => break,
                    }
                }
                if !out.is_empty() {
                    return Ok(out);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return if self.is_ready() {
                    Ok(Vec::new())
                } else {
                    Err(SchedulerError::NotReady)
                };
            }
            // Woken by a release, retry or scan; re-checked at least every second for
            // plans whose backoff ended.
            let _ =
                tokio::time::timeout(left.min(Duration::from_secs(1)), self.wake.notified()).await;
        }
    }

    /// Cortex's `NextPlan`: one plan for a Cortex worker, paths relative to the bucket.
    /// The lease is judged by the progress files the worker rewrites itself.
    pub async fn next_plan(
        &self,
        name: &str,
        tool: &str,
    ) -> Result<Option<(String, String)>, SchedulerError> {
        self.check_tool(tool)?;
        if !self.is_ready() {
            return Ok(None);
        }
        let worker = if name.is_empty() {
            "cortex-worker"
        } else {
            name
        };
        Ok(self.hand_out(worker, true).await?.map(|l| {
            (
                self.plans.path(&l.plan).to_string(),
                self.plans.path(&l.progress_key).to_string(),
            )
        }))
    }

    /// Extends the worker's leases; returns the ones it no longer holds, with reasons.
    pub async fn heartbeat(
        &self,
        worker: &str,
        items: Vec<HeartbeatItem>,
    ) -> Result<Vec<(String, u32, String)>, SchedulerError> {
        self.check_ready()?;
        let mut lost = Vec::new();
        for item in items {
            let base = plan_base(&item.plan).to_owned();
            let now = self.now();
            let res = self
                .reg(|r| r.heartbeat(&base, item.attempt, worker, &item.token, item.progress, now));
            match res {
                Ok(None) => {}
                Ok(Some(old)) => {
                    let key = markers::inprogress(&base, unix_now());
                    if old.contains(&key) {
                        continue;
                    }
                    let body = serde_json::json!({ "worker": worker, "attempt": item.attempt });
                    match self.plans.put(&key, body.to_string().into_bytes()).await {
                        Ok(()) => {
                            self.delete_markers(&old).await;
                            let kept = self
                                .reg(|r| r.marker_replaced(&base, item.attempt, &old, key.clone()));
                            if !kept {
                                // Completed or failed while we wrote it: not a live lease.
                                self.delete_markers(&[key]).await;
                            }
                        }
                        Err(e) => {
                            ::metrics::counter!(m::STORE_ERRORS, "op" => "heartbeat").increment(1);
                            tracing::warn!(plan = %base, error = %e, "cannot refresh the progress marker; the lease stays valid in memory");
                        }
                    }
                }
                // Its completion or failure is being recorded: not lost.
                Err(LeaseError::Closing { .. }) => {}
                // A wrong token is not a lost lease but a caller that is not the
                // holder: refuse the call, leave the lease alone.
                Err(e @ LeaseError::NotHolder { .. }) => return Err(e.into()),
                Err(e) => lost.push((item.plan, item.attempt, e.to_string())),
            }
        }
        Ok(lost)
    }

    /// The worker uploaded the plan's block: `<base>.finished.<ulid>`, written only
    /// after the caller proved it holds the lease and the block checked out in the
    /// blocks bucket (see [`block_check`]).
    pub async fn complete(
        &self,
        lease: &LeaseRef<'_>,
        ulid: &str,
        stats: &CompletionStats,
    ) -> Result<(), SchedulerError> {
        self.check_ready()?;
        let base = plan_base(lease.plan).to_owned();
        let ulid = block_check::parse_ulid(ulid)?;
        let closing = self.reg(|r| r.begin_close(&base, lease.attempt, lease.worker, lease.token));
        let old = match closing {
            Ok(old) => old,
            Err(e) => {
                // A repeated completion (the answer to the first was lost) is fine.
                if self.reg(|r| r.finished_with(&base, &ulid)) {
                    return Ok(());
                }
                return Err(e.into());
            }
        };
        let day = self.reg(|r| r.get(&base).map(|p| (p.tenant.clone(), p.day)));
        let checked = match day {
            Some((tenant, Some(day))) => {
                block_check::check(&self.blocks, &tenant, day, &ulid).await
            }
            _ => Err(SchedulerError::BadRequest(format!(
                "plan {base} has no tenant and day to check its block against"
            ))),
        };
        if let Err(e) = checked {
            ::metrics::counter!(m::COMPLETIONS_REFUSED).increment(1);
            tracing::warn!(plan = %base, attempt = lease.attempt, worker = lease.worker, block = %ulid, error = %e, "completion refused");
            self.reg(|r| r.abort_close(&base, lease.attempt));
            return Err(e);
        }
        let key = markers::finished(&base, &ulid);
        match self
            .plans
            .put_if_absent(&key, ulid.as_bytes().to_vec())
            .await
        {
            Ok(()) => {}
            Err(e) if e.is_already_exists() => {}
            Err(e) => {
                ::metrics::counter!(m::STORE_ERRORS, "op" => "complete").increment(1);
                self.reg(|r| r.abort_close(&base, lease.attempt));
                return Err(SchedulerError::storage(format!("writing {key}"))(e));
            }
        }
        self.delete_markers(&old).await;
        self.reg(|r| r.finish(&base, &ulid));
        ::metrics::counter!(m::PLANS_COMPLETED).increment(1);
        {
            let mut recent = self
                .recent_completions
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if recent.len() == RECENT_COMPLETIONS {
                recent.pop_front();
            }
            recent.push_back(Instant::now());
        }
        tracing::info!(plan = %base, attempt = lease.attempt, worker = lease.worker, block = %ulid, series = stats.series, samples = stats.samples, bad_chunks = stats.bad_chunks, status = %stats.status, "finished");
        Ok(())
    }

    async fn close_with_failure(
        &self,
        base: &str,
        f: FailureRecord,
        old: &[String],
    ) -> Result<FailureOutcome, SchedulerError> {
        let now = self.now();
        let outcome = self.reg(|r| r.failure_outcome(base, &f, now));
        let key = markers::failed(base, f.attempt);
        let body = serde_json::to_vec(&f).unwrap_or_default();
        self.plans
            .put(&key, body)
            .await
            .map_err(SchedulerError::storage(format!("writing {key}")))?;
        if let FailureOutcome::Quarantine { reason } = &outcome {
            let key = markers::error(base);
            self.plans
                .put(&key, reason.clone().into_bytes())
                .await
                .map_err(SchedulerError::storage(format!("writing {key}")))?;
            ::metrics::counter!(m::QUARANTINES).increment(1);
            tracing::error!(plan = base, reason = %reason, "plan quarantined");
        } else {
            ::metrics::counter!(m::RETRIES).increment(1);
            tracing::warn!(plan = base, attempt = f.attempt, worker = %f.worker, error = %f.error, "attempt failed; will retry");
        }
        self.delete_markers(old).await;
        self.reg(|r| r.record_failure(base, f, &outcome));
        Ok(outcome)
    }

    /// The worker's attempt failed.
    pub async fn fail(
        &self,
        lease: &LeaseRef<'_>,
        retriable: bool,
        error: &str,
    ) -> Result<(bool, u32), SchedulerError> {
        self.check_ready()?;
        let base = plan_base(lease.plan).to_owned();
        let attempt = lease.attempt;
        let old = self.reg(|r| r.begin_close(&base, attempt, lease.worker, lease.token))?;
        let f = FailureRecord {
            attempt,
            worker: lease.worker.to_owned(),
            retriable,
            error: error.to_owned(),
            at_unix: unix_now(),
        };
        match self.close_with_failure(&base, f, &old).await {
            Ok(outcome) => {
                let failures = self.reg(|r| r.get(&base).map_or(0, PlanRecord::counted_failures));
                Ok((
                    matches!(outcome, FailureOutcome::Quarantine { .. }),
                    failures,
                ))
            }
            Err(e) => {
                ::metrics::counter!(m::STORE_ERRORS, "op" => "fail").increment(1);
                self.reg(|r| r.abort_close(&base, attempt));
                Err(e)
            }
        }
    }

    /// The worker gives the plan back unfinished; queued again at once.
    pub async fn release(&self, lease: &LeaseRef<'_>, reason: &str) -> Result<(), SchedulerError> {
        self.check_ready()?;
        let base = plan_base(lease.plan).to_owned();
        let old = self.reg(|r| r.begin_close(&base, lease.attempt, lease.worker, lease.token))?;
        self.delete_markers(&old).await;
        self.reg(|r| r.released(&base));
        self.wake.notify_waiters();
        ::metrics::counter!(m::LEASES_RELEASED).increment(1);
        tracing::info!(plan = %base, attempt = lease.attempt, worker = lease.worker, reason, "lease released");
        Ok(())
    }

    /// Re-queues (as failed attempts) leases whose worker went silent.
    pub async fn expire_leases(&self) {
        let now = self.now();
        let expired = self.reg(|r| r.take_expired(now));
        for e in expired {
            ::metrics::counter!(m::LEASE_EXPIRIES).increment(1);
            let f = FailureRecord {
                attempt: e.attempt,
                worker: e.worker.clone(),
                retriable: true,
                error: format!(
                    "lease expired: no sign of life from {} for {:.0?}",
                    e.worker, e.silent_for
                ),
                at_unix: unix_now(),
            };
            if let Err(err) = self.close_with_failure(&e.base, f, &e.markers).await {
                ::metrics::counter!(m::STORE_ERRORS, "op" => "expire").increment(1);
                tracing::warn!(plan = %e.base, error = %err, "cannot record an expired lease; will try again");
                self.reg(|r| r.abort_close(&e.base, e.attempt));
            }
        }
        self.wake.notify_waiters();
    }

    /// Gives back every open lease held by `worker` without counting a failure: for a
    /// worker known to be gone (`convert` restarted after a crash or a kill; its
    /// worker name is unique to its locked work dir), so the death of the whole
    /// process never counts against its plans. Leases of other workers are left
    /// alone. Returns the plans reclaimed.
    pub async fn reclaim_leases(&self, worker: &str, reason: &str) -> Vec<String> {
        let leases = self.reg(|r| r.take_leases_of(worker));
        let mut bases = Vec::with_capacity(leases.len());
        for (base, markers) in leases {
            self.delete_markers(&markers).await;
            self.reg(|r| r.released(&base));
            ::metrics::counter!(m::LEASES_RELEASED).increment(1);
            tracing::info!(plan = %base, reason, "lease reclaimed");
            bases.push(base);
        }
        self.wake.notify_waiters();
        bases
    }

    /// Retries every quarantined plan (see [`Scheduler::retry`]); the plans queued.
    pub async fn retry_all_failed(&self) -> Result<Vec<String>, SchedulerError> {
        self.retry_failed(None).await
    }

    /// Admin: retry every quarantined plan, or every quarantined plan of `tenant`. The
    /// registry is read in slices, so no call walks every plan under its lock.
    pub async fn retry_failed(&self, tenant: Option<&str>) -> Result<Vec<String>, SchedulerError> {
        self.check_ready()?;
        let mut failed = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let (found, next) =
                self.reg(|r| r.quarantined_after(cursor.as_deref(), tenant, RETRY_SLICE));
            failed.extend(found);
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        for base in &failed {
            self.retry(base).await?;
        }
        Ok(failed)
    }

    /// Plans finished per hour over the last [`RATE_WINDOW`] (or since the first
    /// completion, when that is more recent); `None` before two completions.
    pub fn finished_per_hour(&self) -> Option<f64> {
        let now = Instant::now();
        let recent = self
            .recent_completions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .filter(|t| now.duration_since(*t) <= RATE_WINDOW)
            .collect::<Vec<_>>();
        let first = *recent.first()?;
        if recent.len() < 2 {
            return None;
        }
        let span = now.duration_since(first).as_secs_f64().max(1.0);
        Some(recent.len() as f64 * 3600.0 / span)
    }

    /// Admin: retry a quarantined or waiting plan now (its failures stop counting).
    pub async fn retry(&self, plan: &str) -> Result<String, SchedulerError> {
        self.check_ready()?;
        let base = plan_base(plan).to_owned();
        let (status, last) = self
            .reg(|r| r.get(&base).map(|r| (r.status.name(), r.last_attempt)))
            .ok_or_else(|| SchedulerError::BadRequest(format!("no plan {base}")))?;
        if !matches!(status, "error" | "waiting") {
            return Err(SchedulerError::BadRequest(format!(
                "plan {base} is {status}; only error and waiting plans can be retried"
            )));
        }
        crate::admin::mark_retried(&self.plans, &base, last)
            .await
            .map_err(SchedulerError::storage(format!("retrying {base}")))?;
        self.reg(|r| r.retried(&base));
        self.wake.notify_waiters();
        tracing::info!(plan = %base, "retried by operator");
        Ok(format!("plan {} queued again", with_date(&base)))
    }

    /// Admin: cancel a plan (quarantine it; a worker holding it loses its lease).
    pub async fn cancel(&self, plan: &str) -> Result<String, SchedulerError> {
        self.check_ready()?;
        let base = plan_base(plan).to_owned();
        let (status, old) = self
            .reg(|r| r.get(&base).cloned())
            .map(|r| {
                let old = match &r.status {
                    Status::Leased(l) => l.markers.clone(),
                    _ => Vec::new(),
                };
                (r.status.name(), old)
            })
            .ok_or_else(|| SchedulerError::BadRequest(format!("no plan {base}")))?;
        if matches!(status, "finished" | "error" | "invalid" | "starting") {
            return Err(SchedulerError::BadRequest(format!(
                "plan {base} is {status}; it cannot be cancelled"
            )));
        }
        let reason = format!(
            "plan {} cancelled by an operator at {}",
            with_date(&base),
            utc_text(unix_now())
        );
        let key = markers::error(&base);
        self.plans
            .put(&key, reason.clone().into_bytes())
            .await
            .map_err(SchedulerError::storage(format!("writing {key}")))?;
        self.delete_markers(&old).await;
        self.reg(|r| r.cancelled(&base, reason));
        ::metrics::counter!(m::QUARANTINES).increment(1);
        tracing::warn!(plan = %base, "cancelled by operator");
        Ok(format!("plan {} cancelled", with_date(&base)))
    }

    /// Background duties until `shutdown`: periodic listings, lease expiry, gauges.
    pub async fn run_background(&self, shutdown: tokio_util::sync::CancellationToken) {
        let tick = (self.cfg.registry.lease_ttl / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        let mut last_scan = Instant::now();
        let mut first = !self.is_ready();
        loop {
            if first || last_scan.elapsed() >= self.cfg.scan_interval {
                match self.sync_with_bucket().await {
                    Ok(()) => first = false,
                    Err(e) => {
                        ::metrics::counter!(m::STORE_ERRORS, "op" => "scan").increment(1);
                        tracing::error!(error = %e, "listing the plans failed; retrying");
                    }
                }
                last_scan = Instant::now();
            }
            if self.is_ready() {
                self.expire_leases().await;
            }
            self.publish_gauges();
            if tokio::time::timeout(tick, shutdown.cancelled())
                .await
                .is_ok()
            {
                return;
            }
        }
    }
}

impl Scheduler {
    /// The status page's data.
    pub fn snapshot(&self) -> crate::status::Snapshot {
        let now = self.now();
        let ready = self.is_ready();
        // One status request at a time. The view's lock is always taken before the
        // registry's (never the other way round), and each registry step is short:
        // O(changes), or a slice of plans while the view is first filled.
        let plans = {
            let mut view = self.status_view.lock().unwrap_or_else(|p| p.into_inner());
            view.refresh(|f| self.reg(|r| f(r)), now)
        };
        let mut snap = self
            .reg(|r| crate::status::QueueSummary::of(r))
            .into_snapshot(plans, ready, &self.cfg.tool, &self.plans_url);
        snap.progress = crate::status::Progress::of(&snap.counts, self.finished_per_hour());
        snap
    }
}

/// Unix seconds as `2026-12-01 07:15:02 UTC`, for messages people read.
fn utc_text(secs: i64) -> String {
    let rest = secs.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        format_day(secs.div_euclid(86_400)),
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_text_reads_as_a_date_and_time() {
        assert_eq!(super::utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc_text(1_796_105_216), "2026-12-01 06:06:56 UTC");
    }
}
