//! What a completion must show before its plan is marked finished: the block it names
//! exists in the blocks bucket at `<tenant>/<ULID>/meta.json`, is that ULID, covers
//! only the plan's UTC day and belongs to the plan's tenant (`__org_id__`). A caller
//! that invents a ULID, or names a block of another tenant or day, is refused, so no
//! tenant-day is ever recorded finished without its block.

use storage::StoreLocation;
use tsdb_block::BlockMeta;

use crate::error::SchedulerError;

/// Milliseconds in a UTC day.
const DAY_MS: i64 = 86_400_000;

/// The canonical (upper-case Crockford base32) form of a block ULID, or a refusal.
pub fn parse_ulid(text: &str) -> Result<String, SchedulerError> {
    match ulid::Ulid::from_string(text) {
        // Object keys are case-sensitive: only the canonical spelling names the block.
        Ok(u) if u.to_string() == text => Ok(text.to_owned()),
        _ => Err(SchedulerError::BadRequest(format!(
            "block id {:?} is not a ULID",
            text.chars().take(64).collect::<String>()
        ))),
    }
}

/// Checks the block `ulid` of `tenant` for day index `day` in `blocks`.
pub async fn check(
    blocks: &StoreLocation,
    tenant: &str,
    day: i32,
    ulid: &str,
) -> Result<(), SchedulerError> {
    let key = format!("{tenant}/{ulid}/meta.json");
    let where_ = blocks.describe(&key);
    let bytes = match blocks.get(&key).await {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            return Err(SchedulerError::BlockRefused(format!(
                "block {ulid} has no {where_}"
            )));
        }
        Err(e) => return Err(SchedulerError::storage(format!("reading {where_}"))(e)),
    };
    let meta: BlockMeta = serde_json::from_slice(&bytes)
        .map_err(|e| SchedulerError::BlockRefused(format!("{where_} is not a block meta: {e}")))?;
    let day_start = i64::from(day) * DAY_MS;
    let day_end = day_start + DAY_MS;
    let refuse = |why: String| Err(SchedulerError::BlockRefused(format!("{where_}: {why}")));
    if meta.ulid != ulid {
        return refuse(format!("it names block {:?}", meta.ulid));
    }
    if meta.min_time < day_start || meta.max_time > day_end || meta.min_time >= meta.max_time {
        return refuse(format!(
            "it covers [{}, {}) ms, not within the plan's day [{day_start}, {day_end})",
            meta.min_time, meta.max_time
        ));
    }
    if meta.tenant() != Some(tenant) {
        return refuse(format!(
            "its {} label is {:?}, not the plan's tenant",
            tsdb_block::meta::TENANT_LABEL,
            meta.tenant()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_ulids_pass() {
        assert!(parse_ulid("01JD5ZX1Q6R3C6WVM6X2M4B3QK").is_ok());
        assert!(parse_ulid("01jd5zx1q6r3c6wvm6x2m4b3qk").is_err());
        assert!(parse_ulid("01JD5ZX1Q6R3C6WVM6X2M4B3Q").is_err());
        assert!(parse_ulid("../../etc/passwd").is_err());
        assert!(parse_ulid("").is_err());
    }

    #[tokio::test]
    async fn refuses_missing_foreign_and_other_day_blocks() {
        let dir = tempfile::tempdir().expect("tmp");
        let blocks = StoreLocation::local(dir.path(), false).expect("blocks");
        let day = 18584;
        let start = i64::from(day) * DAY_MS;
        let put = |tenant: &str, meta: &BlockMeta| {
            let d = dir.path().join(tenant).join(&meta.ulid);
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(d.join("meta.json"), meta.to_go_json()).expect("write");
        };
        let good = BlockMeta::new("01JD5ZX1Q6R3C6WVM6X2M4B3QK", "acme", start, start + DAY_MS);
        put("acme", &good);
        check(&blocks, "acme", day, &good.ulid)
            .await
            .expect("good block");

        let missing = check(&blocks, "acme", day, "01JD5ZX1Q6R3C6WVM6X2M4B3QM").await;
        assert!(
            matches!(missing, Err(SchedulerError::BlockRefused(_))),
            "{missing:?}"
        );
        let other_day = check(&blocks, "acme", day + 1, &good.ulid).await;
        assert!(
            matches!(other_day, Err(SchedulerError::BlockRefused(_))),
            "{other_day:?}"
        );

        let foreign = BlockMeta::new("01JD5ZX1Q6R3C6WVM6X2M4B3QN", "42", start, start + DAY_MS);
        put("acme", &foreign);
        let r = check(&blocks, "acme", day, &foreign.ulid).await;
        assert!(matches!(r, Err(SchedulerError::BlockRefused(_))), "{r:?}");

        let renamed = BlockMeta::new("01JD5ZX1Q6R3C6WVM6X2M4B3QP", "acme", start, start + DAY_MS);
        let d = dir.path().join("acme/01JD5ZX1Q6R3C6WVM6X2M4B3QR");
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("meta.json"), renamed.to_go_json()).expect("write");
        let r = check(&blocks, "acme", day, "01JD5ZX1Q6R3C6WVM6X2M4B3QR").await;
        assert!(matches!(r, Err(SchedulerError::BlockRefused(_))), "{r:?}");
    }
}
