//! Metric names of the scheduler (`cortex_blocksconvert_scheduler_*`); gauges are set
//! from the registry once a second, counters at each event, never per sample.

use crate::registry::{Registry, STATUS_NAMES};

/// Plans per status (label `status`).
pub const PLANS: &str = "cortex_blocksconvert_scheduler_plans";
/// Plans ready to lease.
pub const QUEUE_LENGTH: &str = "cortex_blocksconvert_scheduler_queue_length";
/// Oldest queued day (Unix seconds of its start).
pub const QUEUE_OLDEST_DAY: &str =
    "cortex_blocksconvert_scheduler_queue_oldest_day_timestamp_seconds";
/// Newest queued day (Unix seconds of its start).
pub const QUEUE_NEWEST_DAY: &str =
    "cortex_blocksconvert_scheduler_queue_newest_day_timestamp_seconds";
/// Plans waiting for a retry.
pub const WAITING: &str = "cortex_blocksconvert_scheduler_plans_waiting_retry";
/// Active leases.
pub const LEASES_ACTIVE: &str = "cortex_blocksconvert_scheduler_leases_active";
/// Leases granted (label `api`: lease or next_plan).
pub const LEASES_GRANTED: &str = "cortex_blocksconvert_scheduler_leases_granted_total";
/// Leases that expired without a heartbeat.
pub const LEASE_EXPIRIES: &str = "cortex_blocksconvert_scheduler_lease_expiries_total";
/// Leases released by their worker.
pub const LEASES_RELEASED: &str = "cortex_blocksconvert_scheduler_leases_released_total";
/// Plans finished.
pub const PLANS_COMPLETED: &str = "cortex_blocksconvert_scheduler_plans_completed_total";
/// Completions refused because their block is missing or does not match the plan.
pub const COMPLETIONS_REFUSED: &str = "cortex_blocksconvert_scheduler_completions_refused_total";
/// Finished markers dropped because their block is not in the blocks bucket.
pub const FINISHED_WITHOUT_BLOCK: &str =
    "cortex_blocksconvert_scheduler_finished_without_block_total";
/// Calls refused for a missing or wrong credential (label `api`: grpc, http).
pub const AUTH_FAILURES: &str = "cortex_blocksconvert_scheduler_auth_failures_total";
/// Failed attempts that will be retried.
pub const RETRIES: &str = "cortex_blocksconvert_scheduler_retries_total";
/// Plans quarantined (`.error` written).
pub const QUARANTINES: &str = "cortex_blocksconvert_scheduler_quarantines_total";
/// Attempts another scheduler had already taken (create-if-absent refused).
pub const ATTEMPT_CONFLICTS: &str = "cortex_blocksconvert_scheduler_attempt_conflicts_total";
/// Bucket operations that failed (label `op`).
pub const STORE_ERRORS: &str = "cortex_blocksconvert_scheduler_store_errors_total";
/// RPC latency (labels `method`, `code`).
pub const RPC_SECONDS: &str = "cortex_blocksconvert_scheduler_rpc_duration_seconds";
/// Full listings of the bucket.
pub const SCANS: &str = "cortex_blocksconvert_scheduler_scans_total";
/// Duration of the last full listing.
pub const SCAN_SECONDS: &str = "cortex_blocksconvert_scheduler_last_scan_duration_seconds";
/// Requests refused because they came from another tool (W15).
pub const WRONG_TOOL: &str = "cortex_blocksconvert_scheduler_wrong_tool_requests_total";

/// Cortex's scheduler gauges, under Cortex's names, so dashboards built for Cortex's
/// `blocksconvert` keep working.
pub mod cortex {
    /// Plans per Cortex status (label `status`: New, InProgress, Finished, Error,
    /// Invalid).
    pub const SCANNED_PLANS: &str = "cortex_blocksconvert_scheduler_scanned_plans";
    /// Plans ready to be handed out.
    pub const QUEUED_PLANS: &str = "cortex_blocksconvert_scheduler_queued_plans";
    /// Start of the oldest queued day, Unix seconds (0 with an empty queue).
    pub const OLDEST_QUEUED_PLAN: &str =
        "cortex_blocksconvert_scheduler_oldest_queued_plan_seconds";
    /// Start of the newest queued day, Unix seconds (0 with an empty queue).
    pub const NEWEST_QUEUED_PLAN: &str =
        "cortex_blocksconvert_scheduler_newest_queued_plan_seconds";

    /// Cortex's status of a plan in each of our statuses ([`super::STATUS_NAMES`]
    /// order): waiting for a retry is still New to Cortex, a hand-out InProgress.
    pub const STATUS_OF: [&str; 7] = [
        "New",
        "New",
        "InProgress",
        "InProgress",
        "Finished",
        "Error",
        "Invalid",
    ];

    /// Cortex's statuses, in its order.
    pub const STATUSES: [&str; 5] = ["New", "InProgress", "Finished", "Error", "Invalid"];
}

