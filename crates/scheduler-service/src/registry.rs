//! The scheduler's in-memory view of every plan: status, queue, leases, failures.
//!
//! Pure state with no I/O: the [`Scheduler`](crate::Scheduler) decides under the lock,
//! writes markers without it, then records the outcome here. Times are milliseconds on
//! the scheduler's own monotonic clock ([`Millis`]); ages read from the bucket are
//! converted with the object store's clock, so no two hosts' clocks are ever compared
//! (W2/W5). Every change bumps a generation so a full re-list that started earlier
//! never overwrites a newer in-memory change (W3).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::lease_token::LeaseProof;
use crate::queue::{Queue, QueueOrder};

/// Milliseconds on the scheduler's monotonic clock (may be negative for events that
/// happened before the process started).
pub type Millis = i64;

/// Policies of the registry.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Hand-out order.
    pub order: QueueOrder,
    /// Take turns between tenants.
    pub fair: bool,
    /// Failed attempts before a plan is quarantined.
    pub max_attempts: u32,
    /// Backoff after the first failure (doubles per failure).
    pub backoff_min: Duration,
    /// Backoff ceiling.
    pub backoff_max: Duration,
    /// Lease lifetime without a heartbeat.
    pub lease_ttl: Duration,
    /// Lease lifetime of Cortex workers, which prove liveness only by rewriting their
    /// progress file (Cortex `-scheduler.max-progress-file-age`).
    pub legacy_lease_ttl: Duration,
}

impl RegistryConfig {
    /// Wait before the attempt after `failures` counted failures (doubling, capped).
    pub fn backoff(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        self.backoff_min
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max)
    }
}

/// One failed attempt, stored as the content of `<base>.failed.<n>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// Attempt number.
    pub attempt: u32,
    /// Worker that held it.
    pub worker: String,
    /// Whether a retry can help.
    pub retriable: bool,
    /// What went wrong.
    pub error: String,
    /// Unix seconds (scheduler clock; informational).
    pub at_unix: i64,
}

/// Progress a worker reports with its heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WorkProgress {
    /// Build phase.
    pub phase: String,
    /// Series done.
    pub series_done: u64,
    /// Series in the plan.
    pub series_total: u64,
}

/// A plan held by a worker.
#[derive(Debug, Clone)]
pub struct Lease {
    /// Worker identity (as recorded in the attempt marker after a scheduler restart).
    pub worker: String,
    /// Rebuilt from the bucket after a restart: the first worker that presents the
    /// lease's token (whatever name it gives) adopts it.
    pub adoptable: bool,
    /// SHA-256 of the lease's token; `None` for leases nobody can prove here (Cortex
    /// workers, another scheduler's hand-outs, markers of older versions): those only
    /// expire.
    pub proof: Option<LeaseProof>,
    /// Attempt number.
    pub attempt: u32,
    /// Leased through Cortex's `NextPlan` (liveness = progress files in the bucket).
    pub legacy: bool,
    /// When it was granted.
    pub granted: Millis,
    /// Last sign of life.
    pub last_heartbeat: Millis,
    /// Lifetime without a heartbeat.
    pub ttl: Duration,
    /// Latest reported progress.
    pub progress: WorkProgress,
    /// Progress markers in the bucket that belong to it.
    pub markers: Vec<String>,
    /// When a progress marker was last written.
    pub marker_written: Millis,
    /// A completion, failure, release or expiry is being written: no other may start.
    pub closing: bool,
}

/// Where a plan is in its life.
#[derive(Debug, Clone)]
pub enum Status {
    /// Queued.
    New,
    /// Failed before; queued again at `until`.
    Waiting {
        /// When it is queued again.
        until: Millis,
    },
    /// Being handed out (markers being written).
    Starting {
        /// The attempt being started.
        attempt: u32,
    },
    /// Held by a worker.
    Leased(Lease),
    /// Done: `<base>.finished.<id>` exists.
    Finished {
        /// Block ULID (or `cleaned`).
        id: String,
    },
    /// Quarantined: `<base>.error` exists.
    Error {
        /// Its content.
        reason: String,
    },
    /// Markers contradict each other (Cortex's Invalid) or the name is not a plan.
    Invalid {
        /// Why.
        reason: String,
    },
}

/// The worker shown for a lease found in the bucket whose holder is unknown (a Cortex
/// builder's, or an attempt marker that cannot be read). Display only: whether a lease
/// may be adopted is [`Lease::adoptable`], never this name.
pub const UNKNOWN_WORKER: &str = "(from bucket)";

/// Status names, also the `status` label values of the plans metric.
pub const STATUS_NAMES: [&str; 7] = [
    "new", "waiting", "starting", "leased", "finished", "error", "invalid",
];

impl Status {
    fn index(&self) -> usize {
        match self {
            Self::New => 0,
            Self::Waiting { .. } => 1,
            Self::Starting { .. } => 2,
            Self::Leased(_) => 3,
            Self::Finished { .. } => 4,
            Self::Error { .. } => 5,
            Self::Invalid { .. } => 6,
        }
    }

    /// Short name (see [`STATUS_NAMES`]).
    pub fn name(&self) -> &'static str {
        STATUS_NAMES[self.index()]
    }
}

/// Everything known about one plan.
#[derive(Debug, Clone)]
pub struct PlanRecord {
    /// `<tenant>/<day>`: the plan's marker base.
    pub base: String,
    /// Tenant (directory of the base).
    pub tenant: String,
    /// Day index; `None` when the base is not `<tenant>/<i32>` (never queued).
    pub day: Option<i32>,
    /// Plan object key (with suffix).
    pub plan_key: String,
    /// Status.
    pub status: Status,
    /// Highest attempt number started.
    pub last_attempt: u32,
    /// Failures at or below this attempt were retried by an operator and do not count.
    pub reset_after: u32,
    /// Failed attempts, oldest first.
    pub failures: Vec<FailureRecord>,
    /// Progress markers of attempts that ended (deleted at the next hand-out).
    pub stale_markers: Vec<String>,
    /// Generation of the last change.
    pub version: u64,
}

