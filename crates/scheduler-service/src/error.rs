//! The scheduler's errors and the one place they are mapped to gRPC and HTTP codes.

use storage::StorageError;

use crate::registry::LeaseError;

/// Why a scheduler request failed.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The first listing of the bucket has not finished (after a start or restart).
    #[error("the scheduler is still reading the bucket; retry shortly")]
    NotReady,
    /// The request came from another tool (W15: builders and cleaners never share a queue).
    #[error("this scheduler serves {serves} workers, not {asked:?}")]
    WrongTool {
        /// Tool that asked.
        asked: String,
        /// Tool served.
        serves: String,
    },
    /// The caller does not hold the lease it reports on.
    #[error(transparent)]
    Lease(#[from] LeaseError),
    /// The request is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A completion named a block that is missing or does not match its plan.
    #[error("completion refused: {0}")]
    BlockRefused(String),
    /// A marker could not be read or written.
    #[error("{what}: {source}")]
    Storage {
        /// What was being done.
        what: String,
        /// The store's error.
        source: StorageError,
    },
}

impl SchedulerError {
    pub(crate) fn storage(what: impl Into<String>) -> impl FnOnce(StorageError) -> Self {
        let what = what.into();
        move |source| Self::Storage { what, source }
    }

    /// gRPC code. Workers retry Unavailable; FailedPrecondition means "the lease is
    /// gone: drop that plan"; PermissionDenied means the caller did not prove it holds
    /// the lease; InvalidArgument refuses the request (a completion's block) while the
    /// lease stays the caller's.
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            Self::NotReady | Self::Storage { .. } => tonic::Code::Unavailable,
            Self::Lease(LeaseError::NotHolder { .. }) => tonic::Code::PermissionDenied,
            Self::WrongTool { .. } | Self::Lease(_) => tonic::Code::FailedPrecondition,
            Self::BadRequest(_) | Self::BlockRefused(_) => tonic::Code::InvalidArgument,
        }
    }

    /// HTTP status for the admin endpoints.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::NotReady | Self::Storage { .. } => 503,
            Self::Lease(LeaseError::NotHolder { .. }) => 403,
            Self::WrongTool { .. } | Self::Lease(_) => 409,
            Self::BadRequest(_) | Self::BlockRefused(_) => 400,
        }
    }
}

impl From<SchedulerError> for tonic::Status {
    fn from(e: SchedulerError) -> Self {
        tonic::Status::new(e.grpc_code(), e.to_string())
    }
}
