//! Metric names of the builder service loop (`cortex_blocksconvert_builder_service_*`).

/// Plans handled (label `outcome`: done, failed, lost, released).
pub const PLANS: &str = "cortex_blocksconvert_builder_service_plans_total";
/// Leases held now.
pub const ACTIVE: &str = "cortex_blocksconvert_builder_service_leases_active";
/// Series done in the plans being built.
pub const SERIES_DONE: &str = "cortex_blocksconvert_builder_service_series_done";
/// Series in the plans being built.
pub const SERIES_TOTAL: &str = "cortex_blocksconvert_builder_service_series_total";
/// Scheduler calls that failed (label `rpc`).
pub const RPC_ERRORS: &str = "cortex_blocksconvert_builder_service_scheduler_errors_total";
/// Blocks deleted because their lease was lost.
pub const DISCARDED: &str = "cortex_blocksconvert_builder_service_discarded_blocks_total";

/// Registers help texts.
pub fn describe() {
    use ::metrics::{describe_counter, describe_gauge};
    describe_counter!(
        PLANS,
        "Plans handled by outcome (done, failed, lost, released)."
    );
    describe_gauge!(ACTIVE, "Leases held now.");
    describe_gauge!(SERIES_DONE, "Series done in the plans being built.");
    describe_gauge!(SERIES_TOTAL, "Series in the plans being built.");
    describe_counter!(RPC_ERRORS, "Scheduler calls that failed.");
    describe_counter!(
        DISCARDED,
        "Uploaded blocks deleted because their lease was lost."
    );
    // Every series exists from the start (an idle builder shows 0, not nothing).
    for outcome in ["done", "kept", "failed", "lost", "released"] {
        ::metrics::counter!(PLANS, "outcome" => outcome).increment(0);
    }
    for rpc in ["lease", "heartbeat", "complete", "fail", "release"] {
        ::metrics::counter!(RPC_ERRORS, "rpc" => rpc).increment(0);
    }
    ::metrics::counter!(DISCARDED).increment(0);
    for gauge in [ACTIVE, SERIES_DONE, SERIES_TOTAL] {
        ::metrics::gauge!(gauge).set(0.0);
    }
}