impl PlanRecord {
    /// A plan with no markers.
    pub fn new(base: &str, plan_key: &str) -> Self {
        let (tenant, day) = match base.rsplit_once('/') {
            Some((t, d)) if !t.is_empty() => (t.to_owned(), d.parse::<i32>().ok()),
            _ => (String::new(), None),
        };
        Self {
            base: base.to_owned(),
            tenant,
            day,
            plan_key: plan_key.to_owned(),
            status: Status::New,
            last_attempt: 0,
            reset_after: 0,
            failures: Vec::new(),
            stale_markers: Vec::new(),
            version: 0,
        }
    }

    /// Failures that count towards quarantine.
    pub fn counted_failures(&self) -> u32 {
        self.failures
            .iter()
            .filter(|f| f.attempt > self.reset_after)
            .count() as u32
    }
}

/// Why a worker's request about a lease was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// No such plan.
    #[error("plan {0} is unknown to the scheduler")]
    UnknownPlan(String),
    /// The plan is not leased (finished, quarantined, re-queued after expiry…).
    #[error("plan {plan} attempt {attempt} is no longer leased: the plan is {status}")]
    NotLeased {
        /// Plan base.
        plan: String,
        /// Attempt asked about.
        attempt: u32,
        /// Current status name.
        status: &'static str,
    },
    /// Another attempt (or worker) holds it.
    #[error(
        "plan {plan} attempt {attempt} is not this worker's lease: attempt {current} held by {holder}"
    )]
    Superseded {
        /// Plan base.
        plan: String,
        /// Attempt asked about.
        attempt: u32,
        /// Attempt holding the lease.
        current: u32,
        /// Its worker.
        holder: String,
    },
    /// The caller did not present the lease's token.
    #[error("plan {plan} attempt {attempt}: the caller did not prove it holds this lease")]
    NotHolder {
        /// Plan base.
        plan: String,
        /// Attempt asked about.
        attempt: u32,
    },
    /// A completion, failure or expiry of this lease is already being recorded.
    #[error("plan {plan} attempt {attempt} is already being closed")]
    Closing {
        /// Plan base.
        plan: String,
        /// Attempt.
        attempt: u32,
    },
}

/// A plan picked for hand-out.
#[derive(Debug, Clone)]
pub struct Handout {
    /// Plan base.
    pub base: String,
    /// Plan object key.
    pub plan_key: String,
    /// Attempt number being started.
    pub attempt: u32,
    /// Tenant.
    pub tenant: String,
    /// Day index.
    pub day: i32,
    /// Progress markers of earlier attempts to delete.
    pub stale_markers: Vec<String>,
}

/// How a failed attempt ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Queued again at this time.
    Retry {
        /// When.
        at: Millis,
    },
    /// Quarantined with this `.error` text.
    Quarantine {
        /// The `.error` content.
        reason: String,
    },
}

/// A lease that outlived its TTL.
#[derive(Debug, Clone)]
pub struct ExpiredLease {
    /// Plan base.
    pub base: String,
    /// Attempt.
    pub attempt: u32,
    /// Worker.
    pub worker: String,
    /// Time since the last sign of life.
    pub silent_for: Duration,
    /// Its progress markers.
    pub markers: Vec<String>,
}

/// All plans, the queue and the waiting set.
#[derive(Debug)]
pub struct Registry {
    cfg: RegistryConfig,
    /// Every plan by name; ordered so the status view can read it in slices.
    plans: BTreeMap<String, PlanRecord>,
    queue: Queue,
    waiting: BTreeSet<(Millis, String)>,
    /// Plans in `Status::Leased`: what the periodic expiry and progress polls walk,
    /// so their work is proportional to the leases, not to all plans.
    leased: BTreeSet<String>,
    counts: [u64; STATUS_NAMES.len()],
    version: u64,
    /// Status lines of the plans changed since the status view last took them (`None`
    /// = removed); `None` until a view exists, so nothing is kept for a page nobody reads.
    line_changes: Option<HashMap<String, Option<StatusLine>>>,
}

/// One plan's line with absolute times: what the registry records whenever a plan
/// changes (O(1) per change) and the status view keeps; the status page turns it into
/// the line of a given moment.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusLine {
    pub(crate) plan: String,
    pub(crate) tenant: String,
    pub(crate) day: Option<i32>,
    pub(crate) status: &'static str,
    pub(crate) attempts: u32,
    pub(crate) failures: u32,
    pub(crate) worker: Option<String>,
    pub(crate) granted: Option<Millis>,
    pub(crate) last_heartbeat: Option<Millis>,
    pub(crate) progress: Option<String>,
    pub(crate) block: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) retry_at: Option<Millis>,
}