/// Registers help texts.
pub fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        PLANS,
        "Plans by status (new, waiting, starting, leased, finished, error, invalid)."
    );
    describe_gauge!(QUEUE_LENGTH, "Plans ready to be leased.");
    describe_gauge!(
        QUEUE_OLDEST_DAY,
        "Start of the oldest queued day, Unix seconds."
    );
    describe_gauge!(
        QUEUE_NEWEST_DAY,
        "Start of the newest queued day, Unix seconds."
    );
    describe_gauge!(WAITING, "Plans waiting for their retry backoff.");
    describe_gauge!(LEASES_ACTIVE, "Plans currently leased to workers.");
    describe_counter!(LEASES_GRANTED, "Leases granted.");
    describe_counter!(
        LEASE_EXPIRIES,
        "Leases that expired without a heartbeat (re-queued as a failed attempt)."
    );
    describe_counter!(
        LEASES_RELEASED,
        "Leases given back unfinished by their worker."
    );
    describe_counter!(PLANS_COMPLETED, "Plans finished by workers.");
    describe_counter!(
        COMPLETIONS_REFUSED,
        "Completions refused because their block is missing or does not match the plan."
    );
    describe_counter!(
        FINISHED_WITHOUT_BLOCK,
        "Finished markers dropped because their block is not in the blocks bucket (the plan is built again)."
    );
    describe_counter!(
        AUTH_FAILURES,
        "Calls refused for a missing or wrong bearer token."
    );
    describe_counter!(RETRIES, "Failed attempts queued for a retry.");
    describe_counter!(QUARANTINES, "Plans quarantined with an .error marker.");
    describe_counter!(
        ATTEMPT_CONFLICTS,
        "Hand-outs refused because the attempt marker already existed."
    );
    describe_counter!(STORE_ERRORS, "Failed bucket operations.");
    describe_histogram!(
        RPC_SECONDS,
        ::metrics::Unit::Seconds,
        "gRPC request latency."
    );
    describe_counter!(SCANS, "Full listings of the plans bucket.");
    describe_gauge!(
        SCAN_SECONDS,
        ::metrics::Unit::Seconds,
        "Duration of the last full listing."
    );
    describe_counter!(WRONG_TOOL, "Requests from another tool, refused (W15).");
    describe_gauge!(cortex::SCANNED_PLANS, "Number of plans in different status");
    describe_gauge!(cortex::QUEUED_PLANS, "Number of queued plans");
    describe_gauge!(cortex::OLDEST_QUEUED_PLAN, "Unix timestamp of oldest plan.");
    describe_gauge!(cortex::NEWEST_QUEUED_PLAN, "Unix timestamp of newest plan");
    // Counters exist from the start at 0, so `increase()` in alerts and dashboards sees
    // the first event instead of a series appearing out of nowhere.
    for name in [
        LEASE_EXPIRIES,
        LEASES_RELEASED,
        PLANS_COMPLETED,
        COMPLETIONS_REFUSED,
        FINISHED_WITHOUT_BLOCK,
        RETRIES,
        QUARANTINES,
        ATTEMPT_CONFLICTS,
        SCANS,
        WRONG_TOOL,
    ] {
        ::metrics::counter!(name).increment(0);
    }
    for op in [
        "scan",
        "lease",
        "heartbeat",
        "complete",
        "fail",
        "expire",
        "delete",
    ] {
        ::metrics::counter!(STORE_ERRORS, "op" => op).increment(0);
    }
    for api in ["lease", "next_plan"] {
        ::metrics::counter!(LEASES_GRANTED, "api" => api).increment(0);
    }
    for api in ["grpc", "http"] {
        ::metrics::counter!(AUTH_FAILURES, "api" => api).increment(0);
    }
}

/// The registry's gauge values, read under its lock (O(1): counts are kept
/// incrementally) and published after the lock is released, so the metrics recorder
/// is never called with the registry locked.
#[derive(Debug, Clone)]
pub struct GaugeReading {
    counts: [u64; STATUS_NAMES.len()],
    queue: usize,
    waiting: usize,
    day_range: Option<(i32, i32)>,
}

impl GaugeReading {
    /// Reads the values.
    pub fn read(reg: &Registry) -> Self {
        Self {
            counts: reg.counts(),
            queue: reg.queue().len(),
            waiting: reg.waiting_len(),
            day_range: reg.queue().day_range(),
        }
    }

    /// Sets the gauges.
    pub fn publish(&self) {
        for (name, n) in STATUS_NAMES.iter().zip(self.counts) {
            ::metrics::gauge!(PLANS, "status" => *name).set(n as f64);
        }
        ::metrics::gauge!(QUEUE_LENGTH).set(self.queue as f64);
        ::metrics::gauge!(WAITING).set(self.waiting as f64);
        ::metrics::gauge!(LEASES_ACTIVE).set(self.counts[3] as f64);
        let day_secs = |d: i32| f64::from(d) * 86_400.0;
        let (lo, hi) = self
            .day_range
            .map_or((0.0, 0.0), |(lo, hi)| (day_secs(lo), day_secs(hi)));
        ::metrics::gauge!(QUEUE_OLDEST_DAY).set(lo);
        ::metrics::gauge!(QUEUE_NEWEST_DAY).set(hi);
        let mut by_cortex_status = [0u64; cortex::STATUSES.len()];
        for (ours, n) in cortex::STATUS_OF.iter().zip(self.counts) {
            if let Some(i) = cortex::STATUSES.iter().position(|s| s == ours) {
                by_cortex_status[i] += n;
            }
        }
        for (status, n) in cortex::STATUSES.iter().zip(by_cortex_status) {
            ::metrics::gauge!(cortex::SCANNED_PLANS, "status" => *status).set(n as f64);
        }
        ::metrics::gauge!(cortex::QUEUED_PLANS).set(self.queue as f64);
        ::metrics::gauge!(cortex::OLDEST_QUEUED_PLAN).set(lo);
        ::metrics::gauge!(cortex::NEWEST_QUEUED_PLAN).set(hi);
    }
}
