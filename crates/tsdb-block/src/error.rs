//! Errors of the block reader and writer.

use std::path::PathBuf;

/// A block could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// File-system failure on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file of the block is malformed.
    #[error("{file}: corrupt at offset {offset}: {reason}")]
    Corrupt {
        /// Which file (`index`, `chunks/000001`, `meta.json`).
        file: String,
        /// Byte offset of the problem.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The caller broke an ordering or size rule of the format.
    #[error("invalid block input: {0}")]
    Invalid(String),
}

impl BlockError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    pub(crate) fn corrupt(file: &str, offset: u64, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            file: file.to_owned(),
            offset,
            reason: reason.into(),
        }
    }
}

impl From<external_sort::RunError> for BlockError {
    fn from(e: external_sort::RunError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}
