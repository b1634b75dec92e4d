//! `blocksconvert-scanner` against Google's Bigtable emulator, loaded with the corpus
//! index exactly as Cortex's own Bigtable clients wrote it (`gcp`, `bigtable`,
//! `bigtable-hashed` layouts; raw cells, loaded by a loader that knows nothing of
//! Cortex). Plans must be byte-identical to the plans of the DynamoDB export scan, a
//! SIGKILLed scan must resume from its row-key checkpoints, and an emulator that dies
//! mid-scan must never yield plans with missing series.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use blocksconvert_tests::{BigtableEmulator, corpus_dir};
use support::*;

const PROJECT: &str = "cortex-fixtures";
const VARIANTS: [&str; 3] = ["gcp", "bigtable", "bigtable-hashed"];

fn variant_schema(variant: &str) -> PathBuf {
    corpus_dir()
        .join("bigtable")
        .join(format!("schema-{variant}.yaml"))
}

/// Loads the index tables of `variant` into instance `instance`.
async fn load_index(emulator: &BigtableEmulator, variant: &str, instance: &str) -> usize {
    emulator
        .load_fixture(PROJECT, variant, instance, |t| {
            t.starts_with("cortex_index_")
        })
        .await
}

fn reference_plans(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let plans = dir.join("reference");
    run(&[
        "--index",
        &export_dir().display().to_string(),
        "--plans",
        &plans.display().to_string(),
        "--work-dir",
        &dir.join("w-reference").display().to_string(),
    ]);
    let reference = plan_files(&plans);
    assert_eq!(reference.len(), 9);
    reference
}

fn bigtable_args(
    emulator: &BigtableEmulator,
    instance: &str,
    plans: &Path,
    work: &Path,
) -> Vec<String> {
    [
        "--index",
        &format!("bigtable://{PROJECT}/{instance}"),
        "--bigtable.emulator",
        &emulator.host,
        "--bigtable.ranges",
        "4",
        "--plans",
        &plans.display().to_string(),
        "--work-dir",
        &work.display().to_string(),
        "--checkpoint-interval",
        "50ms",
        "--memory-budget",
        "64KiB",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bigtable_layout_scans_to_the_export_plans_and_resumes_after_sigkill() {
    let tmp = tempfile::tempdir().expect("tmp");
    let reference = reference_plans(tmp.path());
    let emulator = BigtableEmulator::start();
    for variant in VARIANTS {
        // One instance per layout in the same emulator.
        load_index(&emulator, variant, variant).await;
        let plans = tmp.path().join(format!("plans-{variant}"));
        let args = bigtable_args(
            &emulator,
            variant,
            &plans,
            &tmp.path().join(format!("w-{variant}")),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = check(
            scanner_with_schema(&variant_schema(variant), &args)
                .output()
                .expect("run scanner"),
        );
        assert_eq!(rows_this_run(&out), TOTAL_ROWS, "{variant}: {out}");
        assert_eq!(
            plan_files(&plans),
            reference,
            "{variant}: Bigtable scan differs from the export scan"
        );
    }

    // SIGKILL mid-table (slowed down so it is caught mid-way), then resume.
    let variant = "bigtable-hashed";
    let plans = tmp.path().join("plans-killed");
    let work = tmp.path().join("w-killed");
    let base = bigtable_args(&emulator, variant, &plans, &work);
    let mut slow: Vec<&str> = base.iter().map(String::as_str).collect();
    slow.extend(["--max-rows-per-second", "2000"]);
    let mut child = scanner_with_schema(&variant_schema(variant), &slow)
        .spawn()
        .expect("spawn scanner");
    kill_mid_table(&mut child, &work);
    let (checkpointed, _, _) = checkpointed_rows(&work);
    assert!(checkpointed > 0 && checkpointed < TOTAL_ROWS);
    let fast: Vec<&str> = base.iter().map(String::as_str).collect();
    let out = check(
        scanner_with_schema(&variant_schema(variant), &fast)
            .output()
            .expect("run scanner"),
    );
    assert_eq!(
        rows_this_run(&out),
        TOTAL_ROWS - checkpointed,
        "the restart read exactly the rows after the checkpoints:\n{out}"
    );
    assert_eq!(
        plan_files(&plans),
        reference,
        "same plans as an uninterrupted scan"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emulator_restarted_mid_scan_never_yields_missing_series() {
    let tmp = tempfile::tempdir().expect("tmp");
    let reference = reference_plans(tmp.path());
    let variant = "bigtable";
    let mut emulator = BigtableEmulator::start();
    load_index(&emulator, variant, variant).await;
    let plans = tmp.path().join("plans");
    let work = tmp.path().join("work");
    let mut args = bigtable_args(&emulator, variant, &plans, &work);
    args.extend(
        [
            "--max-rows-per-second",
            "3000",
            "--bigtable.max-attempts",
            "30",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = scanner_with_schema(&variant_schema(variant), &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn scanner");
    let deadline = Instant::now() + Duration::from_secs(120);
    while checkpointed_rows(&work).0 < 1000 {
        assert!(Instant::now() < deadline, "no checkpoint appeared");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "finished too early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The emulator dies (all data gone) and comes back at the same address, reloaded.
    let port = emulator.port();
    emulator.kill();
    std::thread::sleep(Duration::from_millis(300));
    let emulator = BigtableEmulator::start_on(port);
    load_index(&emulator, variant, variant).await;
    let out = child.wait_with_output().expect("scanner");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        assert_eq!(
            plan_files(&plans),
            reference,
            "the scan resumed but its plans differ:\n{stdout}\n{stderr}"
        );
    } else {
        assert!(
            stderr.contains("Bigtable"),
            "a failed scan names Bigtable:\n{stderr}"
        );
        assert!(
            plan_files(&plans).is_empty(),
            "a failed scan uploads nothing"
        );
        // And a rerun completes with every series.
        check(
            scanner_with_schema(&variant_schema(variant), &args)
                .output()
                .expect("rerun"),
        );
        assert_eq!(plan_files(&plans), reference);
    }
}
