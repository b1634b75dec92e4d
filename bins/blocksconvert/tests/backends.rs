//! `blocksconvert convert` and `verify` on the stores of Google Cloud and Azure
//! deployments of Cortex, against real emulators: the corpus index as Cortex's own
//! Bigtable clients wrote it (Google's `cbtemulator`), chunks as GCS objects
//! (fake-gcs-server) or as rows of Cortex's Bigtable chunk tables, plans and blocks in
//! Azure Blob (Azurite). Every tenant-day must hold exactly Cortex's expected samples
//! and verify must agree, also when the schema's periods keep chunks, or the index,
//! in different stores. One emulator of each kind serves the whole suite.

mod support;

use std::path::{Path, PathBuf};

use blocksconvert_tests::{
    Azurite, BigtableEmulator, GcsEmulator, corpus_dir, expected, read_block,
};
use support::*;

const PROJECT: &str = "cortex-fixtures";

fn schema(variant: &str) -> PathBuf {
    corpus_dir()
        .join("bigtable")
        .join(format!("schema-{variant}.yaml"))
}

/// Loads every table of a fixture variant into `instance` (raw cells).
async fn load(emulator: &BigtableEmulator, variant: &str, instance: &str) {
    emulator
        .load_fixture(PROJECT, variant, instance, |_| true)
        .await;
}

/// Every tenant-day below `blocks` holds exactly one block with Cortex's samples.
fn assert_expected_blocks(blocks: &Path, context: &str) {
    let by_day = blocks_by_day(blocks);
    assert_eq!(by_day.len(), 9, "{context}: {by_day:?}");
    for tenant in TENANTS {
        for day in DAYS {
            let dirs = &by_day[&(tenant.to_owned(), day)];
            assert_eq!(dirs.len(), 1, "{context}: {tenant}/{day}: {dirs:?}");
            assert_eq!(
                read_block(&dirs[0]),
                expected(tenant, day),
                "{context}: {tenant}/{day}"
            );
        }
    }
}

