//! Upload of a finished local block to `<user>/<ULID>/`, `meta.json` last, and the
//! W7 guard: the chosen ULID is recorded in `<base>.block.<ULID>` next to the plan's
//! markers *before* any block file is uploaded, so a retry after a crash finds and
//! removes what the earlier attempt uploaded (complete or partial) and a tenant-day
//! never ends up with two blocks.

use std::path::Path;
use std::sync::atomic::Ordering;

use backon::{ExponentialBuilder, Retryable};
use storage::{StorageError, StoreLocation};

use crate::pipeline::LocalBlock;
use crate::{BuildError, BuildProgress};

fn retry_policy() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(200))
        .with_max_delay(std::time::Duration::from_secs(5))
        .with_max_times(4)
        .with_jitter()
}

/// ULIDs recorded by earlier attempts of the plan `base`.
pub(crate) async fn recorded_blocks(
    markers: &StoreLocation,
    base: &str,
) -> Result<Vec<String>, StorageError> {
    let dir = base.rsplit_once('/').map_or("", |(d, _)| d);
    let prefix = format!("{base}.block.");
    let mut out: Vec<String> = markers
        .list(dir)
        .await?
        .into_iter()
        .filter_map(|(k, _)| {
            let id = k.strip_prefix(&prefix)?;
            (!id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric())).then(|| id.to_owned())
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Deletes every block an earlier attempt recorded (meta.json first, so a half-deleted
/// block is "partial", never a complete-looking subset), then its marker.
pub(crate) async fn remove_earlier_blocks(
    markers: &StoreLocation,
    base: &str,
    blocks: &StoreLocation,
    user: &str,
) -> Result<Vec<String>, StorageError> {
    let earlier = recorded_blocks(markers, base).await?;
    for ulid in &earlier {
        tracing::warn!(plan = base, block = %ulid, "removing the block of an earlier attempt of this plan (W7)");
        blocks.delete(&format!("{user}/{ulid}/meta.json")).await?;
        for (key, _) in blocks.list(&format!("{user}/{ulid}")).await? {
            blocks.delete(&key).await?;
        }
        blocks.prune_empty_dirs(&format!("{user}/{ulid}"));
        markers.delete(&format!("{base}.block.{ulid}")).await?;
    }
    Ok(earlier)
}

/// Deletes one block this process uploaded (meta.json first) and its record: used when
/// the worker learns it no longer holds the plan's lease, so another attempt's block
/// is the only one left.
pub(crate) async fn discard_block(
    markers: &StoreLocation,
    base: &str,
    blocks: &StoreLocation,
    user: &str,
    ulid: &str,
) -> Result<(), StorageError> {
    blocks.delete(&format!("{user}/{ulid}/meta.json")).await?;
    for (key, _) in blocks.list(&format!("{user}/{ulid}")).await? {
        blocks.delete(&key).await?;
    }
    blocks.prune_empty_dirs(&format!("{user}/{ulid}"));
    markers.delete(&format!("{base}.block.{ulid}")).await
}

/// Records the ULID, uploads the block files (index and chunks, then `meta.json`) and
/// returns the bytes uploaded.
pub(crate) async fn upload_block(
    block: &LocalBlock,
    user: &str,
    blocks: &StoreLocation,
    markers: &StoreLocation,
    base: &str,
    progress: &BuildProgress,
) -> Result<u64, BuildError> {
    let ulid = &block.meta.ulid;
    markers
        .put(&format!("{base}.block.{ulid}"), ulid.clone().into_bytes())
        .await?;
    let mut files: Vec<String> = block
        .meta
        .thanos
        .files
        .iter()
        .map(|f| f.rel_path.clone())
        .filter(|f| f != "meta.json")
        .collect();
    files.push("meta.json".into());
    let mut total = 0;
    for rel in files {
        if progress.is_cancelled() {
            return Err(BuildError::Cancelled);
        }
        let local = block.dir.join(&rel);
        let key = format!("{user}/{ulid}/{rel}");
        let n = upload_with_retry(blocks, &key, &local).await?;
        progress.bytes_uploaded.fetch_add(n, Ordering::Relaxed);
        total += n;
    }
    Ok(total)
}

async fn upload_with_retry(
    blocks: &StoreLocation,
    key: &str,
    local: &Path,
) -> Result<u64, StorageError> {
    // A local directory's errors (full disk, permissions) are not transient: the
    // attempt fails at once and the scheduler's retry policy decides.
    let local_output = blocks.local_root().is_some();
    (|| blocks.upload_file(key, local))
        .retry(retry_policy())
        .when(|e| {
            !local_output && !matches!(e, StorageError::BadLocation { .. }) && !e.is_access_denied()
        })
        .notify(|e, after| tracing::warn!(key, error = %e, retry_in = ?after, "upload failed, retrying"))
        .await
}
