//! The blocksconvert scheduler as a library: plan registry and queue, the lease
//! protocol over bucket markers, the gRPC service and the HTTP status/admin server.
//! `blocksconvert-scheduler` only wires flags, listeners and signals to it.

pub mod admin;
pub mod block_check;
pub mod error;
pub mod grpc;
pub mod http;
pub mod lease_token;
pub mod markers;
pub mod metrics;
pub mod queue;
pub mod registry;
pub mod scheduler;
pub mod serve;
pub mod status;

pub use error::SchedulerError;
pub use queue::QueueOrder;
pub use registry::{FailureRecord, RegistryConfig};
pub use scheduler::{Scheduler, SchedulerConfig};
