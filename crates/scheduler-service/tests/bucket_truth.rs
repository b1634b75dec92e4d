//! The scheduler takes its state from the buckets and trusts no plan key it cannot
//! turn into a tenant-day: `convert`'s drops the finished markers of a tenant with no
//! block in its output, finished-plus-error is repaired to finished, keys with an
//! invalid tenant or day are never handed out, and a restarted `convert` gets back the
//! leases of its dead predecessor and its quarantined plans without a failure counted.

use std::path::Path;
use std::time::Duration;

use cortex_index::tenant::TenantFilter;
use scheduler_service::registry::Status;
use scheduler_service::{QueueOrder, RegistryConfig, Scheduler, SchedulerConfig};
use storage::StoreLocation;

const ULID: &str = "01JE0000000000000000000000";

fn scheduler(plans: &Path, blocks: &Path, recheck_finished: bool) -> Scheduler {
    let cfg = SchedulerConfig {
        tool: "builder".into(),
        registry: RegistryConfig {
            order: QueueOrder::NewestFirst,
            fair: false,
            max_attempts: 3,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            lease_ttl: Duration::from_secs(600),
            legacy_lease_ttl: Duration::from_secs(600),
        },
        heartbeat: Duration::from_secs(5),
        scan_interval: Duration::from_secs(600),
        max_wait: Duration::from_millis(10),
        tenants: TenantFilter::new(&[], None).expect("filter"),
        days: Default::default(),
        recheck_finished,
    };
    Scheduler::new(
        cfg,
        StoreLocation::local(plans, false).expect("plans"),
        plans.display().to_string(),
        StoreLocation::local(blocks, false).expect("blocks"),
    )
}

/// Plans of the corpus (Cortex-written) in a fresh plans dir, and an empty blocks dir.
fn fixture() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    let plans = tmp.path().join("plans");
    blocksconvert_tests::copy_tree(
        &blocksconvert_tests::corpus_dir().join("cortex-output/plans"),
        &plans,
    );
    let blocks = tmp.path().join("blocks");
    std::fs::create_dir_all(&blocks).expect("blocks");
    (tmp, plans, blocks)
}

fn status(s: &Scheduler, base: &str) -> Status {
    s.with_registry(|r| r.get(base).map(|p| p.status.clone()))
        .unwrap_or_else(|| panic!("no plan {base}"))
}

/// A block meta for `tenant`'s day in the blocks dir (the scheduler reads only it).
fn put_block(blocks: &Path, tenant: &str, day: i64) {
    let dir = blocks.join(tenant).join(ULID);
    std::fs::create_dir_all(&dir).expect("block dir");
    let meta = serde_json::json!({
        "ulid": ULID, "minTime": day * 86_400_000, "maxTime": (day + 1) * 86_400_000,
        "stats": {}, "compaction": {"level": 1, "sources": [ULID]}, "version": 1,
        "thanos": {"labels": {"__org_id__": tenant}, "downsample": {"resolution": 0},
                   "source": "blocksconvert", "files": []}
    });
    std::fs::write(dir.join("meta.json"), meta.to_string()).expect("meta");
}

