//! Operator actions on a plans location, with or without a running scheduler: retry a
//! quarantined tenant-day, retry every quarantined one, or rebuild a finished one
//! (its block deleted from the blocks bucket). They change markers exactly as the
//! scheduler's own `/plans` actions do, so a running scheduler picks the change up at
//! its next listing and nobody edits marker files by hand.

use cortex_index::tenant::with_date;
use storage::{StorageError, StoreLocation};

use crate::markers::{self, Marker};

/// An action was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No plan file for the tenant-day.
    #[error("no plan {0} in the plans location")]
    NoPlan(String),
    /// The plan is not in a state the action applies to.
    #[error("plan {base} is {state}; {action}")]
    Refused {
        /// The plan.
        base: String,
        /// Its state.
        state: &'static str,
        /// What applies instead.
        action: &'static str,
    },
    /// The bucket failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The markers of one plan, as listed.
#[derive(Debug, Default)]
struct PlanFiles {
    plan: bool,
    error: Option<String>,
    finished: Vec<(String, String)>,
    in_progress: bool,
    last_attempt: u32,
}

async fn files(plans: &StoreLocation, base: &str) -> Result<PlanFiles, StorageError> {
    let dir = base.rsplit_once('/').map_or("", |(d, _)| d);
    let mut f = PlanFiles::default();
    for (key, _) in plans.list(dir).await? {
        match Marker::classify(&key) {
            Marker::Plan { base: b } if b == base => f.plan = true,
            Marker::Error { base: b } if b == base => f.error = Some(key),
            Marker::Finished { base: b, id } if b == base => f.finished.push((key, id)),
            Marker::Progress { base: b, .. } if b == base => f.in_progress = true,
            Marker::Attempt { base: b, n }
            | Marker::Failed { base: b, n }
            | Marker::Retried { base: b, n }
                if b == base =>
            {
                f.last_attempt = f.last_attempt.max(n);
            }
            _ => {}
        }
    }
    Ok(f)
}

/// Writes `<base>.retried.<last_attempt>` (failures up to it stop counting) and
/// removes `<base>.error`: the plan is queued again.
pub async fn mark_retried(
    plans: &StoreLocation,
    base: &str,
    last_attempt: u32,
) -> Result<(), StorageError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    plans
        .put(
            &markers::retried(base, last_attempt),
            now.to_string().into_bytes(),
        )
        .await?;
    plans.delete(&markers::error(base)).await
}

/// Retries one quarantined tenant-day (`<tenant>/<day index>`).
pub async fn retry(plans: &StoreLocation, base: &str) -> Result<String, AdminError> {
    let f = files(plans, base).await?;
    if !f.plan {
        return Err(AdminError::NoPlan(base.to_owned()));
    }
    if !f.finished.is_empty() {
        return Err(AdminError::Refused {
            base: base.to_owned(),
            state: "finished",
            action: "rebuild it instead",
        });
    }
    if f.error.is_none() {
        return Err(AdminError::Refused {
            base: base.to_owned(),
            state: "not quarantined",
            action: "nothing to retry",
        });
    }
    mark_retried(plans, base, f.last_attempt).await?;
    Ok(format!("plan {} queued again", with_date(base)))
}

/// Every quarantined tenant-day of the plans location (an `.error` marker and no
/// finished marker).
pub async fn quarantined(plans: &StoreLocation) -> Result<Vec<String>, StorageError> {
    let mut errors = std::collections::BTreeSet::new();
    let mut finished = std::collections::BTreeSet::new();
    for (key, _) in plans.list("").await? {
        match Marker::classify(&key) {
            Marker::Error { base } => {
                errors.insert(base);
            }
            Marker::Finished { base, .. } => {
                finished.insert(base);
            }
            _ => {}
        }
    }
    Ok(errors.difference(&finished).cloned().collect())
}

/// Rebuilds a finished tenant-day: deletes its block from `blocks` (meta.json first,
/// so a half-deleted block is never mistaken for a whole one) and its finished
/// marker, and queues the plan with a fresh set of attempts.
pub async fn rebuild(
    plans: &StoreLocation,
    blocks: &StoreLocation,
    base: &str,
) -> Result<String, AdminError> {
    let f = files(plans, base).await?;
    if !f.plan {
        return Err(AdminError::NoPlan(base.to_owned()));
    }
    if f.in_progress && f.finished.is_empty() {
        return Err(AdminError::Refused {
            base: base.to_owned(),
            state: "being built",
            action: "wait for it to finish",
        });
    }
    let tenant = base.rsplit_once('/').map_or("", |(t, _)| t);
    let mut removed = Vec::new();
    for (key, id) in &f.finished {
        if crate::block_check::parse_ulid(id).is_ok() {
            let block = format!("{tenant}/{id}");
            blocks.delete(&format!("{block}/meta.json")).await?;
            for (k, _) in blocks.list(&block).await? {
                blocks.delete(&k).await?;
            }
            blocks.prune_empty_dirs(&block);
            removed.push(blocks.describe(&block));
        }
        plans.delete(key).await?;
    }
    mark_retried(plans, base, f.last_attempt).await?;
    Ok(if removed.is_empty() {
        format!("plan {} queued again", with_date(base))
    } else {
        format!(
            "plan {} queued again; removed block {}",
            with_date(base),
            removed.join(", ")
        )
    })
}
