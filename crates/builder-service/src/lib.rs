//! The builder service as a library: the lease loop that `blocksconvert-builder` and
//! `blocksconvert convert` run (see [`worker`]), and the [`preflight`] checks run
//! before it.

pub mod events;
pub mod metric;
pub mod preflight;
pub mod worker;

pub use worker::{
    SchedulerConn, SchedulerSecurity, WorkerConfig, WorkerError, WorkerSummary, connect, run,
};
