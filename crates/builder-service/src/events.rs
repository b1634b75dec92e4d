//! What the builder service reports, one struct per event: each `emit` writes the
//! event's log line and moves its metric together, so the two never disagree and a
//! new call site cannot forget one of them. Events name their plan: several leases
//! build at once, and nothing here is process-wide state.

use std::time::Duration;

use crate::metric;

/// A call to the scheduler failed.
pub struct SchedulerCallFailed<'a> {
    /// The RPC (`lease`, `heartbeat`, `complete`, `fail`, `release`).
    pub rpc: &'static str,
    /// The plan it was about, if any.
    pub plan: Option<&'a str>,
    /// The scheduler's (or the transport's) answer.
    pub status: &'a tonic::Status,
    /// When it is tried again; `None` when it is not (the answer is final).
    pub retry_in: Option<Duration>,
}

impl SchedulerCallFailed<'_> {
    /// Logs the failure and counts it in `…_scheduler_errors_total{rpc}`.
    pub fn emit(self) {
        ::metrics::counter!(metric::RPC_ERRORS, "rpc" => self.rpc).increment(1);
        let (rpc, code, error) = (self.rpc, self.status.code(), self.status.message());
        let plan = self.plan.unwrap_or("");
        match self.retry_in {
            Some(retry_in) => {
                tracing::warn!(
                    plan,
                    rpc,
                    ?code,
                    error,
                    ?retry_in,
                    "scheduler call failed; retrying"
                );
            }
            None => tracing::warn!(
                plan,
                rpc,
                ?code,
                error,
                "scheduler call failed; not retried"
            ),
        }
    }
}

/// A block this builder uploaded is deleted because its lease was lost meanwhile.
pub struct BlockDiscarded<'a> {
    /// The plan.
    pub plan: &'a str,
    /// The lost attempt.
    pub attempt: u32,
    /// The block's ULID.
    pub block: &'a str,
}

impl BlockDiscarded<'_> {
    /// Logs the discard and counts it in `…_discarded_blocks_total`.
    pub fn emit(self) {
        ::metrics::counter!(metric::DISCARDED).increment(1);
        let BlockDiscarded {
            plan,
            attempt,
            block,
        } = self;
        tracing::warn!(
            plan,
            attempt,
            block,
            "lease lost: deleting the block this attempt uploaded"
        );
    }
}

/// A lease ended (label `outcome`: done, kept, failed, lost, released).
pub struct LeaseEnded<'a> {
    /// The plan.
    pub plan: &'a str,
    /// How it ended.
    pub outcome: &'static str,
}

impl LeaseEnded<'_> {
    /// Logs the end at debug level and counts it in `…_plans_total{outcome}`.
    pub fn emit(self) {
        ::metrics::counter!(metric::PLANS, "outcome" => self.outcome).increment(1);
        tracing::debug!(plan = self.plan, outcome = self.outcome, "lease ended");
    }
}