impl StatusLine {
    /// The line of a plan as it is now.
    pub fn of(r: &PlanRecord) -> Self {
        let mut line = StatusLine {
            plan: r.base.clone(),
            tenant: r.tenant.clone(),
            day: r.day,
            status: r.status.name(),
            attempts: r.last_attempt,
            failures: r.counted_failures(),
            worker: None,
            granted: None,
            last_heartbeat: None,
            progress: None,
            block: None,
            reason: None,
            retry_at: None,
        };
        match &r.status {
            Status::Leased(l) => {
                line.worker = Some(l.worker.clone());
                line.granted = Some(l.granted);
                line.last_heartbeat = Some(l.last_heartbeat);
                let p = &l.progress;
                // Before the plan is read its series are unknown: the phase alone,
                // not "validating 0/0 series".
                line.progress = match (p.phase.is_empty(), p.series_total) {
                    (true, _) => None,
                    (false, 0) => Some(p.phase.clone()),
                    (false, total) => Some(format!("{} {}/{total} series", p.phase, p.series_done)),
                };
            }
            Status::Finished { id } => line.block = Some(id.clone()),
            Status::Error { reason } | Status::Invalid { reason } => {
                line.reason = Some(reason.clone());
            }
            Status::Waiting { until } => {
                line.retry_at = Some(*until);
                line.reason = r.failures.last().map(|f| f.error.clone());
            }
            Status::New | Status::Starting { .. } => {}
        }
        line
    }

    /// The plan's name (`<tenant>/<day>`).
    pub fn plan(&self) -> &str {
        &self.plan
    }
}

/// A duration in [`Millis`].
pub fn ms(d: Duration) -> Millis {
    d.as_millis().min(i64::MAX as u128) as Millis
}

impl Registry {
    /// An empty registry.
    pub fn new(cfg: RegistryConfig) -> Self {
        Self {
            queue: Queue::new(cfg.order, cfg.fair),
            cfg,
            plans: BTreeMap::new(),
            waiting: BTreeSet::new(),
            leased: BTreeSet::new(),
            counts: [0; STATUS_NAMES.len()],
            version: 0,
            line_changes: None,
        }
    }

    /// Policies.
    pub fn config(&self) -> &RegistryConfig {
        &self.cfg
    }

    /// Current generation (take it before listing the bucket; see [`Self::apply_scan`]).
    pub fn generation(&self) -> u64 {
        self.version
    }

    /// Plans per status, in [`STATUS_NAMES`] order.
    pub fn counts(&self) -> [u64; STATUS_NAMES.len()] {
        self.counts
    }

    /// The ready queue.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Plans waiting for their retry.
    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    /// One plan.
    pub fn get(&self, base: &str) -> Option<&PlanRecord> {
        self.plans.get(base)
    }

    /// Every plan (unordered).
    pub fn plans(&self) -> impl Iterator<Item = &PlanRecord> {
        self.plans.values()
    }

    /// Every leased plan with its lease, in plan order; O(leases).
    pub fn leases(&self) -> impl Iterator<Item = (&PlanRecord, &Lease)> {
        self.leased.iter().filter_map(|b| {
            let rec = self.plans.get(b)?;
            match &rec.status {
                Status::Leased(l) => Some((rec, l)),
                _ => None,
            }
        })
    }

    fn leave(&mut self, rec_status: &Status, tenant: &str, day: Option<i32>, base: &str) {
        match rec_status {
            Status::New => {
                if let Some(d) = day {
                    self.queue.remove(tenant, d, base);
                }
            }
            Status::Waiting { until } => {
                self.waiting.remove(&(*until, base.to_owned()));
            }
            Status::Leased(_) => {
                self.leased.remove(base);
            }
            _ => {}
        }
        self.counts[rec_status.index()] -= 1;
    }

    fn enter(&mut self, status: &Status, tenant: &str, day: Option<i32>, base: &str) {
        match status {
            Status::New => {
                if let Some(d) = day {
                    self.queue.insert(tenant, d, base);
                }
            }
            Status::Waiting { until } => {
                self.waiting.insert((*until, base.to_owned()));
            }
            Status::Leased(_) => {
                self.leased.insert(base.to_owned());
            }
            _ => {}
        }
        self.counts[status.index()] += 1;
    }

    /// Changes a plan's status, keeping queue, waiting set and counts in step.
    fn set_status(&mut self, base: &str, status: Status) {
        let Some(rec) = self.plans.get(base) else {
            return;
        };
        let (old, tenant, day) = (rec.status.clone(), rec.tenant.clone(), rec.day);
        self.leave(&old, &tenant, day, base);
        // A plan that is not a day never enters the queue.
        let status = match (status, day) {
            (Status::New | Status::Waiting { .. }, None) => Status::Invalid {
                reason: "the plan's name is not <tenant>/<day index>".into(),
            },
            (s, _) => s,
        };
        self.enter(&status, &tenant, day, base);
        self.version += 1;
        if let Some(rec) = self.plans.get_mut(base) {
            rec.status = status;
            rec.version = self.version;
        }
        self.note_change(base);
    }

    /// Records `base`'s status line for the status view, if one is kept. O(1).
    fn note_change(&mut self, base: &str) {
        if let Some(changes) = &mut self.line_changes {
            changes.insert(base.to_owned(), self.plans.get(base).map(StatusLine::of));
        }
    }

    /// The status lines of plans changed since the last call (their latest state;
    /// `None` = removed), or `None` when this call starts the feed: the caller then reads
    /// every line once with [`Registry::lines_after`]. O(1).
    pub fn take_line_changes(&mut self) -> Option<HashMap<String, Option<StatusLine>>> {
        match &mut self.line_changes {
            Some(changes) => Some(std::mem::take(changes)),
            None => {
                self.line_changes = Some(HashMap::new());
                None
            }
        }
    }

