//! Fault tests of the builder: flaky and slow chunk stores (retried, same block),
//! corrupt chunks (reported, policy honoured), truncated plans (no block), forced disk
//! spill and thread counts (byte-identical block), a store that never answers (the plan
//! fails retriably, nothing uploaded), one retry layer for a failing chunk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use block_builder::{
    BadChunkKind, BuildConfig, BuildError, BuildOutcome, BuildProgress, ChunkStores, Destinations,
    FetchPolicy, PlanRef, PlanReport, PlanStatus, build_plan,
};
use blocksconvert_tests::proxy::{Fault, FaultProxy, Rule};
use blocksconvert_tests::{
    FaultyStore, MotoServer, corpus_dir, expected, moto_options, read_block, s3_flags, upload_tree,
    workspace_bin,
};
use storage::StoreLocation;

const TENANT: &str = "team-a.prod";
const DAY: i64 = 18585;

struct Run {
    outcome: Result<BuildOutcome, BuildError>,
    blocks: tempfile::TempDir,
    markers: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Run {
    fn block_dir(&self) -> PathBuf {
        let o = self.outcome.as_ref().expect("build succeeded");
        self.blocks.path().join(TENANT).join(&o.ulid)
    }

    fn report(&self) -> PlanReport {
        let p = self
            .markers
            .path()
            .join(format!("{TENANT}/{DAY}.report.json"));
        serde_json::from_slice(&std::fs::read(&p).expect("report")).expect("report json")
    }

    fn uploaded_blocks(&self) -> usize {
        std::fs::read_dir(self.blocks.path().join(TENANT)).map_or(0, |d| d.count())
    }
}

fn corpus_plan() -> PlanRef {
    PlanRef {
        location: StoreLocation::local(&corpus_dir().join("cortex-output/plans"), false)
            .expect("plans"),
        key: format!("{TENANT}/{DAY}.plan.snappy"),
    }
}

async fn build(plan: &PlanRef, chunks: StoreLocation, cfg: impl FnOnce(&mut BuildConfig)) -> Run {
    let (blocks, markers, work) = (
        tempfile::tempdir().expect("blocks"),
        tempfile::tempdir().expect("markers"),
        tempfile::tempdir().expect("work"),
    );
    let mut c = BuildConfig {
        work_dir: work.path().to_owned(),
        workers: 2,
        ..BuildConfig::default()
    };
    cfg(&mut c);
    let dest = Destinations {
        blocks: StoreLocation::local(blocks.path(), false).expect("blocks"),
        markers: StoreLocation::local(markers.path(), false).expect("markers"),
        base: None,
        expect: None,
        existing: Default::default(),
    };
    let outcome = build_plan(
        plan,
        &ChunkStores::new(chunks, None),
        &dest,
        &c,
        &Arc::new(BuildProgress::default()),
    )
    .await;
    Run {
        outcome,
        blocks,
        markers,
        work,
    }
}

fn local_chunks() -> StoreLocation {
    StoreLocation::local(&corpus_dir().join("chunks"), false).expect("chunks")
}

fn block_bytes(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(dir.join("index")).expect("index"),
        std::fs::read(dir.join("chunks/000001")).expect("chunks"),
    )
}

