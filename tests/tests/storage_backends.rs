//! One storage suite, run against every object store the project writes to or reads
//! from: a local directory, S3 (moto), Azure Blob (Azurite) and GCS (fake-gcs-server).
//! What the scheduler relies on is checked on each: reads, listings, deletes, probes,
//! and that create-if-absent is atomic (of 16 concurrent creates of one key exactly one
//! wins, the rest get "already exists").
//!
//! GCS: no local emulator serves object_store's write path (fake-gcs-server refuses
//! its XML-API PUT, which there needs a signed URL; gcp-storage-emulator takes the PUT
//! but answers without the ETag object_store requires, and has no XML listing or
//! delete), and neither enforces `x-goog-if-generation-match`. So on GCS the read side
//! runs on fake-gcs-server, and create-if-absent is checked for our half of the
//! contract: the create carries the precondition Google Cloud Storage enforces, and
//! Google's refusal (412) reads as "already exists".

use std::time::Duration;

use blocksconvert_tests::proxy::{Fault, FaultProxy, Rule};
use blocksconvert_tests::{Azurite, GcsEmulator, MotoServer, moto_options};
use storage::{StorageOptions, StoreLocation};

/// Reads, listings and deletes of objects the suite wrote itself.
async fn read_side(loc: &StoreLocation, name: &str) {
    let got = loc.get("t/a/1").await.expect("get");
    assert_eq!(&got[..], b"one", "{name}: get");
    assert_eq!(
        loc.head("t/a/1").await.expect("head").size,
        3,
        "{name}: head"
    );
    assert!(
        loc.get("t/a/none")
            .await
            .expect_err("absent")
            .is_not_found(),
        "{name}: a missing object is not-found"
    );
    let mut listed: Vec<String> = loc
        .list("t/")
        .await
        .expect("list")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    listed.sort();
    assert_eq!(listed, vec!["t/a/1", "t/a/2", "t/b/3"], "{name}: list");
    let mut dirs = loc.list_dirs("t").await.expect("list dirs");
    dirs.sort();
    assert_eq!(dirs, vec!["a", "b"], "{name}: list dirs");
    assert_eq!(
        &loc.get_prefix("t/a/2", 2).await.expect("range")[..],
        b"tw",
        "{name}: ranged get"
    );
    loc.probe_readable(Duration::from_secs(30))
        .await
        .expect("probe readable");
}

async fn write_side(loc: &StoreLocation, name: &str) {
    loc.put("t/a/1", b"one".to_vec()).await.expect("put");
    loc.put("t/a/2", b"two".to_vec()).await.expect("put");
    loc.put("t/b/3", b"three".to_vec()).await.expect("put");
    read_side(loc, name).await;
    // Create-if-absent: one winner among concurrent creators.
    let results = futures::future::join_all((0..16).map(|i| {
        let loc = loc.clone();
        async move {
            loc.put_if_absent("markers/lease", format!("owner {i}").into_bytes())
                .await
        }
    }))
    .await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let lost = results
        .iter()
        .filter(|r| {
            r.as_ref()
                .is_err_and(storage::StorageError::is_already_exists)
        })
        .count();
    assert_eq!(
        (won, lost),
        (1, 15),
        "{name}: create-if-absent is atomic: {results:?}"
    );
    let winner =
        String::from_utf8(loc.get("markers/lease").await.expect("get").to_vec()).expect("utf8");
    assert!(winner.starts_with("owner "), "{name}: {winner}");
    assert!(
        loc.put_if_absent("markers/lease", b"late".to_vec())
            .await
            .expect_err("exists")
            .is_already_exists(),
        "{name}: a later create fails"
    );
    loc.delete("t/b/3").await.expect("delete");
    assert!(
        loc.get("t/b/3").await.expect_err("gone").is_not_found(),
        "{name}"
    );
    loc.delete("t/b/3")
        .await
        .expect("deleting a deleted object is fine");
    loc.probe_writable(Duration::from_secs(30))
        .await
        .expect("probe writable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_behaves_the_same() {
    // Local directory.
    let tmp = tempfile::tempdir().expect("tmp");
    let local = StoreLocation::open(
        &tmp.path().join("bucket").display().to_string(),
        &StorageOptions::default(),
        true,
    )
    .expect("local");
    write_side(&local, "local").await;

    // S3 (moto).
    let moto = MotoServer::start();
    moto.create_bucket("suite");
    let s3 = StoreLocation::open("s3://suite/prefix", &moto_options(&moto), false).expect("s3");
    write_side(&s3, "s3").await;

    // Azure Blob (Azurite): object_store reads the emulator settings from the
    // environment, as a blocksconvert process would.
    let azurite = Azurite::start();
    azurite.create_container("suite");
    let azure = StoreLocation::open("az://suite/prefix", &azurite.options(), false).expect("azure");
    write_side(&azure, "azure").await;

    // GCS (fake-gcs-server): objects loaded through its JSON API, read through
    // object_store.
    let gcs = GcsEmulator::start();
    gcs.create_bucket("suite");
    for (k, v) in [
        ("prefix/t/a/1", "one"),
        ("prefix/t/a/2", "two"),
        ("prefix/t/b/3", "three"),
    ] {
        gcs.upload("suite", k, v.as_bytes());
    }
    let opts = StorageOptions {
        gcs_endpoint: Some(gcs.endpoint.clone()),
        ..StorageOptions::default()
    };
    let gs = StoreLocation::open("gs://suite/prefix", &opts, false).expect("gcs");
    read_side(&gs, "gcs").await;

    gcs_create_if_absent_contract(&gcs).await;
}

/// What Google Cloud Storage makes atomic, object_store must ask for: a
/// create-if-absent carries `x-goog-if-generation-match: 0`, and GCS's answer to a
/// create that lost (412 Precondition Failed) is "already exists". The proxy answers
/// 412 as GCS would, but only to a request carrying the precondition; one without it
/// would reach the emulator and fail otherwise.
async fn gcs_create_if_absent_contract(gcs: &GcsEmulator) {
    let proxy = FaultProxy::start_rewriting_host(&gcs.endpoint);
    proxy.set_rules(vec![Rule {
        method: Some("PUT"),
        path_contains: "markers%2Flease".into(),
        header: Some(("x-goog-if-generation-match", "0")),
        every: 1,
        fault: Fault::Status(412),
    }]);
    let opts = StorageOptions {
        gcs_endpoint: Some(proxy.endpoint.clone()),
        ..StorageOptions::default()
    };
    let gs = StoreLocation::open("gs://suite/prefix", &opts, false).expect("gcs");
    let lost = gs
        .put_if_absent("markers/lease", b"second".to_vec())
        .await
        .expect_err("gcs: a create that GCS refuses");
    assert!(
        lost.is_already_exists(),
        "gcs: 412 on a create reads as already exists: {lost}"
    );
    assert_eq!(
        proxy.injected(),
        1,
        "gcs: the create carried x-goog-if-generation-match: 0"
    );
}