    /// Quarantined plans among the next `max` plans named after `after` (in name order;
    /// with `tenant`, only that tenant's), and the last plan looked at: the cursor of
    /// the next call, `None` at the end. O(log plans + max).
    pub fn quarantined_after(
        &self,
        after: Option<&str>,
        tenant: Option<&str>,
        max: usize,
    ) -> (Vec<String>, Option<String>) {
        use std::ops::Bound;
        let prefix = tenant.map(|t| format!("{t}/"));
        let lower = match (after, &prefix) {
            (Some(a), _) => Bound::Excluded(a),
            (None, Some(p)) => Bound::Included(p.as_str()),
            (None, None) => Bound::Unbounded,
        };
        let mut found = Vec::new();
        let mut looked_at = 0;
        let mut last = None;
        for (base, rec) in self
            .plans
            .range::<str, _>((lower, Bound::Unbounded))
            .take(max)
        {
            if prefix.as_deref().is_some_and(|p| !base.starts_with(p)) {
                return (found, None);
            }
            if matches!(rec.status, Status::Error { .. }) {
                found.push(base.clone());
            }
            looked_at += 1;
            last = Some(base.as_str());
        }
        let next = (looked_at == max)
            .then(|| last.map(str::to_owned))
            .flatten();
        (found, next)
    }

    /// The plans in the status feed now (tests).
    #[cfg(test)]
    pub(crate) fn pending_line_changes(&self) -> Vec<&str> {
        let mut plans: Vec<&str> = self
            .line_changes
            .iter()
            .flat_map(|c| c.keys().map(String::as_str))
            .collect();
        plans.sort_unstable();
        plans
    }

    /// The status lines of up to `max` plans named after `after`, in name order.
    /// O(log plans + max).
    pub fn lines_after(&self, after: Option<&str>, max: usize) -> Vec<StatusLine> {
        use std::ops::Bound;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.plans
            .range::<str, _>((lower, Bound::Unbounded))
            .take(max)
            .map(|(_, r)| StatusLine::of(r))
            .collect()
    }

    fn insert_record(&mut self, mut rec: PlanRecord) {
        if let Some(old) = self.plans.remove(&rec.base) {
            self.leave(&old.status, &old.tenant, old.day, &old.base);
        }
        let status = std::mem::replace(&mut rec.status, Status::New);
        let base = rec.base.clone();
        self.enter(&Status::New, &rec.tenant, rec.day, &base);
        self.plans.insert(base.clone(), rec);
        self.set_status(&base, status);
    }

    fn remove_record(&mut self, base: &str) {
        if let Some(old) = self.plans.remove(base) {
            self.leave(&old.status, &old.tenant, old.day, base);
            self.version += 1;
            self.note_change(base);
        }
    }

    /// Merges a full listing of the bucket taken after generation `scan_version`: plans
    /// changed in memory since then keep their newer state, leases keep their worker
    /// and the most recent sign of life, and plans no longer listed are dropped.
    pub fn apply_scan(&mut self, scanned: Vec<PlanRecord>, scan_version: u64) {
        let listed: HashSet<String> = scanned.iter().map(|r| r.base.clone()).collect();
        self.merge_listed(scanned, scan_version);
        let mut cursor: Option<String> = None;
        while let Some(next) =
            self.drop_unlisted_after(cursor.as_deref(), usize::MAX, &listed, scan_version)
        {
            cursor = Some(next);
        }
    }

    /// Merges part of a listing taken after generation `scan_version` (see
    /// [`Self::apply_scan`]); a listing can be merged in slices, other calls in between.
    /// O(slice · log plans).
    pub fn merge_listed(&mut self, scanned: Vec<PlanRecord>, scan_version: u64) {
        for mut rec in scanned {
            if let Some(old) = self.plans.get(&rec.base) {
                // Newer than the listing, or in the middle of a hand-out or of closing a
                // lease (markers being written right now): memory is the truth.
                let in_flight = matches!(old.status, Status::Starting { .. })
                    || matches!(&old.status, Status::Leased(l) if l.closing);
                if old.version > scan_version || in_flight {
                    continue;
                }
                match (&old.status, &mut rec.status) {
                    // Same lease: keep what heartbeats told us, take newer bucket activity.
                    (Status::Leased(mem), Status::Leased(seen)) if mem.attempt == seen.attempt => {
                        let mut lease = mem.clone();
                        lease.last_heartbeat = lease.last_heartbeat.max(seen.last_heartbeat);
                        lease.markers.clone_from(&seen.markers);
                        rec.status = Status::Leased(lease);
                    }
                    // Unchanged status and history: keep the record (and its version).
                    (a, b)
                        if a.name() == b.name()
                            && !matches!(a, Status::Leased(_))
                            && old.failures == rec.failures
                            && old.last_attempt == rec.last_attempt
                            && old.reset_after == rec.reset_after
                            && old.plan_key == rec.plan_key =>
                    {
                        continue;
                    }
                    _ => {}
                }
            }
            self.insert_record(rec);
        }
    }

    /// Drops plans among the next `max` after `after` (name order) that a listing taken
    /// after generation `scan_version` no longer holds and that did not change since;
    /// returns the cursor of the next slice, `None` at the end. O(log plans + max).
    pub fn drop_unlisted_after(
        &mut self,
        after: Option<&str>,
        max: usize,
        listed: &HashSet<String>,
        scan_version: u64,
    ) -> Option<String> {
        use std::ops::Bound;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut looked_at = 0;
        let mut last = None;
        let mut gone = Vec::new();
        for (base, r) in self
            .plans
            .range::<str, _>((lower, Bound::Unbounded))
            .take(max)
        {
            looked_at += 1;
            last = Some(base.clone());
            if r.version <= scan_version && !listed.contains(base) {
                gone.push(base.clone());
            }
        }
        for base in gone {
            self.remove_record(&base);
        }
        if looked_at == max { last } else { None }
    }

    /// Queues waiting plans whose backoff has passed.
    pub fn promote_due(&mut self, now: Millis) {
        while let Some((until, _)) = self.waiting.first()
            && *until <= now
        {
            let Some((_, base)) = self.waiting.pop_first() else {
                break;
            };
            // set_status's removal from the waiting set is a no-op now.
            if matches!(
                self.plans.get(&base).map(|r| &r.status),
                Some(Status::Waiting { .. })
            ) {
                self.set_status(&base, Status::New);
            }
        }
    }

