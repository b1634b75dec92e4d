//! Every clap flag group of the blocksconvert binaries, and how each becomes the plain
//! settings a library takes (`StorageFlags` → `storage::StorageOptions`, `IndexFlags` →
//! `index_scan::source::IndexConfig`, `BuildFlags` → `block_builder::BuildConfig` and the
//! chunk stores, …). Libraries never see clap; binaries flatten these groups.

pub mod build;
pub mod index;
pub mod log;
pub mod security;
pub mod store;
pub mod tenant;

use std::path::PathBuf;

pub use build::{BuildFlags, ChunkStoreFlags};
pub use index::IndexFlags;
pub use log::{LogFlags, LogFormat};
pub use security::{ClientSecurityFlags, ServerSecurityFlags, TokenFlags};
pub use store::StorageFlags;
pub use tenant::TenantFlags;

/// Why flags are unusable; the message names the flag.
#[derive(Debug, thiserror::Error)]
pub enum FlagsError {
    /// A flag's value is wrong.
    #[error("{flag}: {reason}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// Why.
        reason: String,
    },
    /// The schema file could not be loaded.
    #[error("--schema: {0}")]
    Schema(#[from] cortex_index::schema::SchemaError),
    /// The location a flag names could not be opened.
    #[error("{flag}: {source}")]
    Location {
        /// The flag.
        flag: &'static str,
        /// Why.
        source: storage::StorageError,
    },
}

/// The per-user directory for state that must survive restarts but is not the
/// operator's data (`$XDG_STATE_HOME/blocksconvert`, else `~/.local/state/blocksconvert`
/// on Linux; the platform's local data directory elsewhere). Defaults of `--work-dir`
/// live below it, so the same command finds the same state from any current directory.
pub fn state_dir() -> Result<PathBuf, FlagsError> {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|d| d.join("blocksconvert"))
        .ok_or_else(|| FlagsError::Invalid {
            flag: "--work-dir",
            reason:
                "no per-user state directory (HOME and XDG_STATE_HOME are unset); pass --work-dir"
                    .into(),
        })
}
