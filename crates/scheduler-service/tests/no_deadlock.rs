//! Regression tests for the scheduler's lock discipline: a completion, failure or
//! release that the registry refuses must be answered, never hang the process (the
//! refusal path once re-locked the registry while the first guard was still alive).
//! Each call runs on its own runtime thread with a deadline checked from outside, so
//! a hang fails the test instead of freezing it.

use std::sync::Arc;
use std::time::Duration;

use cortex_index::tenant::TenantFilter;
use scheduler_service::scheduler::{CompletionStats, GrantedLease, LeaseRef};
use scheduler_service::{QueueOrder, RegistryConfig, Scheduler, SchedulerConfig};
use storage::StoreLocation;

fn corpus_plans() -> std::path::PathBuf {
    blocksconvert_tests::corpus_dir().join("cortex-output/plans")
}

struct Fixture {
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    scheduler: Arc<Scheduler>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let plans_dir = dir.path().join("plans");
        blocksconvert_tests::copy_tree(&corpus_plans(), &plans_dir);
        let blocks_dir = dir.path().join("blocks");
        std::fs::create_dir_all(&blocks_dir).expect("mkdir");
        let plans = StoreLocation::local(&plans_dir, false).expect("plans");
        let cfg = SchedulerConfig {
            tool: "builder".into(),
            registry: RegistryConfig {
                order: QueueOrder::NewestFirst,
                fair: false,
                max_attempts: 3,
                backoff_min: Duration::from_millis(100),
                backoff_max: Duration::from_secs(1),
                lease_ttl: Duration::from_secs(60),
                legacy_lease_ttl: Duration::from_secs(60),
            },
            heartbeat: Duration::from_secs(5),
            scan_interval: Duration::from_secs(60),
            max_wait: Duration::from_secs(1),
            tenants: TenantFilter::new(&[], None).expect("filter"),
            days: Default::default(),
            recheck_finished: false,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let blocks = StoreLocation::local(&blocks_dir, false).expect("blocks");
        let scheduler = Arc::new(Scheduler::new(
            cfg,
            plans,
            plans_dir.display().to_string(),
            blocks,
        ));
        rt.block_on(scheduler.sync_with_bucket()).expect("scan");
        Self { dir, rt, scheduler }
    }

    /// Runs `f` against the scheduler; fails the test (without waiting for a hung
    /// runtime to shut down) when it does not answer within the deadline.
    fn answered<T: Send + 'static, F>(self, what: &str, f: F) -> (Self, T)
    where
        F: FnOnce(Arc<Scheduler>) -> std::pin::Pin<Box<dyn Future<Output = T> + Send>>,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let fut = f(Arc::clone(&self.scheduler));
        self.rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(v) => (self, v),
            Err(_) => {
                // A deadlocked worker thread would block the runtime's shutdown.
                std::mem::forget(self);
                panic!("{what}: the scheduler did not answer within 20 s (deadlock)");
            }
        }
    }

    /// Writes a block meta.json for the lease's tenant and day, as a builder would.
    fn upload_block(&self, lease: &GrantedLease, ulid: &str) {
        let start = i64::from(lease.day) * 86_400_000;
        let meta = tsdb_block::BlockMeta::new(ulid, &lease.tenant, start, start + 86_400_000);
        let dir = self
            .dir
            .path()
            .join("blocks")
            .join(&lease.tenant)
            .join(ulid);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("meta.json"), meta.to_go_json()).expect("meta");
    }
}

/// Completes `lease` as `worker` presenting `token`; the error as text.
async fn complete_as(
    s: &Scheduler,
    worker: &str,
    lease: &GrantedLease,
    token: &str,
) -> Result<(), String> {
    let claim = LeaseRef {
        worker,
        plan: &lease.plan,
        attempt: lease.attempt,
        token,
    };
    s.complete(&claim, ULID, &CompletionStats::default())
        .await
        .map_err(|e| e.to_string())
}

const ULID: &str = "01JD5ZX1Q6R3C6WVM6X2M4B3QK";

#[test]
fn complete_from_a_worker_that_does_not_hold_the_lease_is_answered() {
    let fx = Fixture::new();
    let (fx, leases) = fx.answered("lease", |s| {
        Box::pin(async move { s.lease("holder", 1, "builder", Duration::ZERO).await })
    });
    let lease = leases.expect("lease").remove(0);
    fx.upload_block(&lease, ULID);
    let (fx, r) = fx.answered("complete by a non-holder", move |s| {
        Box::pin(async move { complete_as(&s, "intruder", &lease, "guessed").await })
    });
    assert!(
        r.is_err(),
        "a non-holder's completion must be refused: {r:?}"
    );
    // The scheduler still serves.
    let (_fx, r) = fx.answered("lease after the refusal", |s| {
        Box::pin(async move { s.lease("other", 1, "builder", Duration::ZERO).await })
    });
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn complete_after_an_operator_cancel_is_answered() {
    let fx = Fixture::new();
    let (fx, leases) = fx.answered("lease", |s| {
        Box::pin(async move { s.lease("holder", 1, "builder", Duration::ZERO).await })
    });
    let lease = leases.expect("lease").remove(0);
    fx.upload_block(&lease, ULID);
    let base = lease.plan.trim_end_matches(".plan.snappy").to_owned();
    let (fx, r) = fx.answered("cancel", move |s| {
        Box::pin(async move { s.cancel(&base).await.map_err(|e| e.to_string()) })
    });
    r.expect("cancel a running plan");
    let (_fx, r) = fx.answered("complete after cancel", move |s| {
        Box::pin(async move { complete_as(&s, "holder", &lease, lease.token.expose()).await })
    });
    assert!(
        r.is_err(),
        "completion of a cancelled lease must be refused: {r:?}"
    );
}

#[test]
fn a_retried_completion_is_answered() {
    let fx = Fixture::new();
    let (fx, leases) = fx.answered("lease", |s| {
        Box::pin(async move { s.lease("holder", 1, "builder", Duration::ZERO).await })
    });
    let lease = leases.expect("lease").remove(0);
    fx.upload_block(&lease, ULID);
    let first = lease.clone();
    let (fx, r) = fx.answered("first completion", move |s| {
        Box::pin(async move { complete_as(&s, "holder", &first, first.token.expose()).await })
    });
    r.expect("first completion");
    // The answer to the first was lost: the worker sends the same completion again.
    let (_fx, r) = fx.answered("repeated completion", move |s| {
        Box::pin(async move { complete_as(&s, "holder", &lease, lease.token.expose()).await })
    });
    r.expect("a repeated completion of the same block is accepted");
}

#[test]
fn re_entering_the_registry_fails_loudly_instead_of_hanging() {
    let fx = Fixture::new();
    let s = Arc::clone(&fx.scheduler);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            s.with_registry(|_| s.with_registry(|r| r.generation()))
        }));
        let _ = tx.send(r.is_err());
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(panicked) => assert!(panicked, "a nested registry access must be refused"),
        Err(_) => {
            std::mem::forget(fx);
            panic!("a nested registry access deadlocked");
        }
    }
    // The registry is usable afterwards.
    assert!(fx.scheduler.with_registry(|r| r.plans().count()) > 0);
}