    /// Picks the next plan and marks it Starting.
    pub fn take_next(&mut self, now: Millis) -> Option<Handout> {
        self.promote_due(now);
        // Popped already: set_status's removal from the queue is a no-op.
        let base = self.queue.pop()?;
        let rec = self.plans.get_mut(&base)?;
        let attempt = rec.last_attempt + 1;
        rec.last_attempt = attempt;
        let handout = Handout {
            base: base.clone(),
            plan_key: rec.plan_key.clone(),
            attempt,
            tenant: rec.tenant.clone(),
            day: rec.day.unwrap_or_default(),
            stale_markers: std::mem::take(&mut rec.stale_markers),
        };
        self.set_status(&base, Status::Starting { attempt });
        Some(handout)
    }

    /// The hand-out's markers are written: the worker holds the plan.
    pub fn grant(
        &mut self,
        h: &Handout,
        worker: &str,
        legacy: bool,
        proof: Option<LeaseProof>,
        marker: String,
        now: Millis,
    ) {
        if !self.is_starting(h) {
            return;
        }
        let ttl = if legacy {
            self.cfg.legacy_lease_ttl
        } else {
            self.cfg.lease_ttl
        };
        self.set_status(
            &h.base,
            Status::Leased(Lease {
                worker: worker.to_owned(),
                adoptable: false,
                proof,
                attempt: h.attempt,
                legacy,
                granted: now,
                last_heartbeat: now,
                ttl,
                progress: WorkProgress::default(),
                markers: vec![marker],
                marker_written: now,
                closing: false,
            }),
        );
    }

    fn is_starting(&self, h: &Handout) -> bool {
        matches!(self.plans.get(&h.base).map(|r| &r.status), Some(Status::Starting { attempt }) if *attempt == h.attempt)
    }

    /// Writing the hand-out's markers failed: back to the queue (the attempt number is
    /// used up; the next hand-out takes the next one).
    pub fn abort_handout(&mut self, h: &Handout) {
        if self.is_starting(h) {
            self.set_status(&h.base, Status::New);
        }
    }

    /// The attempt marker already existed: another scheduler instance leased this
    /// attempt. Treat the plan as held by that unknown worker until its lease expires.
    pub fn attempt_taken(&mut self, h: &Handout, now: Millis) {
        if !self.is_starting(h) {
            return;
        }
        let ttl = self.cfg.lease_ttl;
        self.set_status(
            &h.base,
            Status::Leased(Lease {
                worker: "(another scheduler's worker)".into(),
                adoptable: false,
                proof: None,
                attempt: h.attempt,
                legacy: false,
                granted: now,
                last_heartbeat: now,
                ttl,
                progress: WorkProgress::default(),
                markers: Vec::new(),
                marker_written: now,
                closing: false,
            }),
        );
    }

    fn lease_mut(
        &mut self,
        base: &str,
        attempt: u32,
        worker: &str,
        token: &str,
    ) -> Result<&mut Lease, LeaseError> {
        let rec = self
            .plans
            .get_mut(base)
            .ok_or_else(|| LeaseError::UnknownPlan(base.to_owned()))?;
        let status_name = rec.status.name();
        let Status::Leased(lease) = &mut rec.status else {
            return Err(LeaseError::NotLeased {
                plan: base.to_owned(),
                attempt,
                status: status_name,
            });
        };
        // An older attempt's worker learns it lost the lease (its token is that
        // attempt's, so it could never prove the current one).
        let superseded = || LeaseError::Superseded {
            plan: base.to_owned(),
            attempt,
            current: lease.attempt,
            holder: lease.worker.clone(),
        };
        if lease.attempt != attempt {
            return Err(superseded());
        }
        // The token, not the name or the attempt (both public on /plans), proves the
        // caller holds the lease.
        if !lease.proof.is_some_and(|p| p.accepts(token)) {
            return Err(LeaseError::NotHolder {
                plan: base.to_owned(),
                attempt,
            });
        }
        if !lease.adoptable && lease.worker != worker {
            return Err(superseded());
        }
        if lease.closing {
            return Err(LeaseError::Closing {
                plan: base.to_owned(),
                attempt,
            });
        }
        if lease.adoptable {
            lease.adoptable = false;
            lease.worker = worker.to_owned();
        }
        Ok(lease)
    }

    /// Extends a lease. Returns the progress markers to replace when a fresh one is due
    /// (every third of the TTL), so a restarted scheduler sees the lease alive.
    pub fn heartbeat(
        &mut self,
        base: &str,
        attempt: u32,
        worker: &str,
        token: &str,
        progress: WorkProgress,
        now: Millis,
    ) -> Result<Option<Vec<String>>, LeaseError> {
        let lease = self.lease_mut(base, attempt, worker, token)?;
        lease.last_heartbeat = now;
        lease.progress = progress;
        let markers = (now - lease.marker_written >= ms(lease.ttl) / 3).then(|| {
            lease.marker_written = now;
            lease.markers.clone()
        });
        self.note_change(base);
        Ok(markers)
    }

    /// Records the progress marker that replaced `old`; false when the lease ended
    /// meanwhile (the caller deletes the new marker).
    pub fn marker_replaced(
        &mut self,
        base: &str,
        attempt: u32,
        old: &[String],
        new: String,
    ) -> bool {
        if let Some(rec) = self.plans.get_mut(base)
            && let Status::Leased(lease) = &mut rec.status
            && lease.attempt == attempt
            && !lease.closing
        {
            lease.markers.retain(|m| !old.contains(m));
            lease.markers.push(new);
            return true;
        }
        false
    }

