//! Checks before long work: every location a run writes is writable and every chunk
//! store readable with the credentials at hand, so a wrong URL or missing credentials
//! fail a process in seconds, naming the flag and the cause, instead of failing (and
//! quarantining) every plan one after another.

use std::time::Duration;

use block_builder::{ChunkStore, ChunkStores};
use storage::{StorageError, StoreLocation};

/// How long one probe may take: enough for a slow endpoint, far below the minutes
/// that retries against a wrong URL or missing credentials would take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A location failed its probe.
#[derive(Debug, thiserror::Error)]
#[error("preflight: {what} {location} is not {need}: {source}")]
pub struct PreflightError {
    /// The flag naming the location.
    pub what: &'static str,
    /// The location.
    pub location: String,
    /// "writable" or "readable".
    pub need: &'static str,
    /// The store's answer.
    pub source: StorageError,
}

/// Probes `location` (named by the flag `what`) for writing.
pub async fn writable(what: &'static str, location: &StoreLocation) -> Result<(), PreflightError> {
    location
        .probe_writable(DEADLINE)
        .await
        .map_err(|source| PreflightError {
            what,
            location: location.to_string(),
            need: "writable",
            source,
        })
}

/// Probes the blocks destination for writing and every chunk store for reading.
pub async fn builder(stores: &ChunkStores, blocks: &StoreLocation) -> Result<(), PreflightError> {
    writable("--output", blocks).await?;
    for store in stores.stores() {
        match store {
            ChunkStore::Objects(location) => {
                location
                    .probe_readable(DEADLINE)
                    .await
                    .map_err(|source| PreflightError {
                        what: "chunk store",
                        location: location.to_string(),
                        need: "readable",
                        source,
                    })?
            }
            ChunkStore::Bigtable(client) => {
                tokio::time::timeout(DEADLINE, client.list_tables())
                    .await
                    .map_err(|_| PreflightError {
                        what: "chunk store",
                        location: client.url(),
                        need: "readable",
                        source: storage::StorageError::BadLocation {
                            location: client.url(),
                            reason: format!("no answer within {DEADLINE:?}"),
                        },
                    })?
                    .map_err(|e| PreflightError {
                        what: "chunk store",
                        location: client.url(),
                        need: "readable",
                        source: storage::StorageError::BadLocation {
                            location: client.url(),
                            reason: e.to_string(),
                        },
                    })?;
            }
        }
    }
    Ok(())
}