fn run(args: &[String]) -> String {
    let out = blocksconvert()
        .args(args)
        .output()
        .expect("run blocksconvert");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// `convert` with `common` + `convert_args`, then `verify` of `blocks` with `common`:
/// all 9 tenant-days converted, all 9 verified OK. Returns convert's output.
fn convert_then_verify(
    common: &[String],
    convert_args: &[&str],
    blocks: &str,
    verify_dir: &Path,
) -> String {
    let mut args = strings(&["convert"]);
    args.extend(common.iter().cloned());
    args.extend(strings(convert_args));
    let converted = run(&args);
    assert!(converted.contains("9 converted"), "{converted}");
    let mut args = strings(&["verify"]);
    args.extend(common.iter().cloned());
    args.extend(strings(&[
        "--blocks",
        blocks,
        "--work-dir",
        &verify_dir.display().to_string(),
    ]));
    let out = run(&args);
    assert!(
        out.contains("verified 9 tenant-days: 9 OK, 0 with differences"),
        "{out}"
    );
    converted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convert_and_verify_on_bigtable_gcs_and_azure() {
    let tmp = tempfile::tempdir().expect("tmp");
    let emulator = BigtableEmulator::start();
    let gcs = GcsEmulator::start();
    let azurite = Azurite::start();

    // 1. Index in Bigtable (column-key layout), chunks as GCS objects, blocks local.
    load(&emulator, "bigtable", "columnkey").await;
    gcs.create_bucket("cortex-chunks");
    let uploaded = gcs.upload_tree("cortex-chunks", &corpus_dir().join("chunks"));
    assert!(uploaded > 5000, "{uploaded} chunk objects");
    let index = format!("bigtable://{PROJECT}/columnkey");
    let schema_1 = schema("bigtable").display().to_string();
    let blocks_1 = tmp.path().join("blocks-1");
    let common = strings(&[
        "--schema",
        &schema_1,
        "--index",
        &index,
        "--bigtable.emulator",
        &emulator.host,
        "--chunks",
        "gs://cortex-chunks",
        "--gcs.endpoint",
        &gcs.endpoint,
    ]);
    let blocks_1_arg = blocks_1.display().to_string();
    convert_then_verify(
        &common,
        &[
            "--output",
            &blocks_1_arg,
            "--work-dir",
            &tmp.path().join("w-1").display().to_string(),
            "--builders",
            "2",
            "--workers",
            "1",
        ],
        &blocks_1_arg,
        &tmp.path().join("v-1"),
    );
    assert_expected_blocks(&blocks_1, "Bigtable index + GCS chunks");

    // 2. Index and chunks in Bigtable (hashed layout, Cortex's chunk tables), plans and
    //    blocks in Azure Blob.
    load(&emulator, "bigtable-hashed", "hashed").await;
    azurite.create_container("migration");
    let index = format!("bigtable://{PROJECT}/hashed");
    let schema_2 = schema("bigtable-hashed").display().to_string();
    let mut common = strings(&[
        "--schema",
        &schema_2,
        "--index",
        &index,
        "--bigtable.emulator",
        &emulator.host,
        "--chunks",
        &index,
    ]);
    common.extend(azurite.flags());
    convert_then_verify(
        &common,
        &[
            "--output",
            "az://migration/blocks",
            "--plans",
            "az://migration/plans",
            "--work-dir",
            &tmp.path().join("w-2").display().to_string(),
            "--builders",
            "2",
            "--workers",
            "1",
        ],
        "az://migration/blocks",
        &tmp.path().join("v-2"),
    );
    let blocks = storage::StoreLocation::open("az://migration/blocks", &azurite.options(), false)
        .expect("azure");
    let blocks_2 = tmp.path().join("blocks-2");
    for (key, _) in blocks.list("").await.expect("list blocks") {
        // Only block files (`<tenant>/<ULID>/…`), as a reader of the bucket would.
        let parts: Vec<&str> = key.split('/').collect();
        if parts.len() < 3 || parts[1].len() != 26 {
            assert!(
                !key.ends_with("meta.json"),
                "unexpected object in the blocks bucket: {key}"
            );
            continue;
        }
        let path = blocks_2.join(&key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, blocks.get(&key).await.expect("get")).expect("write");
    }
    assert_expected_blocks(&blocks_2, "Bigtable index + Bigtable chunks, Azure output");
    let plans = storage::StoreLocation::open("az://migration/plans", &azurite.options(), false)
        .expect("azure");
    let plan_files = plans
        .list("")
        .await
        .expect("list plans")
        .into_iter()
        .filter(|(k, _)| k.contains(".plan"))
        .count();
    assert_eq!(plan_files, 9, "plans in Azure");

    // 3. Periods pick the chunk store (W14): chunks that start before 2020-11-19 are
    //    in a directory (holding nothing else), later ones only in Bigtable.
    let older = tmp.path().join("older-chunks");
    let cut_ms: i64 = 18_585 * DAY_MS;
    let mut copied = 0;
    for tenant in std::fs::read_dir(corpus_dir().join("chunks")).expect("chunks") {
        let tenant = tenant.expect("entry").path();
        for chunk in std::fs::read_dir(&tenant).expect("tenant dir") {
            let chunk = chunk.expect("entry").path();
            let name = chunk
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let fields: Vec<&str> = name.split(':').collect();
            let from = match fields.len() {
                4 => i64::from_str_radix(fields[1], 16).expect("hex from"),
                _ => fields[1].parse().expect("decimal from"),
            };
            if from < cut_ms {
                let dest = older.join(tenant.file_name().expect("tenant")).join(&name);
                std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
                std::fs::copy(&chunk, dest).expect("copy");
                copied += 1;
            }
        }
    }
    assert!(copied > 1000, "{copied} older chunks");
    let mixed = tmp.path().join("schema-mixed.yaml");
    let text = std::fs::read_to_string(schema("bigtable-hashed")).expect("schema");
    // The first (v9) period's chunks go to the filesystem store instead.
    let first = text.find("object_store: bigtable").expect("object_store");
    let mixed_text = format!(
        "{}object_store: filesystem{}",
        &text[..first],
        &text[first + "object_store: bigtable".len()..]
    );
    std::fs::write(&mixed, mixed_text).expect("write schema");
    let common = strings(&[
        "--schema",
        &mixed.display().to_string(),
        "--index",
        &index,
        "--bigtable.emulator",
        &emulator.host,
        // Periods with `object_store: bigtable` read the index's instance by default.
        "--chunks",
        &older.display().to_string(),
    ]);
    let blocks_3 = tmp.path().join("blocks-3");
    let blocks_3_arg = blocks_3.display().to_string();
    convert_then_verify(
        &common,
        &[
            "--output",
            &blocks_3_arg,
            "--work-dir",
            &tmp.path().join("w-3").display().to_string(),
        ],
        &blocks_3_arg,
        &tmp.path().join("v-3"),
    );
    assert_expected_blocks(&blocks_3, "chunks per period: directory, then Bigtable");

    // 4. The index moved between stores: the v9 period's index in DynamoDB (its
    //    export), the later periods' in Bigtable; one run with both sources, each
    //    reading only the tables of its own periods.
    let moved = tmp.path().join("schema-moved.yaml");
    let text = std::fs::read_to_string(schema("bigtable-hashed")).expect("schema");
    let first = text.find("store: bigtable-hashed").expect("store");
    let moved_text = format!(
        "{}store: aws-dynamo{}",
        &text[..first],
        &text[first + "store: bigtable-hashed".len()..]
    )
    .replace("object_store: bigtable", "object_store: s3");
    std::fs::write(&moved, moved_text).expect("write schema");
    let export = corpus_dir().join("dynamodb-export").display().to_string();
    let common = strings(&[
        "--schema",
        &moved.display().to_string(),
        "--index",
        &export,
        "--index",
        &index,
        "--bigtable.emulator",
        &emulator.host,
        "--chunks",
        &corpus_dir().join("chunks").display().to_string(),
    ]);
    let blocks_4 = tmp.path().join("blocks-4");
    let blocks_4_arg = blocks_4.display().to_string();
    let out = convert_then_verify(
        &common,
        &[
            "--output",
            &blocks_4_arg,
            "--work-dir",
            &tmp.path().join("w-4").display().to_string(),
        ],
        &blocks_4_arg,
        &tmp.path().join("v-4"),
    );
    // cortex_index_2654 from the export, cortex_index_2655 from Bigtable.
    assert!(out.contains("2 tables, 11,140 rows read"), "{out}");
    assert_expected_blocks(&blocks_4, "index in DynamoDB, then in Bigtable");
}