    /// Starts closing a lease (completion, failure or release); returns its markers.
    pub fn begin_close(
        &mut self,
        base: &str,
        attempt: u32,
        worker: &str,
        token: &str,
    ) -> Result<Vec<String>, LeaseError> {
        let lease = self.lease_mut(base, attempt, worker, token)?;
        lease.closing = true;
        Ok(lease.markers.clone())
    }

    /// Closing failed half-way (bucket error): the lease is open again.
    pub fn abort_close(&mut self, base: &str, attempt: u32) {
        if let Some(rec) = self.plans.get_mut(base)
            && let Status::Leased(lease) = &mut rec.status
            && lease.attempt == attempt
        {
            lease.closing = false;
        }
    }

    /// Whether the plan already finished with this block (a repeated completion).
    pub fn finished_with(&self, base: &str, id: &str) -> bool {
        matches!(self.plans.get(base).map(|r| &r.status), Some(Status::Finished { id: f }) if f == id)
    }

    /// The plan is finished.
    pub fn finish(&mut self, base: &str, id: &str) {
        self.set_status(base, Status::Finished { id: id.to_owned() });
    }

    /// Decides what a failure of the current attempt leads to.
    pub fn failure_outcome(&self, base: &str, f: &FailureRecord, now: Millis) -> FailureOutcome {
        let Some(rec) = self.plans.get(base) else {
            return FailureOutcome::Quarantine {
                reason: f.error.clone(),
            };
        };
        let failures = rec.counted_failures() + 1;
        if !f.retriable || failures >= self.cfg.max_attempts {
            let mut history: Vec<&FailureRecord> = rec
                .failures
                .iter()
                .filter(|x| x.attempt > rec.reset_after)
                .collect();
            history.push(f);
            let why = if f.retriable {
                format!("gave up after {failures} failed attempts")
            } else {
                "failed with an error a retry cannot fix".to_owned()
            };
            let mut reason = format!("plan {base} quarantined: {why}.\n");
            for h in history {
                reason.push_str(&format!(
                    "attempt {} on {} ({}): {}\n",
                    h.attempt,
                    h.worker,
                    if h.retriable { "retriable" } else { "fatal" },
                    h.error
                ));
            }
            return FailureOutcome::Quarantine { reason };
        }
        FailureOutcome::Retry {
            at: now + ms(self.cfg.backoff(failures)),
        }
    }

    /// Records a failed attempt and its outcome (the markers are written).
    pub fn record_failure(&mut self, base: &str, f: FailureRecord, outcome: &FailureOutcome) {
        if let Some(rec) = self.plans.get_mut(base) {
            rec.failures.push(f);
        }
        let status = match outcome {
            FailureOutcome::Retry { at } => Status::Waiting { until: *at },
            FailureOutcome::Quarantine { reason } => Status::Error {
                reason: reason.clone(),
            },
        };
        self.set_status(base, status);
    }

    /// The worker gave the plan back: queued again at once, no failure counted.
    pub fn released(&mut self, base: &str) {
        self.set_status(base, Status::New);
    }

    /// Leases silent for longer than their TTL, marked closing so they are handled once.
    pub fn take_expired(&mut self, now: Millis) -> Vec<ExpiredLease> {
        let mut out = Vec::new();
        for base in &self.leased {
            let Some(rec) = self.plans.get_mut(base) else {
                continue;
            };
            if let Status::Leased(lease) = &mut rec.status
                && !lease.closing
                && now - lease.last_heartbeat >= ms(lease.ttl)
            {
                lease.closing = true;
                out.push(ExpiredLease {
                    base: rec.base.clone(),
                    attempt: lease.attempt,
                    worker: lease.worker.clone(),
                    silent_for: Duration::from_millis((now - lease.last_heartbeat).max(0) as u64),
                    markers: lease.markers.clone(),
                });
            }
        }
        out
    }