/// The work dir holds nothing after a build, successful or not.
fn assert_work_dir_clean(run: &Run) {
    for sub in ["blocks", "spill", "plans"] {
        let d = run.work.path().join(sub);
        let left: Vec<_> = std::fs::read_dir(&d)
            .map(|it| it.map(|e| e.expect("entry").path()).collect())
            .unwrap_or_default();
        let left: Vec<_> = left
            .into_iter()
            .filter(|p| !(p.is_dir() && std::fs::read_dir(p).is_ok_and(|mut x| x.next().is_none())))
            .collect();
        assert!(left.is_empty(), "left in work dir: {left:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_and_slow_store_is_retried_into_the_same_block() {
    let plan = corpus_plan();
    let clean = build(&plan, local_chunks(), |_| {}).await;
    let inner: Arc<dyn object_store::ObjectStore> = Arc::new(
        object_store::local::LocalFileSystem::new_with_prefix(corpus_dir().join("chunks"))
            .expect("fs"),
    );
    let faulty = Arc::new(FaultyStore::new(inner, 3, 2, 11, Duration::from_secs(3)));
    let chunks = StoreLocation::from_store(faulty.clone(), "", "faulty-chunks");
    let flaky = build(&plan, chunks, |c| {
        c.fetch = FetchPolicy {
            retries: 4,
            timeout: Duration::from_millis(300),
            min_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        };
    })
    .await;
    let injected = faulty.injected.load(Ordering::Relaxed);
    assert!(injected > 100, "only {injected} faults injected");
    assert_eq!(
        block_bytes(&flaky.block_dir()),
        block_bytes(&clean.block_dir()),
        "retried build gives the identical block"
    );
    let (a, b) = (flaky.report(), clean.report());
    let ids = |r: &PlanReport| -> Vec<(String, BadChunkKind)> {
        r.bad_chunks
            .iter()
            .map(|c| (c.chunk_id.clone(), c.kind))
            .collect()
    };
    assert_eq!(
        ids(&a),
        ids(&b),
        "same missing chunks, no fetch error became a gap"
    );
    assert_eq!(a.samples_written, b.samples_written);
    assert_work_dir_clean(&flaky);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_keeps_failing_fails_the_plan_retriably_and_uploads_nothing() {
    let inner: Arc<dyn object_store::ObjectStore> = Arc::new(
        object_store::local::LocalFileSystem::new_with_prefix(corpus_dir().join("chunks"))
            .expect("fs"),
    );
    let broken = Arc::new(FaultyStore::new(inner, 1, u32::MAX, 0, Duration::ZERO));
    let run = build(
        &corpus_plan(),
        StoreLocation::from_store(broken, "", "broken"),
        |c| {
            c.fetch = FetchPolicy {
                retries: 2,
                timeout: Duration::from_secs(1),
                min_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(2),
            };
        },
    )
    .await;
    let err = run.outcome.as_ref().expect_err("must fail");
    assert!(matches!(err, BuildError::Fetch(_)), "{err}");
    assert!(err.is_retriable());
    assert!(
        err.to_string().contains("gave up after 3 attempts"),
        "{err}"
    );
    assert_eq!(run.uploaded_blocks(), 0);
    let report = run.report();
    assert_eq!(report.status, PlanStatus::Failed);
    assert!(
        report
            .error
            .as_deref()
            .is_some_and(|e| e.contains("injected 503"))
    );
    assert_work_dir_clean(&run);
}

/// Copies the tenant's chunks and corrupts `n` objects that the plan references.
fn corrupted_store(n: usize) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().expect("chunks");
    let src = corpus_dir().join("chunks").join(TENANT);
    let dst = dir.path().join(TENANT);
    std::fs::create_dir_all(&dst).expect("mkdir");
    let mut names: Vec<String> = std::fs::read_dir(&src)
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in &names {
        std::fs::copy(src.join(name), dst.join(name)).expect("copy");
    }
    let plan = plan_format::read_plan(
        "p",
        std::fs::File::open(
            corpus_dir().join(format!("cortex-output/plans/{TENANT}/{DAY}.plan.snappy")),
        )
        .expect("plan"),
        plan_format::Compression::Snappy,
    )
    .expect("plan");
    let mut corrupted = Vec::new();
    for id in plan.series.values().flatten() {
        let Some(name) = id.strip_prefix(&format!("{TENANT}/")) else {
            continue;
        };
        let p = dst.join(name);
        if corrupted.len() < n && p.is_file() && id.split(':').count() == 4 {
            let mut bytes = std::fs::read(&p).expect("read");
            let last = bytes.len() - 1;
            bytes[last] ^= 0x55;
            std::fs::write(&p, bytes).expect("write");
            corrupted.push(id.clone());
        }
    }
    (dir, corrupted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_chunks_are_reported_and_the_policy_decides() {
    let (store, corrupted) = corrupted_store(4);
    assert_eq!(corrupted.len(), 4);
    let chunks = || StoreLocation::local(store.path(), false).expect("chunks");

    // Policy "no bad chunks": the plan fails, nothing is uploaded, the report says why.
    let strict = build(&corpus_plan(), chunks(), |c| c.max_bad_chunk_fraction = 0.0).await;
    let err = strict.outcome.as_ref().expect_err("strict policy fails");
    assert!(matches!(err, BuildError::TooManyBadChunks { .. }), "{err}");
    assert!(!err.is_retriable());
    assert_eq!(strict.uploaded_blocks(), 0);
    let report = strict.report();
    assert_eq!(report.status, PlanStatus::Failed);
    let mut bad: Vec<String> = report
        .bad_chunks
        .iter()
        .filter(|c| c.kind == BadChunkKind::Checksum)
        .map(|c| c.chunk_id.clone())
        .collect();
    bad.sort();
    let mut want = corrupted.clone();
    want.sort();
    assert_eq!(bad, want, "every corrupted chunk is named");
    assert!(
        report
            .bad_chunks
            .iter()
            .all(|c| c.kind != BadChunkKind::Checksum
                || c.reason.contains("checksum mismatch") && c.reason.contains(&c.chunk_id))
    );
    assert_work_dir_clean(&strict);

    // Lenient policy: the block is written with gaps and the same report content.
    let lenient = build(&corpus_plan(), chunks(), |c| c.max_bad_chunk_fraction = 0.5).await;
    let o = lenient.outcome.as_ref().expect("lenient policy finishes");
    assert_eq!(o.report.status, PlanStatus::FinishedWithGaps);
    assert_eq!(o.report.count(BadChunkKind::Checksum), 4);
    assert_eq!(lenient.uploaded_blocks(), 1);
    // The gaps are exactly what the corrupted chunks held: every written sample is
    // a true one, and only series touched by a corrupted chunk lost samples.
    let want = expected(TENANT, DAY);
    let got = read_block(&lenient.block_dir());
    let mut lost = 0;
    for g in &got {
        let w = want
            .iter()
            .find(|w| w.labels == g.labels)
            .expect("known series");
        let truth: std::collections::BTreeSet<_> = w.samples.iter().collect();
        assert!(
            g.samples.iter().all(|s| truth.contains(s)),
            "{:?}: invented samples",
            g.labels
        );
        lost += w.samples.len() - g.samples.len();
    }
    let total: usize = want.iter().map(|w| w.samples.len()).sum();
    assert_eq!(
        o.report.samples_written as usize,
        total
            - lost
            - want
                .iter()
                .filter(|w| !got.iter().any(|g| g.labels == w.labels))
                .map(|w| w.samples.len())
                .sum::<usize>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_plan_gives_no_block_and_a_clear_error() {
    let full = {
        let mut out = Vec::new();
        let mut r = snap::read::FrameDecoder::new(
            std::fs::File::open(
                corpus_dir().join(format!("cortex-output/plans/{TENANT}/{DAY}.plan.snappy")),
            )
            .expect("plan"),
        );
        std::io::Read::read_to_end(&mut r, &mut out).expect("decompress");
        out
    };
    for (what, bytes) in [
        (
            "no footer",
            full[..full.len() - "{\"complete\":true}\n".len()].to_vec(),
        ),
        ("cut mid-entry", full[..full.len() / 2].to_vec()),
        ("entry after footer", {
            let mut v = full.clone();
            v.extend_from_slice(b"{\"sid\":\"x\",\"cs\":[\"team-a.prod/1:2:3:4\"]}\n");
            v
        }),
    ] {
        let dir = tempfile::tempdir().expect("plans");
        std::fs::create_dir_all(dir.path().join(TENANT)).expect("mkdir");
        std::fs::write(dir.path().join(format!("{TENANT}/{DAY}.plan")), &bytes).expect("write");
        let plan = PlanRef {
            location: StoreLocation::local(dir.path(), false).expect("loc"),
            key: format!("{TENANT}/{DAY}.plan"),
        };
        let run = build(&plan, local_chunks(), |_| {}).await;
        let err = run.outcome.as_ref().expect_err(what);
        assert!(matches!(err, BuildError::Plan(_)), "{what}: {err}");
        assert!(!err.is_retriable());
        assert!(
            err.to_string().contains(&format!("{DAY}.plan")),
            "{what}: {err}"
        );
        assert_eq!(run.uploaded_blocks(), 0, "{what}");
        assert_work_dir_clean(&run);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_spill_and_thread_count_give_a_byte_identical_block() {
    let plan = corpus_plan();
    let default = build(&plan, local_chunks(), |_| {}).await;
    let spilled = build(&plan, local_chunks(), |c| {
        c.memory_budget = 2048;
        c.workers = 1;
    })
    .await;
    assert_eq!(
        block_bytes(&spilled.block_dir()),
        block_bytes(&default.block_dir())
    );
    assert!(spilled.report().spill_bytes > 10_000, "the sorter spilled");
    assert_eq!(
        default.report().spill_bytes,
        0,
        "the default budget holds the plan"
    );
    assert_eq!(read_block(&spilled.block_dir()), expected(TENANT, DAY));
    assert_work_dir_clean(&spilled);
}

/// The first chunk ID of the corpus plan.
fn first_chunk_of_plan() -> String {
    let path = corpus_dir().join(format!("cortex-output/plans/{TENANT}/{DAY}.plan.snappy"));
    let file = std::fs::File::open(&path).expect("plan");
    let mut r = plan_format::PlanReader::open(
        &path.to_string_lossy(),
        file,
        plan_format::Compression::Snappy,
    )
    .expect("open plan");
    let entry = r.next_entry().expect("entry").expect("an entry");
    entry.chunks[0].clone()
}

/// A chunk that an S3 server keeps failing (503) is asked for exactly once per allowed
/// attempt, `1 + --storage.max-retries`: the builder's fetch retry is the only retry
/// layer, the object-store client's own retries do not multiply it.
#[test]
fn a_failing_chunk_is_requested_once_per_allowed_attempt() {
    let moto = MotoServer::start();
    moto.create_bucket("chunks");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let chunks = StoreLocation::open("s3://chunks", &moto_options(&moto), false).expect("chunks");
    rt.block_on(upload_tree(&corpus_dir().join("chunks"), &chunks));
    let proxy = FaultProxy::start(&moto.endpoint);
    let chunk = first_chunk_of_plan();
    let checksum = chunk.rsplit(':').next().expect("checksum").to_owned();
    proxy.set_rules(vec![Rule {
        method: Some("GET"),
        path_contains: checksum,
        header: None,
        every: 1,
        fault: Fault::Status(503),
    }]);
    let dirs = tempfile::tempdir().expect("dirs");
    let plan = corpus_dir().join(format!("cortex-output/plans/{TENANT}/{DAY}.plan.snappy"));
    let out = std::process::Command::new(workspace_bin("blocksconvert-cli", "blocksconvert"))
        .arg("build")
        .arg("--plan")
        .arg(&plan)
        .args(["--chunks", "s3://chunks"])
        .args(s3_flags(&proxy.endpoint))
        .args(["--storage.max-retries", "2", "--quiet"])
        .arg("--output")
        .arg(dirs.path().join("blocks"))
        .arg("--markers")
        .arg(dirs.path().join("markers"))
        .arg("--work-dir")
        .arg(dirs.path().join("work"))
        .output()
        .expect("run build");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the chunk never arrives: {stderr}");
    assert!(stderr.contains("3 attempts"), "{stderr}");
    assert_eq!(
        proxy.injected(),
        3,
        "requests for the failing chunk; {stderr}"
    );
}
