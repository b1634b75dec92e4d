//! Blocks already in the blocks bucket for a tenant-day.
//!
//! The blocks bucket is the truth about what is converted: before building a plan (and
//! again before uploading), the builder looks for a block this tool (or Cortex's
//! `blocksconvert`) already wrote for the same tenant and UTC day — by another work
//! dir, another plans location, a second process — and keeps that block instead of
//! adding a second one. Candidates are `<tenant>/<ULID>/meta.json` with
//! `thanos.source` = `blocksconvert`, the tenant's `__org_id__` and a time range inside
//! the day; blocks from other sources (ingesters, compactor) never match, so a day
//! that Cortex's blocks storage also ingested is still converted.
//!
//! Metas of blocks that belong to other days are cached per process (one GET per
//! block, not per plan); a matching block's meta is always read again, so a block
//! deleted meanwhile is never kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use storage::{StorageError, StoreLocation};
use tsdb_block::BlockMeta;

/// Metas read at once.
const CONCURRENT_READS: usize = 16;

/// What a block's meta said, cached by `<tenant>/<ULID>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// A converted block of this tenant covering `[min, max]` ms.
    Converted { min: i64, max: i64 },
    /// Not a converted block of this tenant (other source, unreadable meta).
    Other,
}

/// Per-process cache of block metas (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct ExistingBlocks {
    seen: Arc<Mutex<HashMap<String, Seen>>>,
}

impl ExistingBlocks {
    fn cached(&self, key: &str) -> Option<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
    }

    fn remember(&self, key: String, seen: Seen) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, seen);
    }

    /// The converted block of `tenant` for day `[day_start, day_end)` ms already in
    /// `blocks`, ignoring the ULIDs in `except` (this plan's own earlier attempts);
    /// the oldest if there are several.
    pub async fn find(
        &self,
        blocks: &StoreLocation,
        tenant: &str,
        (day_start, day_end): (i64, i64),
        except: &[String],
    ) -> Result<Option<BlockMeta>, StorageError> {
        let mut ulids: Vec<String> = blocks
            .list_dirs(tenant)
            .await?
            .into_iter()
            .filter(|d| ulid::Ulid::from_string(d).is_ok_and(|u| u.to_string() == *d))
            .filter(|d| !except.contains(d))
            .collect();
        ulids.sort();
        let inside = |seen: Seen| matches!(seen, Seen::Converted { min, max } if min >= day_start && max <= day_end);
        // Blocks of other days are skipped from the cache; a match is read again, so a
        // block deleted since is not kept.
        ulids.retain(|u| self.cached(&format!("{tenant}/{u}")).is_none_or(inside));
        let metas: Vec<(String, Result<Option<BlockMeta>, StorageError>)> = futures::stream::iter(
            ulids
                .into_iter()
                .map(|ulid| read_meta(blocks, tenant, ulid)),
        )
        .buffered(CONCURRENT_READS)
        .collect()
        .await;
        let mut found = None;
        for (ulid, meta) in metas {
            let Some(meta) = meta? else { continue };
            let seen = if meta.thanos.source == tsdb_block::meta::SOURCE
                && meta.tenant() == Some(tenant)
                && meta.ulid == ulid
            {
                Seen::Converted {
                    min: meta.min_time,
                    max: meta.max_time,
                }
            } else {
                Seen::Other
            };
            self.remember(format!("{tenant}/{ulid}"), seen);
            if found.is_none() && inside(seen) {
                found = Some(meta);
            }
        }
        Ok(found)
    }
}

/// The meta of `<tenant>/<ulid>`; `None` when it has none (being uploaded or
/// half-deleted) or it does not parse.
async fn read_meta(
    blocks: &StoreLocation,
    tenant: &str,
    ulid: String,
) -> (String, Result<Option<BlockMeta>, StorageError>) {
    let meta = match blocks.get(&format!("{tenant}/{ulid}/meta.json")).await {
        Ok(bytes) => Ok(serde_json::from_slice::<BlockMeta>(&bytes).ok()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    };
    (ulid, meta)
}