    /// Every open lease of `worker`, marked closing (the process that held them is
    /// gone: see [`crate::scheduler::Scheduler::reclaim_leases`]); base and markers of
    /// each.
    pub fn take_leases_of(&mut self, worker: &str) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for base in &self.leased {
            let Some(rec) = self.plans.get_mut(base) else {
                continue;
            };
            if let Status::Leased(lease) = &mut rec.status
                && !lease.closing
                && lease.worker == worker
            {
                lease.closing = true;
                out.push((rec.base.clone(), lease.markers.clone()));
            }
        }
        out
    }

    /// An operator retries the plan: failures so far stop counting and it is queued.
    pub fn retried(&mut self, base: &str) {
        if let Some(rec) = self.plans.get_mut(base) {
            rec.reset_after = rec.last_attempt;
        }
        self.set_status(base, Status::New);
    }

    /// An operator cancelled the plan: quarantined with this reason.
    pub fn cancelled(&mut self, base: &str, reason: String) {
        self.set_status(base, Status::Error { reason });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RegistryConfig {
        RegistryConfig {
            order: QueueOrder::NewestFirst,
            fair: false,
            max_attempts: 3,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(3),
            lease_ttl: Duration::from_secs(10),
            legacy_lease_ttl: Duration::from_secs(100),
        }
    }

    fn registry(bases: &[&str]) -> Registry {
        let mut r = Registry::new(cfg());
        let recs = bases
            .iter()
            .map(|b| PlanRecord::new(b, &format!("{b}.plan.snappy")))
            .collect();
        r.apply_scan(recs, 0);
        r
    }

    fn failure(attempt: u32, retriable: bool) -> FailureRecord {
        FailureRecord {
            attempt,
            worker: "w".into(),
            retriable,
            error: format!("boom {attempt}"),
            at_unix: 0,
        }
    }

    #[test]
    fn a_listing_merged_in_slices_equals_one_merged_at_once() {
        let bases: Vec<String> = (1..=50).map(|d| format!("a/{d}")).collect();
        let refs: Vec<&str> = bases.iter().map(String::as_str).collect();
        let (mut whole, mut sliced) = (registry(&refs), registry(&refs));
        // The listing is taken here, before the lease.
        let v = whole.generation();
        let mut leased = String::new();
        for r in [&mut whole, &mut sliced] {
            let h = r.take_next(0).expect("queued");
            r.grant(&h, "w", false, Some(LeaseProof::of("t")), "m".into(), 0);
            leased = h.base;
        }
        // It misses a/1..a/10 and holds a new b/1.
        let listing: Vec<PlanRecord> = bases[10..]
            .iter()
            .chain(std::iter::once(&"b/1".to_owned()))
            .map(|b| PlanRecord::new(b, &format!("{b}.plan.snappy")))
            .collect();
        let listed: HashSet<String> = listing.iter().map(|r| r.base.clone()).collect();
        whole.apply_scan(listing.clone(), v);
        for slice in listing.chunks(7) {
            sliced.merge_listed(slice.to_vec(), v);
        }
        let mut cursor: Option<String> = None;
        while let Some(next) = sliced.drop_unlisted_after(cursor.as_deref(), 4, &listed, v) {
            cursor = Some(next);
        }
        let shape = |r: &Registry| -> Vec<(String, &'static str)> {
            r.plans()
                .map(|p| (p.base.clone(), p.status.name()))
                .collect()
        };
        assert_eq!(shape(&sliced), shape(&whole));
        assert_eq!(sliced.counts(), whole.counts());
        assert!(sliced.get("b/1").is_some() && sliced.get("a/2").is_none());
        assert_eq!(
            sliced.get(&leased).map(|p| p.status.name()),
            Some("leased"),
            "a lease taken after the listing stays"
        );
    }

    #[test]
    fn quarantined_plans_are_found_slice_by_slice() {
        let mut r = registry(&["a/1", "a/2", "a/3", "ab/1", "b/1", "b/2"]);
        for base in ["a/2", "ab/1", "b/2"] {
            r.cancelled(base, "boom".into());
        }
        // Two plans per call: the cursor carries on where the last call stopped.
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        let mut calls = 0;
        loop {
            let (found, next) = r.quarantined_after(cursor.as_deref(), None, 2);
            all.extend(found);
            calls += 1;
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        assert_eq!(all, ["a/2", "ab/1", "b/2"]);
        assert_eq!(calls, 4, "6 plans, 2 per call, and a last empty call");
        // One tenant's only: `a` is not a prefix match for `ab`.
        let (found, next) = r.quarantined_after(None, Some("a"), 10);
        assert_eq!((found, next), (vec!["a/2".to_owned()], None));
        let (found, next) = r.quarantined_after(None, Some("a"), 1);
        assert_eq!(
            (found, next),
            (Vec::<String>::new(), Some("a/1".to_owned()))
        );
    }

    #[test]
    fn lease_lifecycle_and_counts() {
        let mut r = registry(&["a/1", "a/2", "bad"]);
        assert_eq!(r.counts(), [2, 0, 0, 0, 0, 0, 1]);
        let h = r.take_next(0).expect("queued");
        assert_eq!((h.base.as_str(), h.attempt), ("a/2", 1));
        r.grant(
            &h,
            "w1",
            false,
            Some(LeaseProof::of("t1")),
            "a/2.starting.0".into(),
            0,
        );
        assert_eq!(r.counts(), [1, 0, 0, 1, 0, 0, 1]);
        let leased: Vec<&str> = r
            .leases()
            .map(|(p, l)| (p.base.as_str(), l))
            .map(|(b, _)| b)
            .collect();
        assert_eq!(leased, ["a/2"], "the lease set follows the status");
        // Wrong worker and wrong attempt are refused; the holder extends it.
        assert!(matches!(
            r.heartbeat("a/2", 1, "w2", "t1", WorkProgress::default(), 1),
            Err(LeaseError::Superseded { .. })
        ));
        // The holder's name and attempt without its token are not enough.
        assert!(matches!(
            r.heartbeat("a/2", 1, "w1", "guess", WorkProgress::default(), 1),
            Err(LeaseError::NotHolder { .. })
        ));
        assert!(matches!(
            r.begin_close("a/2", 1, "w1", ""),
            Err(LeaseError::NotHolder { .. })
        ));
        assert!(
            r.heartbeat("a/2", 2, "w1", "t1", WorkProgress::default(), 1)
                .is_err()
        );
        assert_eq!(
            r.heartbeat("a/2", 1, "w1", "t1", WorkProgress::default(), 1),
            Ok(None)
        );
        assert!(
            r.heartbeat("a/2", 1, "w1", "t1", WorkProgress::default(), 4000)
                .expect("held")
                .is_some()
        );
        assert!(r.take_expired(13_000).is_empty());
        r.begin_close("a/2", 1, "w1", "t1").expect("held");
        assert!(matches!(
            r.begin_close("a/2", 1, "w1", "t1"),
            Err(LeaseError::Closing { .. })
        ));
        r.finish("a/2", "01ULID");
        assert!(r.finished_with("a/2", "01ULID"));
        assert_eq!(r.counts(), [1, 0, 0, 0, 1, 0, 1]);
        assert_eq!(
            r.leases().count(),
            0,
            "a finished plan leaves the lease set"
        );
    }

    #[test]
    fn failures_back_off_then_quarantine() {
        let mut r = registry(&["a/1"]);
        for attempt in 1..=3u32 {
            let h = r
                .take_next(i64::from(attempt) * 100_000)
                .expect("queued again");
            assert_eq!(h.attempt, attempt);
            r.grant(&h, "w", false, Some(LeaseProof::of("t")), String::new(), 0);
            r.begin_close("a/1", attempt, "w", "t").expect("held");
            let f = failure(attempt, true);
            let out = r.failure_outcome("a/1", &f, 0);
            r.record_failure("a/1", f, &out);
            match (attempt, out) {
                (1, FailureOutcome::Retry { at }) => assert_eq!(at, 1000),
                (2, FailureOutcome::Retry { at }) => assert_eq!(at, 2000),
                (3, FailureOutcome::Quarantine { reason }) => {
                    assert!(reason.contains("gave up after 3"), "{reason}");
                    assert!(
                        reason.contains("boom 1") && reason.contains("boom 3"),
                        "{reason}"
                    );
                }
                other => panic!("unexpected {other:?}"),
            }
            // Not queued before its backoff.
            assert!(r.take_next(0).is_none());
        }
        assert_eq!(r.get("a/1").map(|p| p.status.name()), Some("error"));
        r.retried("a/1");
        assert_eq!(r.get("a/1").map(PlanRecord::counted_failures), Some(0));
        assert_eq!(r.take_next(0).map(|h| h.attempt), Some(4));
    }

    #[test]
    fn fatal_failure_quarantines_at_once() {
        let mut r = registry(&["a/1"]);
        let h = r.take_next(0).expect("queued");
        r.grant(&h, "w", false, Some(LeaseProof::of("t")), String::new(), 0);
        let out = r.failure_outcome("a/1", &failure(1, false), 0);
        assert!(matches!(out, FailureOutcome::Quarantine { .. }));
    }

    #[test]
    fn expiry_and_restart_adoption() {
        let mut r = registry(&["a/1"]);
        let h = r.take_next(0).expect("queued");
        r.grant(&h, "w", false, Some(LeaseProof::of("t")), String::new(), 0);
        let expired = r.take_expired(10_000);
        assert_eq!(expired.len(), 1);
        assert!(r.take_expired(20_000).is_empty(), "expired once only");

        // A lease rebuilt from the bucket is adopted by the first worker that proves it.
        let mut r = Registry::new(cfg());
        let mut rec = PlanRecord::new("a/1", "a/1.plan");
        rec.last_attempt = 2;
        rec.status = Status::Leased(Lease {
            worker: UNKNOWN_WORKER.into(),
            adoptable: true,
            proof: Some(LeaseProof::of("secret")),
            attempt: 2,
            legacy: false,
            granted: -5000,
            last_heartbeat: -5000,
            ttl: Duration::from_secs(10),
            progress: WorkProgress::default(),
            markers: vec!["a/1.inprogress.9".into()],
            marker_written: -5000,
            closing: false,
        });
        r.apply_scan(vec![rec], 0);
        assert!(
            r.take_next(0).is_none(),
            "a held plan is never handed out (W4)"
        );
        assert!(
            r.heartbeat("a/1", 1, "w", "secret", WorkProgress::default(), 0)
                .is_err()
        );
        assert!(
            r.heartbeat("a/1", 2, "w", "not-the-secret", WorkProgress::default(), 0)
                .is_err(),
            "a name and attempt read off /plans do not adopt a lease"
        );
        assert!(
            r.heartbeat("a/1", 2, "w", "secret", WorkProgress::default(), 0)
                .is_ok()
        );
        assert!(
            r.heartbeat("a/1", 2, "other", "secret", WorkProgress::default(), 0)
                .is_err()
        );
    }

    #[test]
    fn scans_never_touch_a_hand_out_or_a_closing_lease() {
        let mut r = registry(&["a/1"]);
        let h = r.take_next(0).expect("queued");
        // A listing that started after the hand-out began but read the bucket before
        // its markers were written still says New: it must not re-queue the plan.
        let v = r.generation();
        r.apply_scan(vec![PlanRecord::new("a/1", "a/1.plan")], v);
        assert!(r.take_next(0).is_none(), "handed out twice");
        r.grant(&h, "w", false, Some(LeaseProof::of("t")), String::new(), 0);
        r.begin_close("a/1", 1, "w", "t").expect("held");
        let mut failed = PlanRecord::new("a/1", "a/1.plan");
        failed.failures.push(failure(1, true));
        let v = r.generation();
        r.apply_scan(vec![failed], v);
        let f = failure(1, true);
        let out = r.failure_outcome("a/1", &f, 0);
        r.record_failure("a/1", f, &out);
        assert_eq!(
            r.get("a/1").map(PlanRecord::counted_failures),
            Some(1),
            "failure counted once"
        );
        // A late grant for a plan that is no longer starting changes nothing.
        r.grant(&h, "w", false, Some(LeaseProof::of("t")), String::new(), 0);
        assert_eq!(r.get("a/1").map(|p| p.status.name()), Some("waiting"));
    }

    #[test]
    fn scans_do_not_undo_newer_changes() {
        let mut r = registry(&["a/1", "a/2"]);
        let scan_version = r.generation();
        let h = r.take_next(0).expect("queued");
        r.grant(&h, "w", false, Some(LeaseProof::of("t")), String::new(), 0);
        // A listing taken before the hand-out still says New for both.
        r.apply_scan(
            vec![
                PlanRecord::new("a/1", "a/1.plan"),
                PlanRecord::new("a/2", "a/2.plan"),
            ],
            scan_version,
        );
        assert_eq!(r.get(&h.base).map(|p| p.status.name()), Some("leased"));
        // A plan deleted from the bucket disappears.
        let scan_version = r.generation();
        r.apply_scan(vec![PlanRecord::new(&h.base, "x.plan")], scan_version);
        assert_eq!(r.plans().count(), 1);
        assert_eq!(r.counts().iter().sum::<u64>(), 1);
    }
}
