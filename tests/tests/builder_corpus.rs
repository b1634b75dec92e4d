//! The builder on every tenant-day of the Cortex corpus, against every backend (a
//! local directory, and S3 served by a real `moto_server`): each block holds exactly
//! `expected/<tenant>/<day>.jsonl` (our reader and `promtool tsdb dump`), and the
//! reports list exactly the missing chunks the corpus README names.

use std::collections::BTreeSet;
use std::sync::Arc;

use block_builder::{
    BadChunkKind, BuildConfig, BuildProgress, ChunkStores, Destinations, PlanRef, PlanReport,
    PlanStatus, build_plan,
};
use blocksconvert_tests::{
    DAYS, MotoServer, TENANTS, corpus_dir, download_block, dump_lines, expected, moto_options,
    promtool_dump, read_block, readme_missing_objects, upload_tree,
};
use storage::StoreLocation;

struct Backend {
    name: &'static str,
    chunks: StoreLocation,
    blocks: StoreLocation,
    markers: StoreLocation,
    _moto: Option<MotoServer>,
    _tmp: tempfile::TempDir,
}

fn local_backend() -> Backend {
    let tmp = tempfile::tempdir().expect("tmp");
    Backend {
        name: "local",
        chunks: StoreLocation::local(&corpus_dir().join("chunks"), false).expect("chunks"),
        blocks: StoreLocation::local(&tmp.path().join("blocks"), true).expect("blocks"),
        markers: StoreLocation::local(&tmp.path().join("markers"), true).expect("markers"),
        _moto: None,
        _tmp: tmp,
    }
}

async fn s3_backend() -> Backend {
    let moto = MotoServer::start();
    moto.create_bucket("chunks");
    moto.create_bucket("blocks");
    let opts = moto_options(&moto);
    let chunks = StoreLocation::open("s3://chunks/", &opts, false).expect("chunks");
    let uploaded = upload_tree(&corpus_dir().join("chunks"), &chunks).await;
    assert!(uploaded > 5000, "{uploaded} chunk objects");
    Backend {
        name: "s3",
        chunks,
        blocks: StoreLocation::open("s3://blocks/", &opts, false).expect("blocks"),
        markers: StoreLocation::open("s3://blocks/migration", &opts, false).expect("markers"),
        _moto: Some(moto),
        _tmp: tempfile::tempdir().expect("tmp"),
    }
}

/// Downloads `<user>/<ulid>/` into `dir/<ulid>`.
async fn check_backend(b: Backend) {
    let work = tempfile::tempdir().expect("work");
    let plans =
        StoreLocation::local(&corpus_dir().join("cortex-output/plans"), false).expect("plans");
    let stores = ChunkStores::new(b.chunks.clone(), None);
    let cfg = BuildConfig {
        work_dir: work.path().to_owned(),
        workers: 2,
        ..BuildConfig::default()
    };
    let missing_in_readme = readme_missing_objects();
    assert_eq!(
        missing_in_readme.len(),
        71,
        "README lists 71 missing objects"
    );
    let mut reported_missing = BTreeSet::new();
    for tenant in TENANTS {
        for day in DAYS {
            let key = format!("{tenant}/{day}.plan.snappy");
            let plan = PlanRef {
                location: plans.clone(),
                key: key.clone(),
            };
            let dest = Destinations {
                blocks: b.blocks.clone(),
                markers: b.markers.clone(),
                base: None,
                expect: None,
                existing: Default::default(),
            };
            let progress = Arc::new(BuildProgress::default());
            let out = build_plan(&plan, &stores, &dest, &cfg, &progress)
                .await
                .unwrap_or_else(|e| panic!("{}: {key}: {e}", b.name));
            let ctx = format!("{} {tenant}/{day}", b.name);

            // The block holds exactly the ground truth: our reader and promtool agree.
            let db = tempfile::tempdir().expect("db");
            download_block(&b.blocks, tenant, &out.ulid, db.path()).await;
            let want = expected(tenant, day);
            let got = read_block(&db.path().join(&out.ulid));
            assert_eq!(got.len(), want.len(), "{ctx}: series count");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g, w, "{ctx}");
            }
            assert_eq!(
                promtool_dump(db.path(), day),
                dump_lines(&want),
                "{ctx}: promtool"
            );
            assert_eq!(out.meta.min_time, day * 86_400_000);
            assert_eq!(out.meta.max_time, (day + 1) * 86_400_000);
            assert_eq!(out.meta.thanos.labels["__org_id__"], tenant);

            // The report object sits next to the markers and lists the missing chunks.
            let report: PlanReport = serde_json::from_slice(
                &b.markers
                    .get(&format!("{tenant}/{day}.report.json"))
                    .await
                    .expect("report object"),
            )
            .expect("report json");
            assert_eq!(report, out.report, "{ctx}: uploaded report");
            assert_eq!(report.block.as_deref(), Some(out.ulid.as_str()));
            assert_eq!(
                report.samples_written,
                want.iter().map(|s| s.samples.len() as u64).sum::<u64>()
            );
            let plan_ids: BTreeSet<String> = plan_format::read_plan(
                &key,
                std::fs::File::open(corpus_dir().join("cortex-output/plans").join(&key))
                    .expect("plan"),
                plan_format::Compression::Snappy,
            )
            .expect("plan")
            .series
            .into_values()
            .flatten()
            .collect();
            let want_missing: BTreeSet<String> = missing_in_readme
                .iter()
                .filter(|m| plan_ids.contains(*m))
                .cloned()
                .collect();
            let got_missing: BTreeSet<String> = report
                .bad_chunks
                .iter()
                .filter(|c| c.kind == BadChunkKind::Missing)
                .map(|c| c.chunk_id.clone())
                .collect();
            assert_eq!(got_missing, want_missing, "{ctx}: missing chunks");
            assert_eq!(
                report.bad_chunks.len(),
                got_missing.len(),
                "{ctx}: only missing chunks are bad"
            );
            let expect_status = if want_missing.is_empty() {
                PlanStatus::Complete
            } else {
                PlanStatus::FinishedWithGaps
            };
            assert_eq!(report.status, expect_status, "{ctx}");
            reported_missing.extend(got_missing);
        }
        // Exactly one block per tenant-day.
        let ulids: BTreeSet<String> = b
            .blocks
            .list(tenant)
            .await
            .expect("list")
            .into_iter()
            .filter_map(|(k, _)| k.split('/').nth(1).map(str::to_owned))
            .collect();
        assert_eq!(
            ulids.len(),
            DAYS.len(),
            "{}: blocks of {tenant}: {ulids:?}",
            b.name
        );
    }
    assert_eq!(
        reported_missing, missing_in_readme,
        "{}: all plans together",
        b.name
    );
    assert_eq!(
        std::fs::read_dir(work.path().join("blocks"))
            .map(|d| d.count())
            .unwrap_or(0),
        0,
        "local blocks are removed after upload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_plan_builds_the_expected_block_on_local_disk() {
    check_backend(local_backend()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_plan_builds_the_expected_block_on_s3() {
    check_backend(s3_backend().await).await;
}
