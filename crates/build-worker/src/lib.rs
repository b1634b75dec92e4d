//! The builder service as a library: shared build flags and the lease loop that
//! `blocksconvert-builder` runs (see [`worker`]), and the [`preflight`] checks run
//! before it.

pub mod preflight;
pub mod worker;

pub use worker::{
    SchedulerConn, SchedulerSecurity, WorkerConfig, WorkerError, WorkerSummary, connect, run,
};