#[tokio::test]
async fn plan_keys_that_name_no_tenant_day_are_never_handed_out() {
    let (_tmp, plans, blocks) = fixture();
    let plan = plans.join("acme/18584.plan.snappy");
    for bad in [
        "acme/0.plan.snappy",
        "acme/99999999999.plan.snappy",
        "acme/3000000.plan.snappy",
        "bad tenant/18584.plan.snappy",
        &format!("{}/18584.plan.snappy", "x".repeat(151)),
    ] {
        let to = plans.join(bad);
        std::fs::create_dir_all(to.parent().expect("dir")).expect("dir");
        std::fs::copy(&plan, &to).expect("copy");
    }
    let s = scheduler(&plans, &blocks, true);
    s.sync_with_bucket().await.expect("scan");
    for base in [
        "acme/0",
        "acme/99999999999",
        "acme/3000000",
        "bad tenant/18584",
    ] {
        match status(&s, base) {
            Status::Invalid { reason } => assert!(reason.contains("not a tenant-day"), "{reason}"),
            other => panic!("{base}: {other:?}"),
        }
    }
    let leased = s
        .lease("w", 100, "builder", Duration::from_millis(10))
        .await
        .expect("lease");
    assert_eq!(leased.len(), 9, "only the corpus's nine tenant-days");
    assert!(
        leased
            .iter()
            .all(|l| ["42", "acme", "team-a.prod"].contains(&l.tenant.as_str())),
        "{:?}",
        leased.iter().map(|l| &l.plan).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn finished_markers_of_a_tenant_without_blocks_no_longer_count() {
    let (_tmp, plans, blocks) = fixture();
    let finished = |t: &str, d: i64| plans.join(format!("{t}/{d}.finished.{ULID}"));
    for (t, d) in [("acme", 18584), ("acme", 18585), ("42", 18584)] {
        std::fs::write(finished(t, d), ULID).expect("marker");
    }
    // acme has a block (18585's); it also has an error marker (a crash between writes).
    put_block(&blocks, "acme", 18585);
    std::fs::write(plans.join("acme/18585.error"), "old failure").expect("error");

    // A long-lived scheduler next to a live bucket trusts its markers.
    let service = scheduler(&plans, &blocks, false);
    service.sync_with_bucket().await.expect("scan");
    assert!(matches!(
        status(&service, "42/18584"),
        Status::Finished { .. }
    ));
    assert!(finished("42", 18584).exists());

    // `convert`'s (new or emptied output): tenant 42 has no block at all, so its
    // finished day is built again; acme has blocks, so a day whose block is gone (the
    // compactor or retention may have removed it) stays finished.
    let s = scheduler(&plans, &blocks, true);
    s.sync_with_bucket().await.expect("scan");
    assert!(matches!(status(&s, "42/18584"), Status::New));
    assert!(!finished("42", 18584).exists(), "stale marker removed");
    assert!(matches!(status(&s, "acme/18584"), Status::Finished { .. }));
    match status(&s, "acme/18585") {
        Status::Finished { id } => assert_eq!(id, ULID),
        other => panic!("{other:?}"),
    }
    assert!(!plans.join("acme/18585.error").exists());

    // A second listing keeps them so.
    s.sync_with_bucket().await.expect("scan");
    assert!(matches!(status(&s, "acme/18585"), Status::Finished { .. }));
    assert!(matches!(status(&s, "42/18584"), Status::New));
}

#[tokio::test]
async fn a_restarted_convert_reclaims_leases_and_retries_quarantined_plans() {
    let (_tmp, plans, blocks) = fixture();
    std::fs::write(
        plans.join("team-a.prod/18586.error"),
        "quarantined by an earlier run",
    )
    .expect("error");
    let first = scheduler(&plans, &blocks, true);
    first.sync_with_bucket().await.expect("scan");
    let leased = first
        .lease("convert", 3, "builder", Duration::from_millis(10))
        .await
        .expect("lease");
    assert_eq!(leased.len(), 3);
    drop(first); // The process dies with its leases open.

    let second = scheduler(&plans, &blocks, true);
    second.sync_with_bucket().await.expect("scan");
    for l in &leased {
        let base = l.plan.trim_end_matches(".plan.snappy");
        assert!(
            matches!(status(&second, base), Status::Leased(_)),
            "{base} is held by the dead run"
        );
    }
    // Only the dead worker's leases: a builder of someone else's keeps its own.
    assert!(second.reclaim_leases("builder-7", "test").await.is_empty());
    let reclaimed = second.reclaim_leases("convert", "test").await;
    assert_eq!(reclaimed.len(), 3);
    let retried = second.retry_all_failed().await.expect("retry");
    assert_eq!(retried, vec!["team-a.prod/18586".to_owned()]);
    for base in reclaimed.iter().chain(&retried) {
        assert!(matches!(status(&second, base), Status::New), "{base}");
        let failures = second.with_registry(|r| r.get(base).map(|p| p.counted_failures()));
        assert_eq!(failures, Some(0), "{base}: no failure counted");
    }
    // The bucket agrees: a third scheduler sees them all queued.
    let third = scheduler(&plans, &blocks, true);
    third.sync_with_bucket().await.expect("scan");
    for base in reclaimed.iter().chain(&retried) {
        assert!(matches!(status(&third, base), Status::New), "{base}");
    }
    let all = third
        .lease("convert", 100, "builder", Duration::from_millis(10))
        .await
        .expect("lease");
    assert_eq!(all.len(), 9);
}

#[tokio::test]
async fn bulk_retry_takes_back_one_tenants_quarantined_plans_or_all() {
    let (_tmp, plans, blocks) = fixture();
    let quarantined = ["42/18585", "acme/18584", "acme/18586", "team-a.prod/18584"];
    for base in quarantined {
        std::fs::write(plans.join(format!("{base}.error")), "boom").expect("error");
    }
    let s = scheduler(&plans, &blocks, false);
    s.sync_with_bucket().await.expect("scan");
    for base in quarantined {
        assert!(matches!(status(&s, base), Status::Error { .. }), "{base}");
    }
    // One tenant's: acme's two, nobody else's (not even a tenant whose name starts
    // like it).
    let acme = s.retry_failed(Some("acme")).await.expect("retry");
    assert_eq!(acme, ["acme/18584", "acme/18586"]);
    assert!(matches!(status(&s, "acme/18584"), Status::New));
    assert!(matches!(status(&s, "42/18585"), Status::Error { .. }));
    assert!(s.retry_failed(Some("acm")).await.expect("retry").is_empty());
    // Then every quarantined plan left.
    let rest = s.retry_failed(None).await.expect("retry");
    assert_eq!(rest, ["42/18585", "team-a.prod/18584"]);
    for base in quarantined {
        assert!(matches!(status(&s, base), Status::New), "{base}");
    }
    assert!(s.retry_failed(None).await.expect("retry").is_empty());
    // The status page counts them as work left again.
    let snap = s.snapshot();
    assert_eq!((snap.progress.total, snap.progress.remaining), (9, 9));
    assert_eq!(snap.progress.quarantined, 0);
}
